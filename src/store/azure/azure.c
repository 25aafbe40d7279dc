/*
 * store_azure.c: a store in an Azure Blob container (azure://container/prefix).
 *
 * Credentials come from the environment, never from options or URLs:
 * AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY (base64; every request is
 * signed with Shared Key, see azure_sign.h), or AZURE_STORAGE_SAS_TOKEN
 * (appended to every query string, no Authorization header).  The key wins
 * when both are set.  The endpoint is opts->azure_endpoint, path style
 * (http://127.0.0.1:10000/devstoreaccount1), or
 * https://<account>.blob.core.windows.net.
 *
 * put is one Put Blob up to the multipart threshold (64 MiB).  Above it,
 * each part (16 MiB) goes up with Put Block, read from the fd one part at
 * a time, and Put Block List makes the whole object appear at once; the
 * blocks of an upload that never commits expire in the service.  Block ids
 * carry a random tag per upload so that two writers of one name never mix
 * their blocks.  put_if_absent sends If-None-Match: * (on Put Blob, or on
 * Put Block List after a Get Blob Properties that saves uploading for
 * nothing); 409 BlobAlreadyExists or 412 is LS_ERR_EXISTS.  Every put
 * also sets the metadata x-ms-meta-logshipupload to a random tag: when a
 * put_if_absent was retried after a try whose answer was lost, a 409 whose
 * blob carries our tag is our own success, not a lost race.
 *
 * get writes to the fd as the body arrives; a download cut short resumes
 * with x-ms-range from the bytes already written (If-Match the first
 * ETag), and its retry deadline starts again whenever a try made progress.
 *
 * Listing: Azure has List Blobs with prefix, maxresults and an opaque
 * continuation marker, but no start-after.  Every NextMarker seen is kept
 * in a per-store index keyed by (listing prefix, last name of the page it
 * follows); a listing after S starts from the marker of the greatest name
 * <= S (or from the beginning) and skips names <= S.  Paging as
 * store_list_all does costs one request per page; a jump to an unseen
 * place (catalog's "<gen>/\xff") scans from the nearest known marker in
 * pages of LIST_SCAN and remembers their markers.  Markers are never made
 * from names: Azurite would accept a plain name, the real service not.
 * The index holds at most MARKS_MAX entries and is emptied when full.
 *
 * Retries: network errors, 408, 429 and 5xx, with http_backoff until
 * deadline_s (300 s) after a request's first try.  Anything else is final
 * and reads "HTTP <status> <x-ms-error-code>: <first line of Message>".
 *
 * Test-only overrides of opts: LOGSHIP_AZURE_MULTIPART_THRESHOLD and
 * LOGSHIP_AZURE_PART_SIZE (bytes), LOGSHIP_AZURE_DEADLINE_S.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "common/crashpoint.h"
#include "common/error.h"
#include "common/util.h"
#include "store/azure/azure.h"
#include "store/azure/sign.h"
#include "store/http.h"
#include "store/store_int.h"
#include "store/xml.h"

#define AZ_VERSION		"2021-08-06"
#define MIB			(1024ULL * 1024)
#define DEF_THRESHOLD		(64 * MIB)
#define DEF_PART		(16 * MIB)
#define MAX_PUT_BLOB		(5000 * MIB)	/* service limits */
#define MAX_BLOCK		(4000 * MIB)
#define MAX_BLOCKS		50000
#define DEF_DEADLINE_S		300
#define ERR_BODY_MAX		(64 * 1024)
#define LIST_BODY_MAX		(32 * MIB)
#define LIST_SCAN		5000		/* maxresults when skipping */
#define MARKS_MAX		4096

/* A continuation marker: listing prefix from marker gives names > after. */
struct mark {
	char	*prefix;
	char	*after;
	char	*marker;
};

struct store_azure {
	struct store	 base;
	char		*container;
	char		*prefix;	/* "" or "a/b/" */
	char		*base_url;	/* endpoint, no trailing '/' */
	const char	*base_path;	/* its path: "" or "/account" */
	char		*account;	/* NULL only with a SAS token */
	uint8_t		*key;		/* decoded; NULL with a SAS token */
	size_t		 keylen;
	char		*sas;		/* without '?'; NULL with a key */
	char		*ca_file;
	uint64_t	 threshold;
	uint64_t	 part_size;
	int64_t		 deadline_us;
	pthread_mutex_t	 lock;		/* protects marks */
	struct mark	*marks;		/* sorted by (prefix, after) */
	size_t		 nmarks;
};

/* One request, retried as a whole (a download resumes). */
struct az_req {
	const char	*op;		/* for messages: "put", "get", ... */
	const char	*key;		/* for messages */
	const char	*method;
	const char	*name;		/* full blob name; NULL: the container */
	const char	*query;		/* encoded, or NULL */
	const char	*hdr[4];	/* more header lines, NULL-terminated */
	int		 fd;		/* body: size bytes of fd from off... */
	uint64_t	 off;
	uint64_t	 size;
	const void	*body;		/* ...or body_len bytes of body */
	size_t		 body_len;
	int		 resp_fd;	/* -1, or a 2xx body goes here */
	size_t		 resp_max;
	long		 timeout_s;
	int		 if_absent;	/* 409/412 mean LS_ERR_EXISTS */
	int		 tries;		/* made so far */
	uint64_t	 written;	/* to resp_fd so far */
	char		*etag;		/* of the first 2xx answer to a get */
};

/* What a List Blobs page held. */
struct az_page {
	struct store_list	 list;	/* full names */
	char			*next;	/* NextMarker, NULL if none */
};

