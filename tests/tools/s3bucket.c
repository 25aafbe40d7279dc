/*
 * s3bucket: a test helper for the S3 store, signing with logship's own
 * sigv4.c.  The endpoint is $S3_ENDPOINT (path-style URLs); credentials
 * come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the region from
 * AWS_REGION (default us-east-1).
 *
 *	s3bucket mb BUCKET		create BUCKET (a signed PUT /BUCKET)
 *	s3bucket uploads BUCKET		multipart uploads in progress, one
 *					"KEY UPLOAD-ID" a line
 *	s3bucket etag BUCKET/KEY	the object's ETag (HEAD), or exit 1
 *	s3bucket put URL KEY FILE	store_put through the S3 backend
 *	s3bucket put-new URL KEY FILE	store_put_if_absent
 *	s3bucket get URL KEY		store_get to stdout
 *	s3bucket list URL PREFIX AFTER MAX
 *					one list_after call: "KEY SIZE" lines,
 *					then "truncated 0|1"
 *
 * URL is s3://bucket/prefix.  Exit 0 on success, 1 with the error on
 * stderr (store commands print the store's one-line message).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/error.h"
#include "common/util.h"
#include "store/http.h"
#include "store/s3/sigv4.h"
#include "store/store_int.h"

#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *endpoint;

static const char *
env(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : dflt;
}

static void __attribute__((noreturn))
die(const char *what, const char *why)
{
	fprintf(stderr, "s3bucket: %s: %s\n", what, why);
	exit(1);
}

/* Append "name: value" to l. */
static struct curl_slist *
add(struct curl_slist *l, const char *name, const char *value)
{
	char *line;

	if (asprintf(&line, "%s: %s", name, value) == -1 ||
	    (l = curl_slist_append(l, line)) == NULL)
		die("headers", "out of memory");
	free(line);
	return l;
}

/* A signed request on /PATH (unencoded) with one query parameter or none. */
static void
bucket_request(const char *method, const char *path, const char *param,
    struct http_resp *resp)
{
	struct sigv4_creds c = { env("AWS_ACCESS_KEY_ID", ""),
	    env("AWS_SECRET_ACCESS_KEY", ""), getenv("AWS_SESSION_TOKEN") };
	const char *host = strstr(endpoint, "://") + 3;
	struct sigv4_param q = { param, NULL }, h[2] = { { "Host", host },
	    { "x-amz-content-sha256", EMPTY } };
	struct sigv4_request sq = { method, NULL, &q, param != NULL, h, 2,
	    EMPTY, NULL, env("AWS_REGION", "us-east-1"), "s3" };
	struct sigv4_signed sig;
	struct curl_slist *l = NULL;
	struct http_req hq = { .method = method, .body_fd = -1, .resp_fd = -1,
	    .resp_max = 1 << 20 };
	char date[17], *abs, *epath, *url, *err = NULL;

	sigv4_amz_date(ls_now_us(), date);
	sq.amz_date = date;
	if (asprintf(&abs, "/%s", path) == -1)
		die("sign", "out of memory");
	sq.path = abs;
	if (sigv4_sign(&c, &sq, &sig) != 0 ||
	    (epath = sigv4_encode_path(abs)) == NULL ||
	    asprintf(&url, "%s%s%s%s", endpoint, epath, param ? "?" : "",
	    param ? param : "") == -1)
		die("sign", "out of memory");
	l = add(l, "Authorization", sig.authorization);
	l = add(l, "x-amz-date", date);
	l = add(l, "x-amz-content-sha256", EMPTY);
	if (c.session_token != NULL)
		l = add(l, "x-amz-security-token", c.session_token);
	hq.url = url;
	hq.headers = l;
	if (http_do(&hq, resp, &err) != 0)
		die(url, err);
	curl_slist_free_all(l);
	sigv4_signed_free(&sig);
	free(abs);
	free(epath);
	free(url);
}

static int
cmd_mb(const char *bucket)
{
	struct http_resp resp;

	bucket_request("PUT", bucket, NULL, &resp);
	if (resp.status != 200)
		die(bucket, resp.body ? resp.body : "no body");
	http_resp_free(&resp);
	return 0;
}

