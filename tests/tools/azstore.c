/*
 * azstore: drive the Azure backend directly, for the integration tests
 * (not installed).  Credentials come from AZURE_STORAGE_* as for the
 * programs; ENDPOINT is the path-style blob endpoint.
 *
 *	azstore ENDPOINT mkcontainer NAME	create a container (Shared Key)
 *	azstore ENDPOINT sas PERMISSIONS	print an account SAS token
 *	azstore ENDPOINT put URL KEY FILE
 *	azstore ENDPOINT put-if-absent URL KEY FILE
 *	azstore ENDPOINT get URL KEY		object to stdout
 *	azstore ENDPOINT range URL KEY OFF LEN	bytes to stdout
 *	azstore ENDPOINT head URL KEY		print the size
 *	azstore ENDPOINT ls URL PREFIX [AFTER [MAX]]	one list_after call
 *	azstore ENDPOINT lsall URL PREFIX	store_list_all
 *	azstore ENDPOINT pages URL PREFIX N	list_after, N at a time, each
 *						from the last key of the one before
 *	azstore ENDPOINT gens URL		catalog_generations
 *	azstore ENDPOINT del URL KEY
 *
 * Exit 0 on success, 3 for LS_ERR_EXISTS, 4 for LS_ERR_NOTFOUND, 1 for
 * any other error (one line on stderr), 2 for bad usage.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/error.h"
#include "common/util.h"
#include "repo/catalog.h"
#include "store/azure/sign.h"
#include "store/http.h"
#include "store/store_int.h"

#define AZ_VERSION	"2021-08-06"

static int
fail(int r, const char *err)
{
	fprintf(stderr, "azstore: %s\n", err != NULL ? err : ls_strerror(r));
	return r == LS_ERR_EXISTS ? 3 : r == LS_ERR_NOTFOUND ? 4 : 1;
}

/* The decoded key of $AZURE_STORAGE_KEY, or exit. */
static uint8_t *
env_key(size_t *len)
{
	const char *b64 = getenv("AZURE_STORAGE_KEY");
	uint8_t *key;

	if (b64 == NULL || getenv("AZURE_STORAGE_ACCOUNT") == NULL ||
	    azure_key_decode(b64, &key, len) != 0) {
		fprintf(stderr, "azstore: set AZURE_STORAGE_ACCOUNT and "
		    "AZURE_STORAGE_KEY\n");
		exit(2);
	}
	return key;
}

/* The headers of a container creation, signed. */
static struct curl_slist *
mk_headers(const char *endpoint, const char *name)
{
	const char *acct = getenv("AZURE_STORAGE_ACCOUNT"), *ep;
	char *path, *sts, line[256], date[AZURE_DATE_LEN], sig[AZURE_SIG_LEN + 1];
	struct curl_slist *h = NULL;
	size_t keylen;
	uint8_t *key = env_key(&keylen);

	ep = strchr(strstr(endpoint, "://") != NULL ? strstr(endpoint, "://") + 3 :
	    endpoint, '/');
	if (asprintf(&path, "%s/%s", ep != NULL ? ep : "", name) < 0)
		exit(1);
	azure_date(time(NULL), date);
	snprintf(line, sizeof(line), "x-ms-date: %s", date);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "x-ms-version: " AZ_VERSION);
	h = curl_slist_append(h, "Content-Length: 0");
	if (azure_string_to_sign(acct, "PUT", path, "restype=container", h,
	    &sts) != 0)
		exit(1);
	azure_signature(key, keylen, sts, sig);
	snprintf(line, sizeof(line), "Authorization: SharedKey %s:%s", acct, sig);
	h = curl_slist_append(h, line);
	free(sts);
	free(path);
	free(key);
	return h;
}

/* PUT ENDPOINT/NAME?restype=container; 201 or 409 (exists) is fine. */
static int
mkcontainer(const char *endpoint, const char *name)
{
	struct curl_slist *h = mk_headers(endpoint, name);
	struct http_resp resp;
	struct http_req q;
	char *url, *err = NULL;
	int r;

	if (asprintf(&url, "%s/%s?restype=container", endpoint, name) < 0)
		return 1;
	q = (struct http_req){ .method = "PUT", .url = url, .headers = h,
	    .body_fd = -1, .resp_fd = -1, .resp_max = 65536 };
	if ((r = http_do(&q, &resp, &err)) != 0)
		r = fail(r, err);
	else if (resp.status != 201 && resp.status != 409) {
		fprintf(stderr, "azstore: mkcontainer: HTTP %ld %s\n",
		    resp.status, resp.body != NULL ? resp.body : "");
		r = 1;
	}
	http_resp_free(&resp);
	curl_slist_free_all(h);
	free(url);
	free(err);
	return r;
}

/* An account SAS for the blob service, all resource types, until 2099. */
static int
sas(const char *perms)
{
	const char *acct = getenv("AZURE_STORAGE_ACCOUNT");
	char *sts, sig[AZURE_SIG_LEN + 1], *esig;
	size_t keylen;
	uint8_t *key = env_key(&keylen);

	if (asprintf(&sts, "%s\n%s\nb\nsco\n\n2099-01-01T00:00:00Z\n\nhttps,http\n"
	    AZ_VERSION "\n\n", acct, perms) < 0)
		return 1;
	azure_signature(key, keylen, sts, sig);
	esig = http_uri_encode(sig, false);
	printf("sv=" AZ_VERSION "&ss=b&srt=sco&sp=%s&se=2099-01-01T00%%3A00%%3A00Z"
	    "&spr=https%%2Chttp&sig=%s\n", perms, esig);
	free(esig);
	free(sts);
	free(key);
	return 0;
}