static const struct store_ops store_azure_ops;

static void
req_init(struct az_req *q, const char *op, const char *key,
    const char *method, const char *name)
{
	memset(q, 0, sizeof(*q));
	q->op = op;
	q->key = key;
	q->method = method;
	q->name = name;
	q->fd = -1;
	q->resp_fd = -1;
}

/* The full blob name of key: prefix + key; NULL when out of memory. */
static char *
blob_name(const struct store_azure *az, const char *key)
{
	char *s;

	return asprintf(&s, "%s%s", az->prefix, key) < 0 ? NULL : s;
}

static int
nomem(struct store_azure *az, const struct az_req *q, char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_NOMEM, "store %s: %s %s: out of memory",
	    az->base.url, q->op, q->key);
}

/* Path (encoded, for signing) and full URL of a request. */
static int
req_url(const struct store_azure *az, const struct az_req *q, char **path,
    char **url)
{
	char *enc = NULL;
	int n;

	*path = *url = NULL;
	if (q->name != NULL && (enc = http_uri_encode(q->name, true)) == NULL)
		return LS_ERR_NOMEM;
	n = asprintf(path, "%s/%s%s%s", az->base_path, az->container,
	    enc != NULL ? "/" : "", enc != NULL ? enc : "");
	free(enc);
	if (n < 0) {
		*path = NULL;
		return LS_ERR_NOMEM;
	}
	n = asprintf(url, "%s%s%s%s%s%s", az->base_url,
	    *path + strlen(az->base_path),
	    q->query != NULL || az->sas != NULL ? "?" : "",
	    q->query != NULL ? q->query : "",
	    q->query != NULL && az->sas != NULL ? "&" : "",
	    az->sas != NULL ? az->sas : "");
	if (n < 0) {
		*url = NULL;
		free(*path);
		*path = NULL;
		return LS_ERR_NOMEM;
	}
	return 0;
}

/* Append a formatted header line to *h; 0 or LS_ERR_NOMEM. */
static int __attribute__((format(printf, 2, 3)))
add_header(struct curl_slist **h, const char *fmt, ...)
{
	struct curl_slist *l;
	va_list ap;
	char *line;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return LS_ERR_NOMEM;
	l = curl_slist_append(*h, line);
	free(line);
	if (l == NULL)
		return LS_ERR_NOMEM;
	*h = l;
	return 0;
}

/* The headers every try sends, before the Authorization. */
static int
base_headers(const struct az_req *q, struct curl_slist **h)
{
	char date[AZURE_DATE_LEN];
	size_t i;
	int r = 0;

	azure_date(time(NULL), date);
	r |= add_header(h, "x-ms-date: %s", date);
	r |= add_header(h, "x-ms-version: %s", AZ_VERSION);
	for (i = 0; i < 4 && q->hdr[i] != NULL; i++)
		r |= add_header(h, "%s", q->hdr[i]);
	if (strcmp(q->method, "PUT") == 0)
		r |= add_header(h, "Content-Length: %" PRIu64,
		    q->fd >= 0 ? q->size : (uint64_t)q->body_len);
	if (q->resp_fd >= 0 && q->written > 0) {
		r |= add_header(h, "x-ms-range: bytes=%" PRIu64 "-", q->written);
		if (q->etag != NULL)
			r |= add_header(h, "If-Match: %s", q->etag);
	}
	return r != 0 ? LS_ERR_NOMEM : 0;
}

/* All headers of one try, signed when the store has a key. */
static int
req_headers(const struct store_azure *az, const struct az_req *q,
    const char *path, struct curl_slist **h)
{
	char sig[AZURE_SIG_LEN + 1], *sts = NULL;
	int r;

	if ((r = base_headers(q, h)) != 0 || az->key == NULL)
		return r;
	if ((r = azure_string_to_sign(az->account, q->method, path, q->query,
	    *h, &sts)) != 0)
		return r;
	azure_signature(az->key, az->keylen, sts, sig);
	free(sts);
	r = add_header(h, "Authorization: SharedKey %s:%s", az->account, sig);
	OPENSSL_cleanse(sig, sizeof(sig));
	return r;
}

/* Remember the ETag of the first answer whose body goes to resp_fd. */
static void
note_download(struct az_req *q, const struct http_resp *resp)
{
	const char *etag;

	if (q->resp_fd < 0 || resp->status < 200 || resp->status >= 300)
		return;
	q->written += resp->written;
	if (q->etag == NULL && (etag = http_header(resp, "etag")) != NULL)
		q->etag = strdup(etag);
}

/* One try: 0 when an answer came (any status), or http_do's error. */
static int
req_try(struct store_azure *az, struct az_req *q, const char *path,
    const char *url, struct http_resp *resp, char **errmsg)
{
	struct curl_slist *h = NULL;
	struct http_req hr;
	int r;

	if ((r = req_headers(az, q, path, &h)) != 0) {
		curl_slist_free_all(h);
		return ls_errf(errmsg, r, "out of memory");
	}
	hr = (struct http_req){ .method = q->method, .url = url, .headers = h,
	    .body = q->body, .body_len = q->body_len, .body_fd = q->fd,
	    .body_off = q->off, .body_size = q->size, .resp_fd = q->resp_fd,
	    .resp_max = q->resp_max > 0 ? q->resp_max : ERR_BODY_MAX,
	    .ca_file = az->ca_file, .timeout_s = q->timeout_s };
	q->tries++;
	r = http_do(&hr, resp, errmsg);
	curl_slist_free_all(h);
	note_download(q, resp);
	return r;
}