/* Print "Key UploadId" for every <Upload> of a ListMultipartUploads. */
static int
cmd_uploads(const char *bucket)
{
	struct http_resp resp;
	xmlDocPtr doc;
	xmlNodePtr n, c;
	xmlChar *t;

	bucket_request("GET", bucket, "uploads", &resp);
	if (resp.status != 200 || (doc = xmlReadMemory(resp.body,
	    (int)resp.body_len, "u.xml", NULL, XML_PARSE_NONET)) == NULL)
		die(bucket, resp.body ? resp.body : "no body");
	for (n = xmlDocGetRootElement(doc)->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)n->name, "Upload") != 0)
			continue;
		for (c = n->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE ||
			    (strcmp((const char *)c->name, "Key") != 0 &&
			    strcmp((const char *)c->name, "UploadId") != 0))
				continue;
			t = xmlNodeGetContent(c);
			printf("%s%s", (const char *)t, strcmp((const char *)
			    c->name, "Key") == 0 ? " " : "\n");
			xmlFree(t);
		}
	}
	xmlFreeDoc(doc);
	http_resp_free(&resp);
	return 0;
}

static int
cmd_etag(const char *path)
{
	struct http_resp resp;
	const char *etag;

	bucket_request("HEAD", path, NULL, &resp);
	if (resp.status != 200 || (etag = http_header(&resp, "etag")) == NULL)
		die(path, "no such object");
	printf("%s\n", etag);
	http_resp_free(&resp);
	return 0;
}

/* Open s3://bucket/prefix with the test endpoint, path style. */
static struct store *
open_url(const char *url)
{
	struct store_opts o = { .s3_endpoint = endpoint,
	    .s3_uri_style = "path" };
	const char *b = url + 5, *slash;
	char *bucket, *err = NULL;
	struct store *s;

	if (strncmp(url, "s3://", 5) != 0)
		die(url, "not an s3:// URL");
	slash = strchr(b, '/');
	bucket = strndup(b, slash ? (size_t)(slash - b) : strlen(b));
	if (store_s3_open(url, bucket, slash ? slash + 1 : "", &o, &s,
	    &err) != 0)
		die("open", err);
	free(bucket);
	return s;
}

static int
cmd_store(int argc, char **argv)
{
	struct store *s = open_url(argv[2]);
	struct store_list l;
	char *err = NULL;
	size_t i;
	int fd, r = 0;

	if ((!strcmp(argv[1], "put") || !strcmp(argv[1], "put-new")) &&
	    argc == 5) {
		if ((fd = open(argv[4], O_RDONLY)) == -1)
			die(argv[4], "cannot open");
		r = argv[1][3] == '\0' ? store_put(s, argv[3], fd, &err) :
		    store_put_if_absent(s, argv[3], fd, &err);
		close(fd);
	} else if (!strcmp(argv[1], "get") && argc == 4)
		r = store_get(s, argv[3], 1, &err);
	else if (!strcmp(argv[1], "list") && argc == 6) {
		r = store_list_after(s, argv[3], argv[4],
		    (size_t)strtoul(argv[5], NULL, 10), &l, &err);
		for (i = 0; r == 0 && i < l.n; i++)
			printf("%s %llu\n", l.entries[i].key,
			    (unsigned long long)l.entries[i].size);
		if (r == 0)
			printf("truncated %d\n", l.truncated);
		store_list_clear(&l);
	} else
		die(argv[1], "bad command or arguments");
	store_free(s);
	if (r != 0)
		fprintf(stderr, "%s\n", err);
	free(err);
	return r != 0;
}

int
main(int argc, char **argv)
{
	if ((endpoint = getenv("S3_ENDPOINT")) == NULL ||
	    strstr(endpoint, "://") == NULL)
		die("S3_ENDPOINT", "set it to http://HOST:PORT");
	http_global_init();
	if (argc == 3 && strcmp(argv[1], "mb") == 0)
		return cmd_mb(argv[2]);
	if (argc == 3 && strcmp(argv[1], "uploads") == 0)
		return cmd_uploads(argv[2]);
	if (argc == 3 && strcmp(argv[1], "etag") == 0)
		return cmd_etag(argv[2]);
	if (argc >= 4)
		return cmd_store(argc, argv);
	fprintf(stderr, "usage: s3bucket mb|uploads BUCKET | etag BUCKET/KEY |"
	    " put|put-new URL KEY FILE | get URL KEY |"
	    " list URL PREFIX AFTER MAX\n");
	return 2;
}