/* Open azure://container/prefix against endpoint. */
static struct store *
open_url(const char *endpoint, const char *url)
{
	struct store_opts opts = { .azure_endpoint = endpoint };
	const char *b, *slash;
	char *container, *err = NULL;
	struct store *st;
	int r;

	if (strncmp(url, "azure://", 8) != 0) {
		fprintf(stderr, "azstore: %s: not an azure:// URL\n", url);
		exit(2);
	}
	b = url + 8;
	slash = strchr(b, '/');
	container = strndup(b, slash != NULL ? (size_t)(slash - b) : strlen(b));
	r = store_azure_open(url, container, slash != NULL ? slash + 1 : "",
	    &opts, &st, &err);
	free(container);
	if (r != 0)
		exit(fail(r, err));
	return st;
}

static int
print_entry(void *arg, const struct store_entry *e)
{
	printf("%s %" PRIu64 "\n", e->key, e->size);
	return 0;
}

/* One list_after call: "KEY SIZE" lines, then "truncated" if so. */
static int
ls(struct store *st, int argc, char **argv, char **err)
{
	struct store_list l;
	size_t i;
	int r;

	r = store_list_after(st, argv[0], argc > 1 ? argv[1] : "",
	    argc > 2 ? strtoul(argv[2], NULL, 10) : 1000, &l, err);
	for (i = 0; r == 0 && i < l.n; i++)
		print_entry(NULL, &l.entries[i]);
	if (r == 0 && l.truncated)
		printf("truncated\n");
	store_list_clear(&l);
	return r;
}

/* Page through prefix max keys at a time, as catalog_segments does. */
static int
pages(struct store *st, const char *prefix, size_t max, char **err)
{
	struct store_list l = { NULL, 0, 0 };
	char *after = strdup("");
	size_t i;
	int r, more;

	do {
		if ((r = store_list_after(st, prefix, after, max, &l, err)) != 0)
			break;
		for (i = 0; i < l.n; i++)
			print_entry(NULL, &l.entries[i]);
		if (l.n > 0) {
			free(after);
			after = l.entries[l.n - 1].key;
			l.entries[l.n - 1].key = NULL;
		}
		more = l.truncated;
		store_list_clear(&l);
	} while (more);
	store_list_clear(&l);
	free(after);
	return r;
}

static int
gens(struct store *st, char **err)
{
	char (*g)[17];
	size_t i, n;
	int r;

	if ((r = catalog_generations(st, &g, &n, err)) != 0)
		return r;
	for (i = 0; i < n; i++)
		printf("%s\n", g[i]);
	free(g);
	return 0;
}

static int
put(struct store *st, const char *key, const char *file, int if_absent,
    char **err)
{
	int fd, r;

	if ((fd = open(file, O_RDONLY)) < 0)
		return ls_errf(err, LS_ERR_IO, "%s: cannot open", file);
	r = if_absent ? store_put_if_absent(st, key, fd, err) :
	    store_put(st, key, fd, err);
	close(fd);
	return r;
}

static int
range(struct store *st, const char *key, const char *off, const char *len,
    char **err)
{
	size_t n = strtoul(len, NULL, 10), got;
	char *buf = malloc(n + 1);
	int r;

	r = store_get_range(st, key, strtoull(off, NULL, 10), n, buf, &got, err);
	if (r == 0)
		fwrite(buf, 1, got, stdout);
	free(buf);
	return r;
}

static int
run(struct store *st, const char *cmd, int argc, char **argv, char **err)
{
	uint64_t size;
	int r;

	if (strcmp(cmd, "put") == 0 && argc == 2)
		return put(st, argv[0], argv[1], 0, err);
	if (strcmp(cmd, "put-if-absent") == 0 && argc == 2)
		return put(st, argv[0], argv[1], 1, err);
	if (strcmp(cmd, "get") == 0 && argc == 1)
		return store_get(st, argv[0], STDOUT_FILENO, err);
	if (strcmp(cmd, "range") == 0 && argc == 3)
		return range(st, argv[0], argv[1], argv[2], err);
	if (strcmp(cmd, "head") == 0 && argc == 1) {
		if ((r = store_head(st, argv[0], &size, err)) == 0)
			printf("%" PRIu64 "\n", size);
		return r;
	}
	if (strcmp(cmd, "ls") == 0 && argc >= 1 && argc <= 3)
		return ls(st, argc, argv, err);
	if (strcmp(cmd, "lsall") == 0 && argc == 1)
		return store_list_all(st, argv[0], print_entry, NULL, err);
	if (strcmp(cmd, "pages") == 0 && argc == 2)
		return pages(st, argv[0], strtoul(argv[1], NULL, 10), err);
	if (strcmp(cmd, "gens") == 0 && argc == 0)
		return gens(st, err);
	if (strcmp(cmd, "del") == 0 && argc == 1)
		return store_delete(st, argv[0], err);
	fprintf(stderr, "azstore: bad command or arguments\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct store *st;
	char *err = NULL;
	int r;

	if (argc < 4) {
		fprintf(stderr, "usage: azstore ENDPOINT COMMAND ARGS...\n");
		return 2;
	}
	http_global_init();
	if (strcmp(argv[2], "mkcontainer") == 0)
		return mkcontainer(argv[1], argv[3]);
	if (strcmp(argv[2], "sas") == 0)
		return sas(argv[3]);
	st = open_url(argv[1], argv[3]);
	r = run(st, argv[2], argc - 4, argv + 4, &err);
	fflush(stdout);
	store_free(st);
	if (r != 0)
		r = fail(r, err);
	free(err);
	return r;
}