/*
 * The Azure hooks of the shared exchange: the common retryable statuses
 * only, and a download that got further renews the deadline and goes on
 * from the bytes written (base_headers sends x-ms-range and If-Match).
 */
static const struct http_policy az_policy = { NULL, NULL, true };

/* One try of a request (http_exchange's attempt). */
struct az_try {
	struct store_azure	*az;
	struct az_req		*q;
	const char		*path;
	const char		*url;
};

static int
az_try(void *arg, struct http_resp *resp, char **why)
{
	struct az_try *t = arg;

	return req_try(t->az, t->q, t->path, t->url, resp, why);
}

/*
 * Send q until an answer that is not worth retrying, or the deadline.
 * Returns 0 with *resp (maybe a retryable status, when time ran out), or
 * an error with *errmsg set.
 */
static int
req_run(struct store_azure *az, struct az_req *q, struct http_resp *resp,
    char **errmsg)
{
	struct az_try t = { az, q, NULL, NULL };
	struct http_retry rt;
	char *path = NULL, *url = NULL, *msg = NULL;
	int r;

	if (req_url(az, q, &path, &url) != 0)
		return nomem(az, q, errmsg);
	t.path = path;
	t.url = url;
	http_retry_start(&rt, az->deadline_us, 0);
	r = http_exchange(&az_policy, &t, az_try, &rt, resp, &msg);
	if (r != 0)
		r = ls_errf(errmsg, r, "store %s: %s %s: %s%s", az->base.url,
		    q->op, q->key, msg != NULL ? msg : ls_strerror(r),
		    r == LS_ERR_TRANSIENT ? " (gave up retrying)" : "");
	free(msg);
	free(path);
	free(url);
	return r;
}

/* The error code and message of a failed answer (either may be NULL). */
static void
service_error(const struct http_resp *resp, char **code, char **message)
{
	const char *h = http_header(resp, "x-ms-error-code");

	xml_error(resp->body, resp->body_len, code, message);
	if (h != NULL) {
		free(*code);
		*code = http_one_line(strdup(h));
	}
}

/* The LS_ERR_* code of a failed answer, Azure's error codes first. */
static int
status_code(const struct az_req *q, long status, const char *code)
{
	if (status == 404 && code != NULL && strcmp(code, "ContainerNotFound") == 0)
		return LS_ERR_INVALID;
	if (q->if_absent && status == 409 && code != NULL &&
	    strcmp(code, "BlobAlreadyExists") == 0)
		return LS_ERR_EXISTS;
	if (!q->if_absent && status == 412)
		return LS_ERR_IO;	/* an If-Match that no longer holds */
	return http_status_code(&az_policy, status);
}

/* What to check after an answer of this code, into buf. */
static const char *
hint(const struct store_azure *az, long status, const char *code, char *buf,
    size_t len)
{
	*buf = '\0';
	if (status == 401 || status == 403)
		snprintf(buf, len, " (check %s)", az->key != NULL ?
		    "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY" :
		    "AZURE_STORAGE_SAS_TOKEN and its permissions");
	else if (code != NULL && strcmp(code, "ContainerNotFound") == 0)
		snprintf(buf, len, " (create container \"%s\" at %s first)",
		    az->container, az->base_url);
	else if (http_policy_retryable(&az_policy, status))
		snprintf(buf, len, " (gave up retrying)");
	return buf;
}

/*
 * Report a failed answer: "store URL: op key: HTTP 403 Code: message",
 * and return its LS_ERR_* code.
 */
static int
req_fail(struct store_azure *az, const struct az_req *q,
    const struct http_resp *resp, char **errmsg)
{
	char *code, *message, tip[256], text[2 * HTTP_MSG_MAX + 64];
	int r;

	service_error(resp, &code, &message);
	r = status_code(q, resp->status, code);
	ls_errf(errmsg, r, "store %s: %s %s: %s%s", az->base.url, q->op,
	    q->key, http_status_text(text, sizeof(text), resp->status, code,
	    message), hint(az, resp->status, code, tip, sizeof(tip)));
	free(code);
	free(message);
	return r;
}

/* Run q and accept the answer if its status is ok (or ok2). */
static int
req_expect(struct store_azure *az, struct az_req *q, long ok, long ok2,
    struct http_resp *resp, char **errmsg)
{
	int r;

	if ((r = req_run(az, q, resp, errmsg)) != 0)
		return r;
	if (resp->status == ok || resp->status == ok2)
		return 0;
	return req_fail(az, q, resp, errmsg);
}

/* A random tag of 16 hex digits. */
static void
random_tag(char out[17])
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)ls_now_us() ^ ((uint64_t)getpid() << 32);
	snprintf(out, 17, "%016" PRIx64, v);
}

/* Seconds allowed for sending size bytes: 2 min + 128 KiB/s. */
static long
upload_timeout(uint64_t size)
{
	return (long)(120 + size / (128 * 1024));
}

/* Put Blob: the whole of fd in one request. */
static int
put_blob(struct store_azure *az, const char *key, const char *name, int fd,
    uint64_t size, int if_absent, const char *meta, int *tries,
    char **errmsg)
{
	struct http_resp resp = { 0 };
	struct az_req q;
	int r;

	req_init(&q, if_absent ? "put_if_absent" : "put", key, "PUT", name);
	q.hdr[0] = "x-ms-blob-type: BlockBlob";
	q.hdr[1] = meta;
	q.hdr[2] = if_absent ? "If-None-Match: *" : NULL;
	q.fd = fd;
	q.size = size;
	q.if_absent = if_absent;
	q.timeout_s = upload_timeout(size);
	r = req_expect(az, &q, 201, 201, &resp, errmsg);
	*tries = q.tries;
	http_resp_free(&resp);
	return r;
}

/* Put Block: size bytes of fd at off as block id of name. */
static int
put_block(struct store_azure *az, const char *op, const char *key,
    const char *name, int fd, uint64_t off, uint64_t size, const char *id,
    char **errmsg)
{
	struct http_resp resp = { 0 };
	struct az_req q;
	char query[96];
	int r;

	snprintf(query, sizeof(query), "comp=block&blockid=%s", id);
	req_init(&q, op, key, "PUT", name);
	q.query = query;
	q.fd = fd;
	q.off = off;
	q.size = size;
	q.timeout_s = upload_timeout(size);
	r = req_expect(az, &q, 201, 201, &resp, errmsg);
	http_resp_free(&resp);
	return r;
}

/* The Put Block List body committing n blocks "<tag><index:08x>". */
static char *
block_list_xml(const char *tag, uint64_t n, size_t *len)
{
	char *buf = NULL;
	uint64_t i;
	FILE *f;

	if ((f = open_memstream(&buf, len)) == NULL)
		return NULL;
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>", f);
	for (i = 0; i < n; i++)
		fprintf(f, "<Latest>%s%08x</Latest>", tag, (unsigned int)i);
	fputs("</BlockList>", f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Put Block List: commit the n blocks of this upload as name. */
static int
put_block_list(struct store_azure *az, const char *op, const char *key,
    const char *name, const char *tag, uint64_t n, int if_absent,
    const char *meta, int *tries, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct az_req q;
	char *xml;
	size_t len;
	int r;

	req_init(&q, op, key, "PUT", name);
	if ((xml = block_list_xml(tag, n, &len)) == NULL)
		return nomem(az, &q, errmsg);
	q.query = "comp=blocklist";
	q.hdr[0] = "Content-Type: application/xml";
	q.hdr[1] = meta;
	q.hdr[2] = if_absent ? "If-None-Match: *" : NULL;
	q.body = xml;
	q.body_len = len;
	q.if_absent = if_absent;
	r = req_expect(az, &q, 201, 201, &resp, errmsg);
	*tries = q.tries;
	http_resp_free(&resp);
	free(xml);
	return r;
}

static int az_head_name(struct store_azure *, const char *op, const char *key,
    const char *name, uint64_t *size, char **upload, char **errmsg);

/* Put Block for each part of fd, then Put Block List. */
static int
put_blocks(struct store_azure *az, const char *key, const char *name,
    int fd, uint64_t size, int if_absent, const char *meta, int *tries,
    char **errmsg)
{
	const char *op = if_absent ? "put_if_absent" : "put";
	uint64_t part = az->part_size, n, i, len, have;
	char tag[17], id[40];
	int r;

	if (if_absent && (r = az_head_name(az, op, key, name, &have, NULL,
	    errmsg)) != LS_ERR_NOTFOUND)
		return r == 0 ? ls_errf(errmsg, LS_ERR_EXISTS, "store %s: %s "
		    "%s: already exists", az->base.url, op, key) : r;
	if (size / part >= MAX_BLOCKS)
		part = size / (MAX_BLOCKS - 1) + 1;
	n = (size + part - 1) / part;
	random_tag(tag);
	for (i = 0; i < n; i++) {
		len = size - i * part < part ? size - i * part : part;
		snprintf(id, sizeof(id), "%s%08x", tag, (unsigned int)i);
		if ((r = put_block(az, op, key, name, fd, i * part, len, id,
		    errmsg)) != 0)
			return r;
		if (i + 1 < n)
			crashpoint("store-between-parts");
	}
	return put_block_list(az, op, key, name, tag, n, if_absent, meta,
	    tries, errmsg);
}

/*
 * After a retried put_if_absent met 409/412: the blob is ours if it
 * carries our upload tag (an earlier try succeeded, its answer was lost).
 */
static int
is_ours(struct store_azure *az, const char *key, const char *name,
    const char *tag)
{
	uint64_t size;
	char *upload = NULL;
	int ours;

	ours = az_head_name(az, "put_if_absent", key, name, &size, &upload,
	    NULL) == 0 && upload != NULL && strcmp(upload, tag) == 0;
	free(upload);
	return ours;
}

static int
put_common(struct store_azure *az, const char *key, int fd, int if_absent,
    char **errmsg)
{
	const char *op = if_absent ? "put_if_absent" : "put";
	char *name = NULL, *msg = NULL, tag[17], meta[64];
	struct stat st;
	int r, tries = 0;

	if (fstat(fd, &st) != 0)
		return ls_errf(errmsg, LS_ERR_IO, "store %s: %s %s: %s",
		    az->base.url, op, key, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: %s %s: the "
		    "content is not a regular file", az->base.url, op, key);
	if ((name = blob_name(az, key)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	random_tag(tag);
	snprintf(meta, sizeof(meta), "x-ms-meta-logshipupload: %s", tag);
	if ((uint64_t)st.st_size <= az->threshold)
		r = put_blob(az, key, name, fd, (uint64_t)st.st_size, if_absent,
		    meta, &tries, &msg);
	else
		r = put_blocks(az, key, name, fd, (uint64_t)st.st_size,
		    if_absent, meta, &tries, &msg);
	if (r == LS_ERR_EXISTS && tries > 1 && is_ours(az, key, name, tag))
		r = 0;
	if (r != 0)
		ls_errf(errmsg, r, "%s", msg != NULL ? msg : ls_strerror(r));
	free(msg);
	free(name);
	return r;
}

static int
az_put(struct store *s, const char *key, int fd, char **errmsg)
{
	return put_common((struct store_azure *)s, key, fd, 0, errmsg);
}

static int
az_put_if_absent(struct store *s, const char *key, int fd, char **errmsg)
{
	return put_common((struct store_azure *)s, key, fd, 1, errmsg);
}

static int
az_get(struct store *s, const char *key, int fd, char **errmsg)
{
	struct store_azure *az = (struct store_azure *)s;
	struct http_resp resp = { 0 };
	struct az_req q;
	char *name;
	int r;

	if ((name = blob_name(az, key)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	req_init(&q, "get", key, "GET", name);
	q.resp_fd = fd;
	if ((r = req_run(az, &q, &resp, errmsg)) == 0 && resp.status != 200 &&
	    resp.status != 206 && !(resp.status == 416 && q.written > 0)) {
		if (resp.status == 412)
			r = ls_errf(errmsg, LS_ERR_IO, "store %s: get %s: the "
			    "object changed while it was read", s->url, key);
		else
			r = req_fail(az, &q, &resp, errmsg);
	}
	http_resp_free(&resp);
	free(q.etag);
	free(name);
	return r;
}

static int
az_get_range(struct store *s, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg)
{
	struct store_azure *az = (struct store_azure *)s;
	struct http_resp resp = { 0 };
	struct az_req q;
	char *name, range[64];
	int r;

	*got = 0;
	if (len == 0)
		return 0;
	if ((name = blob_name(az, key)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	snprintf(range, sizeof(range), "x-ms-range: bytes=%" PRIu64 "-%" PRIu64,
	    off, off + len - 1);
	req_init(&q, "get", key, "GET", name);
	q.hdr[0] = range;
	q.resp_max = len > ERR_BODY_MAX ? len : ERR_BODY_MAX;
	if ((r = req_run(az, &q, &resp, errmsg)) != 0)
		goto out;
	if (resp.status == 206 || (resp.status == 200 && off == 0)) {
		*got = resp.body_len < len ? resp.body_len : len;
		if (*got > 0)
			memcpy(buf, resp.body, *got);
	} else if (resp.status != 416)	/* 416: off is past the end */
		r = req_fail(az, &q, &resp, errmsg);
 out:
	http_resp_free(&resp);
	free(name);
	return r;
}

/*
 * Get Blob Properties of name: its size and, if upload is not NULL, its
 * upload tag (NULL if none; caller frees).  LS_ERR_NOTFOUND if absent.
 */
static int
az_head_name(struct store_azure *az, const char *op, const char *key,
    const char *name, uint64_t *size, char **upload, char **errmsg)
{
	struct http_resp resp = { 0 };
	const char *len, *tag;
	struct az_req q;
	char *end;
	int r;

	req_init(&q, op, key, "HEAD", name);
	if ((r = req_expect(az, &q, 200, 200, &resp, errmsg)) != 0)
		goto out;
	len = http_header(&resp, "content-length");
	errno = 0;
	if (len == NULL || (*size = strtoull(len, &end, 10), errno != 0) ||
	    *end != '\0' || end == len) {
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "store %s: %s %s: no valid "
		    "Content-Length in the answer", az->base.url, op, key);
		goto out;
	}
	if (upload != NULL && (tag = http_header(&resp,
	    "x-ms-meta-logshipupload")) != NULL)
		*upload = strdup(tag);
 out:
	http_resp_free(&resp);
	return r;
}

static int
az_head(struct store *s, const char *key, uint64_t *size, char **errmsg)
{
	struct store_azure *az = (struct store_azure *)s;
	char *name;
	int r;

	if ((name = blob_name(az, key)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	r = az_head_name(az, "head", key, name, size, NULL, errmsg);
	free(name);
	return r;
}

static int
az_del(struct store *s, const char *key, char **errmsg)
{
	struct store_azure *az = (struct store_azure *)s;
	struct http_resp resp = { 0 };
	struct az_req q;
	char *name, *msg;
	int r;

	if ((name = blob_name(az, key)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	req_init(&q, "delete", key, "DELETE", name);
	msg = NULL;
	r = req_run(az, &q, &resp, errmsg);
	if (r == 0 && resp.status != 202 && resp.status != 200) {
		r = req_fail(az, &q, &resp, &msg);
		if (r == LS_ERR_NOTFOUND)
			r = 0;		/* BlobNotFound, not ContainerNotFound */
		else
			ls_errf(errmsg, r, "%s", msg);
	}
	free(msg);
	http_resp_free(&resp);
	free(name);
	return r;
}

/* Marker index ------------------------------------------------------------ */

static int
mark_cmp(const char *prefix, const char *after, const struct mark *m)
{
	int c = strcmp(prefix, m->prefix);

	return c != 0 ? c : strcmp(after, m->after);
}

/* Index of the first mark >= (prefix, after). */
static size_t
marks_search(const struct store_azure *az, const char *prefix,
    const char *after)
{
	size_t lo = 0, hi = az->nmarks, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (mark_cmp(prefix, after, &az->marks[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
marks_clear(struct store_azure *az)
{
	size_t i;

	for (i = 0; i < az->nmarks; i++) {
		free(az->marks[i].prefix);
		free(az->marks[i].after);
		free(az->marks[i].marker);
	}
	free(az->marks);
	az->marks = NULL;
	az->nmarks = 0;
}

/*
 * The marker to list prefix from to see every name > after: that of the
 * greatest known name <= after (*exact when equal), or NULL (from the
 * start).  The result is a copy (caller frees).
 */
static char *
marks_find(struct store_azure *az, const char *prefix, const char *after,
    int *exact)
{
	const struct mark *m = NULL;
	char *marker = NULL;
	size_t i;

	*exact = *after == '\0';
	if (*after == '\0')
		return NULL;
	pthread_mutex_lock(&az->lock);
	i = marks_search(az, prefix, after);
	if (i < az->nmarks && mark_cmp(prefix, after, &az->marks[i]) == 0)
		m = &az->marks[i];
	else if (i > 0 && strcmp(az->marks[i - 1].prefix, prefix) == 0)
		m = &az->marks[i - 1];
	if (m != NULL && (marker = strdup(m->marker)) != NULL)
		*exact = strcmp(m->after, after) == 0;
	pthread_mutex_unlock(&az->lock);
	return marker;
}

/* Remember that listing prefix from marker gives the names > after. */
static void
marks_add(struct store_azure *az, const char *prefix, const char *after,
    const char *marker)
{
	struct mark m, *bigger;
	size_t i;

	pthread_mutex_lock(&az->lock);
	if (az->nmarks >= MARKS_MAX)
		marks_clear(az);
	i = marks_search(az, prefix, after);
	if (i < az->nmarks && mark_cmp(prefix, after, &az->marks[i]) == 0)
		goto out;
	m = (struct mark){ strdup(prefix), strdup(after), strdup(marker) };
	bigger = realloc(az->marks, (az->nmarks + 1) * sizeof(*bigger));
	if (m.prefix == NULL || m.after == NULL || m.marker == NULL ||
	    bigger == NULL) {
		free(m.prefix);
		free(m.after);
		free(m.marker);
		if (bigger != NULL)
			az->marks = bigger;
		goto out;		/* only a lost shortcut */
	}
	az->marks = bigger;
	memmove(&az->marks[i + 1], &az->marks[i],
	    (az->nmarks - i) * sizeof(*bigger));
	az->marks[i] = m;
	az->nmarks++;
 out:
	pthread_mutex_unlock(&az->lock);
}

/* Listing ------------------------------------------------------------------ */

static int page_parse(const char *, size_t, struct az_page *);

/* Decode a name the service percent-encoded (<Name Encoded="true">). */
static void
decode_name(xmlNode *n, char *s)
{
	xmlChar *enc = xmlGetProp(n, (const xmlChar *)"Encoded");
	char *p = s;
	unsigned int c;

	if (enc != NULL && strcmp((const char *)enc, "true") == 0) {
		for (; *s != '\0'; s++) {
			if (*s == '%' && isxdigit((unsigned char)s[1]) &&
			    isxdigit((unsigned char)s[2]) &&
			    sscanf(s + 1, "%2x", &c) == 1) {
				*p++ = (char)c;
				s += 2;
			} else
				*p++ = *s;
		}
		*p = '\0';
	}
	xmlFree(enc);
}

/* Add one <Blob> to the page; 0, or -1 if it lacks a name or a size. */
static int
page_add(struct az_page *pg, xmlNode *blob, size_t *cap)
{
	xmlNode *name = xml_child(blob, "Name");
	char *key = xml_text(name), *len, *end;
	struct store_entry *bigger;
	uint64_t size;

	len = xml_child_text(xml_child(blob, "Properties"), "Content-Length");
	size = len != NULL ? strtoull(len, &end, 10) : 0;
	if (key == NULL || len == NULL || *end != '\0' || end == len) {
		free(key);
		free(len);
		return -1;
	}
	free(len);
	decode_name(name, key);
	if (pg->list.n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((bigger = realloc(pg->list.entries,
		    *cap * sizeof(*bigger))) == NULL) {
			free(key);
			return -1;
		}
		pg->list.entries = bigger;
	}
	pg->list.entries[pg->list.n].key = key;
	pg->list.entries[pg->list.n].size = size;
	pg->list.n++;
	return 0;
}

int
azure_list_parse(const char *body, size_t len, struct store_list *list,
    char **next)
{
	struct az_page pg = { { NULL, 0, 0 }, NULL };
	int r = page_parse(body, len, &pg);

	*list = pg.list;
	*next = pg.next;
	return r;
}

/* Read a List Blobs answer into pg; 0 or -1 if it does not parse. */
static int
page_parse(const char *body, size_t len, struct az_page *pg)
{
	xmlDoc *doc = xml_parse(body, len);
	xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL, *b;
	size_t cap = 0;
	int r = -1;

	if (root == NULL || strcmp((const char *)root->name,
	    "EnumerationResults") != 0)
		goto out;
	b = xml_child(root, "Blobs");
	for (b = b != NULL ? b->children : NULL; b != NULL; b = b->next)
		if (b->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)b->name, "Blob") == 0 &&
		    page_add(pg, b, &cap) != 0)
			goto out;
	pg->next = xml_child_text(root, "NextMarker");
	if (pg->next != NULL && *pg->next == '\0') {
		free(pg->next);
		pg->next = NULL;
	}
	r = 0;
 out:
	xmlFreeDoc(doc);
	return r;
}

/* One List Blobs request: names beginning with prefix, from marker. */
static int
list_page(struct store_azure *az, const char *label, const char *prefix,
    const char *marker, size_t max, struct az_page *pg, char **errmsg)
{
	struct http_resp resp = { 0 };
	char *ep = http_uri_encode(prefix, false), *em = NULL, *query = NULL;
	struct az_req q;
	int r;

	req_init(&q, "list", label, "GET", NULL);
	if (ep == NULL || (marker != NULL &&
	    (em = http_uri_encode(marker, false)) == NULL) ||
	    asprintf(&query, "comp=list%s%s&maxresults=%zu&prefix=%s"
	    "&restype=container", em != NULL ? "&marker=" : "",
	    em != NULL ? em : "", max, ep) < 0) {
		query = NULL;
		r = nomem(az, &q, errmsg);
		goto out;
	}
	q.query = query;
	q.resp_max = LIST_BODY_MAX;
	if ((r = req_expect(az, &q, 200, 200, &resp, errmsg)) == 0 &&
	    page_parse(resp.body, resp.body_len, pg) != 0)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "store %s: list %s: the "
		    "answer is not a blob listing", az->base.url, label);
 out:
	http_resp_free(&resp);
	free(ep);
	free(em);
	free(query);
	return r;
}

/*
 * Move the names of pg that are > after into out (as keys relative to the
 * store's prefix), until out has max.  Returns 1 if pg had more.
 */
static int
page_take(struct store_azure *az, struct az_page *pg, const char *after,
    size_t max, struct store_list *out, size_t *cap)
{
	size_t i, plen = strlen(az->prefix);
	struct store_entry *e, *bigger;

	for (i = 0; i < pg->list.n; i++) {
		e = &pg->list.entries[i];
		if (strcmp(e->key, after) <= 0 || strncmp(e->key, az->prefix, plen) != 0)
			continue;
		if (out->n == max)
			return 1;
		if (out->n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			if ((bigger = realloc(out->entries,
			    *cap * sizeof(*bigger))) == NULL)
				return -1;
			out->entries = bigger;
		}
		memmove(e->key, e->key + plen, strlen(e->key + plen) + 1);
		out->entries[out->n++] = *e;
		e->key = NULL;
	}
	return 0;
}

static void
page_clear(struct az_page *pg)
{
	store_list_clear(&pg->list);
	free(pg->next);
	pg->next = NULL;
}

/* The state of one list_after call. */
struct lister {
	const char	*label;		/* caller's prefix, for messages */
	char		*prefix;	/* full listing prefix */
	char		*after;		/* full start_after, or "" */
	char		*marker;	/* where the next page starts */
	int		 exact;		/* it starts right after "after" */
	size_t		 max;
	size_t		 cap;
};

/* Fetch the next page into out; 1 when out is complete, 0 to go on. */
static int
list_step(struct store_azure *az, struct lister *l, struct store_list *out,
    char **errmsg)
{
	struct az_page pg = { { NULL, 0, 0 }, NULL };
	size_t want = l->exact && l->max - out->n < LIST_SCAN ?
	    l->max - out->n : LIST_SCAN;
	char *last = NULL;
	int r, more = 0;

	if ((r = list_page(az, *l->label ? l->label : "(all)", l->prefix,
	    l->marker, want, &pg, errmsg)) != 0)
		goto out;
	if ((pg.list.n > 0 && (last = strdup(pg.list.entries[pg.list.n - 1].key))
	    == NULL) || (more = page_take(az, &pg, l->after, l->max, out,
	    &l->cap)) < 0) {
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pg.next != NULL && l->marker != NULL && strcmp(pg.next, l->marker) == 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "store %s: list %s: the listing "
		    "did not advance", az->base.url, l->label);
		goto out;
	}
	if (pg.next != NULL && last != NULL)
		marks_add(az, l->prefix, last, pg.next);
	if (last != NULL && strcmp(last, l->after) >= 0)
		l->exact = 1;
	out->truncated = more || (pg.next != NULL && out->n == l->max);
	r = more || pg.next == NULL || out->n == l->max;
	free(l->marker);
	l->marker = pg.next;
	pg.next = NULL;
 out:
	free(last);
	page_clear(&pg);
	return r;
}

static int
az_list_after(struct store *s, const char *prefix, const char *start_after,
    size_t max, struct store_list *out, char **errmsg)
{
	struct store_azure *az = (struct store_azure *)s;
	struct lister l = { prefix, NULL, NULL, NULL, 0, max, 0 };
	int r = 0;

	if (asprintf(&l.prefix, "%s%s", az->prefix, prefix) < 0 ||
	    asprintf(&l.after, "%s%s", *start_after ? az->prefix : "",
	    start_after) < 0) {
		free(l.prefix);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	l.marker = marks_find(az, l.prefix, l.after, &l.exact);
	while (max > 0 && (r = list_step(az, &l, out, errmsg)) == 0)
		;
	free(l.prefix);
	free(l.after);
	free(l.marker);
	return r < 0 ? r : 0;
}

static void
az_free(struct store *s)
{
	struct store_azure *az = (struct store_azure *)s;

	if (az == NULL)
		return;
	if (az->key != NULL)
		OPENSSL_cleanse(az->key, az->keylen);
	if (az->sas != NULL)
		OPENSSL_cleanse(az->sas, strlen(az->sas));
	free(az->key);
	free(az->sas);
	marks_clear(az);
	pthread_mutex_destroy(&az->lock);
	free(az->container);
	free(az->prefix);
	free(az->base_url);
	free(az->account);
	free(az->ca_file);
	free(az->base.url);
	free(az);
}

/* Opening ----------------------------------------------------------------- */

/* Azure's rule: 3-63 of a-z, 0-9 and '-', no "--", no '-' at either end. */
static int
container_ok(const char *c)
{
	size_t i, n = strlen(c);

	if (n < 3 || n > 63 || c[0] == '-' || c[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)c[i]) || isdigit((unsigned char)c[i]) ||
		    (c[i] == '-' && c[i + 1] != '-')))
			return 0;
	return 1;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Account, key or SAS token from the environment. */
static int
open_credentials(struct store_azure *az, int have_endpoint, char **errmsg)
{
	const char *acct = env("AZURE_STORAGE_ACCOUNT");
	const char *key = env("AZURE_STORAGE_KEY");
	const char *sas = env("AZURE_STORAGE_SAS_TOKEN");
	int r;

	if ((key == NULL && sas == NULL) || (acct == NULL &&
	    (key != NULL || !have_endpoint)))
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: no Azure "
		    "credentials: set AZURE_STORAGE_ACCOUNT and "
		    "AZURE_STORAGE_KEY (base64), or AZURE_STORAGE_SAS_TOKEN "
		    "(with AZURE_STORAGE_ACCOUNT unless --azure-endpoint is "
		    "given)", az->base.url);
	if (acct != NULL && (az->account = strdup(acct)) == NULL)
		return LS_ERR_NOMEM;
	if (key != NULL) {
		if ((r = azure_key_decode(key, &az->key, &az->keylen)) != 0)
			return ls_errf(errmsg, r, "store %s: AZURE_STORAGE_KEY "
			    "is not base64", az->base.url);
		return 0;
	}
	if ((az->sas = strdup(*sas == '?' ? sas + 1 : sas)) == NULL)
		return LS_ERR_NOMEM;
	return 0;
}

/* The endpoint URL and its path (what the canonicalized resource names). */
static int
open_endpoint(struct store_azure *az, const char *endpoint, char **errmsg)
{
	const char *p;
	size_t n;

	if (endpoint == NULL) {
		if (asprintf(&az->base_url, "https://%s.blob.core.windows.net",
		    az->account) < 0) {
			az->base_url = NULL;
			return LS_ERR_NOMEM;
		}
	} else if ((az->base_url = strdup(endpoint)) == NULL)
		return LS_ERR_NOMEM;
	for (n = strlen(az->base_url); n > 0 && az->base_url[n - 1] == '/';)
		az->base_url[--n] = '\0';
	if ((strncmp(az->base_url, "http://", 7) != 0 &&
	    strncmp(az->base_url, "https://", 8) != 0) ||
	    strchr(az->base_url, '?') != NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: Azure endpoint "
		    "\"%s\" is not an http:// or https:// URL without a query",
		    az->base.url, az->base_url);
	p = strchr(az->base_url + 8, '/');
	az->base_path = p != NULL ? p : "";
	return 0;
}

/* A number from opts, overridden by a test-only variable. */
static int
open_size(struct store_azure *az, const char *var, uint64_t opt,
    uint64_t def, uint64_t limit, uint64_t *out, char **errmsg)
{
	const char *v = env(var);
	char *end;

	*out = opt > 0 ? opt : def;
	if (v != NULL) {
		errno = 0;
		*out = strtoull(v, &end, 10);
		if (errno != 0 || *end != '\0' || *out == 0)
			return ls_errf(errmsg, LS_ERR_INVALID, "store %s: %s=\"%s\" "
			    "is not a positive number", az->base.url, var, v);
	}
	if (*out > limit)
		*out = limit;
	return 0;
}

static int
open_settings(struct store_azure *az, const char *container,
    const char *prefix, const struct store_opts *o, char **errmsg)
{
	uint64_t deadline_s;
	int r;

	if (!container_ok(container))
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: \"%s\" is not "
		    "an Azure container name (3-63 of a-z, 0-9 and single "
		    "'-')", az->base.url, container);
	if ((az->container = strdup(container)) == NULL ||
	    asprintf(&az->prefix, "%s%s", prefix, *prefix ? "/" : "") < 0 ||
	    (o->azure_ca_file != NULL &&
	    (az->ca_file = strdup(o->azure_ca_file)) == NULL))
		return LS_ERR_NOMEM;
	if ((r = open_credentials(az, o->azure_endpoint != NULL, errmsg)) != 0 ||
	    (r = open_endpoint(az, o->azure_endpoint, errmsg)) != 0 ||
	    (r = open_size(az, "LOGSHIP_AZURE_MULTIPART_THRESHOLD",
	    o->multipart_threshold, DEF_THRESHOLD, MAX_PUT_BLOB, &az->threshold,
	    errmsg)) != 0 ||
	    (r = open_size(az, "LOGSHIP_AZURE_PART_SIZE", o->part_size, DEF_PART,
	    MAX_BLOCK, &az->part_size, errmsg)) != 0 ||
	    (r = open_size(az, "LOGSHIP_AZURE_DEADLINE_S", o->deadline_s > 0 ?
	    (uint64_t)o->deadline_s : 0, DEF_DEADLINE_S, 7 * 86400, &deadline_s,
	    errmsg)) != 0)
		return r;
	az->deadline_us = (int64_t)deadline_s * 1000000;
	return 0;
}

int
store_azure_open(const char *url, const char *container, const char *prefix,
    const struct store_opts *opts, struct store **out, char **errmsg)
{
	static const struct store_opts none;
	struct store_azure *az;
	int r;

	*out = NULL;
	http_global_init();
	xml_global_init();
	if ((az = calloc(1, sizeof(*az))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	az->base.ops = &store_azure_ops;
	pthread_mutex_init(&az->lock, NULL);
	if ((az->base.url = strdup(url)) == NULL)
		r = LS_ERR_NOMEM;
	else
		r = open_settings(az, container, prefix, opts ? opts : &none,
		    errmsg);
	if (r != 0) {
		if (r == LS_ERR_NOMEM)
			ls_errf(errmsg, r, "store %s: out of memory", url);
		az_free(&az->base);
		return r;
	}
	*out = &az->base;
	return 0;
}

static const struct store_ops store_azure_ops = STORE_OPS(az, "azure");
