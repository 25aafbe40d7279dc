/*
 * store_gcs.c: a store in Google Cloud Storage through its JSON API
 * (gcs://bucket/prefix).
 *
 * Objects are written with a media upload (one POST) up to the multipart
 * threshold and with a resumable upload session above it, in chunks of
 * part_size (a multiple of 256 KiB) read from the fd, so memory stays
 * bounded.  put_if_absent adds ifGenerationMatch=0: GCS answers 412 if
 * the object exists, and of two concurrent creators exactly one wins.
 * If an attempt whose outcome is unknown (a lost answer) is followed by a
 * 412, the existing object's MD5 is compared with ours: equal means the
 * lost attempt was ours and it succeeded.
 *
 * Every request is retried after network failures, 5xx, 408 and 429 with
 * http_backoff until deadline_s; a 401 makes one fresh token and one more
 * try; any other answer is final.  A download broken half way goes on
 * with a Range request from the bytes already written.
 *
 * Credentials: the service-account key file GOOGLE_APPLICATION_CREDENTIALS
 * (gcs_auth.c), sent as "Authorization: Bearer".  None are sent when
 * STORAGE_EMULATOR_HOST is set (it then also is the default endpoint) or,
 * with no key file named, when LOGSHIP_GCS_ANONYMOUS=1.  Credentials go
 * only to https:// or loopback http:// endpoints.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "common/crashpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "store/gcs/auth.h"
#include "store/gcs/gcs.h"
#include "store/http.h"
#include "store/store_int.h"

#define DEFAULT_ENDPOINT	"https://storage.googleapis.com"
#define DEFAULT_THRESHOLD	(64ULL << 20)
#define DEFAULT_PART		(16ULL << 20)
#define CHUNK_UNIT		(256ULL << 10)	/* resumable chunks: k times */
#define DEFAULT_DEADLINE	300
#define ERRBODY_MAX		(64 * 1024)
#define LIST_RESP_MAX		(32 * 1024 * 1024)
#define LIST_PAGE_MAX		1000
#define NAME_MAX_BYTES		1024		/* GCS object names */
#define MD5_BUF			(256 * 1024)

struct store_gcs {
	struct store	 base;
	char		*endpoint;	/* no trailing '/' */
	char		*bucket;	/* as in the URL (only [a-z0-9._-]) */
	char		*prefix;	/* "" or "a/b/" */
	char		*ca_file;
	struct gcs_auth	*auth;		/* NULL: send no Authorization */
	uint64_t	 threshold;
	uint64_t	 part_size;
	int64_t		 deadline_s;
};

/* One store call: what it is about (for messages) and its retry state. */
struct gcall {
	struct store_gcs	*g;
	const char		*op;
	const char		*key;
	struct http_retry	 rt;		/* deadline, failed attempts */
	bool			 reauthed;	/* new token after a 401 */
	bool			 final;		/* failed, not worth a retry */
	char			*token;		/* sent with the last attempt */
	char			*msg;		/* why the last try failed */
};

static const struct store_ops store_gcs_ops;
static int told_anonymous;	/* the notice is given once per process */

/* Set *errmsg to "store <url>: <op> <key>: <detail>"; return code. */
static int __attribute__((format(printf, 4, 5)))
cerr(struct gcall *c, char **errmsg, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_verrf(&c->g->base, errmsg, code, c->op, c->key, fmt, ap);
	va_end(ap);
	return code;
}

static void
gcall_init(struct gcall *c, struct store_gcs *g, const char *op,
    const char *key)
{
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->op = op;
	c->key = *key != '\0' ? key : "\"\"";
	http_retry_start(&c->rt, g->deadline_s * 1000000, 0);
}

static void
gcall_done(struct gcall *c)
{
	free(c->token);
	free(c->msg);
	c->token = c->msg = NULL;
}

/* An attempt that cannot be retried: note why; return code. */
static int __attribute__((format(printf, 3, 4)))
attempt_fail(struct gcall *c, int code, const char *fmt, ...)
{
	va_list ap;

	free(c->msg);
	va_start(ap, fmt);
	if (vasprintf(&c->msg, fmt, ap) == -1)
		c->msg = NULL;
	va_end(ap);
	c->final = true;
	return code;
}

/* Why key cannot name an object, or NULL. */
static const char *
key_problem(const struct store_gcs *g, const char *key)
{
	const char *p;

	if (*key == '\0')
		return "empty key";
	if (*key == '/')
		return "key must be relative";
	if (strlen(g->prefix) + strlen(key) > NAME_MAX_BYTES)
		return "object name longer than 1024 bytes";
	for (p = key; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "control character in key";
	return NULL;
}

/* malloc'd printf, or NULL. */
static char * __attribute__((format(printf, 1, 2)))
mkstr(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	return s;
}

/* "<endpoint>/storage/v1/b/<bucket>/o/<prefix+key encoded>[?query]". */
static char *
object_url(const struct store_gcs *g, const char *key, const char *query)
{
	char *name = mkstr("%s%s", g->prefix, key), *enc, *url = NULL;

	if (name != NULL && (enc = http_uri_encode(name, false)) != NULL) {
		url = mkstr("%s/storage/v1/b/%s/o/%s%s%s", g->endpoint,
		    g->bucket, enc, query ? "?" : "", query ? query : "");
		free(enc);
	}
	free(name);
	return url;
}

/* The upload URL for prefix+key: uploadType (media or resumable). */
static char *
upload_url(const struct store_gcs *g, const char *key, const char *type,
    bool excl)
{
	char *name = mkstr("%s%s", g->prefix, key), *enc, *url = NULL;

	if (name != NULL && (enc = http_uri_encode(name, false)) != NULL) {
		url = mkstr("%s/upload/storage/v1/b/%s/o?uploadType=%s"
		    "&name=%s%s", g->endpoint, g->bucket, type, enc,
		    excl ? "&ifGenerationMatch=0" : "");
		free(enc);
	}
	free(name);
	return url;
}

/* Seconds allowed for an exchange moving bytes (at least 256 KiB/s). */
static long
xfer_timeout(uint64_t bytes)
{
	return 120 + (long)(bytes / CHUNK_UNIT);
}

/* Copy of hdrs plus "Expect:" and, if token, the Authorization line. */
static struct curl_slist *
headers_with(const struct curl_slist *hdrs, const char *token)
{
	struct curl_slist *l = NULL, *n;
	char *auth = NULL;

	for (; hdrs != NULL; hdrs = hdrs->next) {
		if ((n = curl_slist_append(l, hdrs->data)) == NULL)
			goto fail;
		l = n;
	}
	if ((n = curl_slist_append(l, "Expect:")) == NULL)
		goto fail;
	l = n;
	if (token != NULL) {
		if ((auth = mkstr("Authorization: Bearer %s", token)) == NULL ||
		    (n = curl_slist_append(l, auth)) == NULL)
			goto fail;
		l = n;
		free(auth);
	}
	return l;
 fail:
	free(auth);
	curl_slist_free_all(l);
	return NULL;
}

/* Is url on the endpoint (so that it may be sent the token)? */
static bool
same_origin(const struct store_gcs *g, const char *url)
{
	size_t n = strlen(g->endpoint);

	return strncmp(url, g->endpoint, n) == 0 &&
	    (url[n] == '/' || url[n] == '?' || url[n] == '\0');
}

/*
 * One attempt of q with the extra header lines hdrs, adding a token when
 * the store has credentials and the URL is the endpoint's.  Returns
 * http_do's result; a token that cannot be had is final.
 */
static int
gcs_send(struct gcall *c, struct http_req *q, const struct curl_slist *hdrs,
    struct http_resp *resp)
{
	struct store_gcs *g = c->g;
	struct curl_slist *h;
	int r;

	memset(resp, 0, sizeof(*resp));
	free(c->token);
	free(c->msg);
	c->token = c->msg = NULL;
	if (g->auth != NULL && same_origin(g, q->url) &&
	    (r = gcs_auth_token(g->auth, c->rt.deadline_us, &c->token,
	    &c->msg)) != 0) {
		c->final = true;
		return r;
	}
	if ((h = headers_with(hdrs, c->token)) == NULL)
		return attempt_fail(c, LS_ERR_NOMEM, "out of memory");
	q->headers = h;
	q->ca_file = g->ca_file;
	r = http_do(q, resp, &c->msg);
	q->headers = NULL;
	curl_slist_free_all(h);
	return r;
}

/*
 * The GCS hooks of the shared exchange: after a 401 to a request that
 * carried a token, one fresh token and one more try at once; a download
 * that got further renews the deadline (gcs_get resumes with Range).
 */
static bool
gcs_reauth(void *arg, const struct http_resp *resp)
{
	struct gcall *c = arg;

	if (resp->status != 401 || c->token == NULL || c->reauthed)
		return false;
	c->reauthed = true;
	gcs_auth_invalidate(c->g->auth, c->token);
	return true;
}

static const struct http_policy gcs_policy = { NULL, gcs_reauth, true };

/*
 * After an attempt that gave r and resp: true to try again (as
 * http_retry_again says).  When the deadline passes, *r is
 * LS_ERR_TRANSIENT and c->msg says how often it was tried.
 */
static bool
gcs_again(struct gcall *c, int *r, const struct http_resp *resp)
{
	char *d;

	if (c->final)
		return false;
	if (http_retry_again(&gcs_policy, c, &c->rt, *r, resp))
		return true;
	if ((*r == 0 && !http_policy_retryable(&gcs_policy, resp->status)) ||
	    (*r != 0 && *r != LS_ERR_TRANSIENT))
		return false;
	if (*r == 0) {
		d = gcs_error_detail(resp->body, resp->body_len);
		free(c->msg);
		c->msg = mkstr("HTTP %ld %s", resp->status, d ? d : "");
		free(d);
	}
	*r = LS_ERR_TRANSIENT;
	ls_errprefix(&c->msg, LS_ERR_TRANSIENT, "gave up after %d attempts in "
	    "%" PRId64 " s", c->rt.failures, c->g->deadline_s);
	return false;
}

/* q (retried as gcs_again says); 0 with resp holding the final answer. */
static int
gcs_exchange(struct gcall *c, struct http_req *q, const struct curl_slist *hdrs,
    struct http_resp *resp)
{
	int r;

	for (;;) {
		r = gcs_send(c, q, hdrs, resp);
		if (!gcs_again(c, &r, resp))
			return r;
		http_resp_free(resp);
	}
}

/* The error for an exchange that failed (why is in c->msg). */
static int
exchange_failed(struct gcall *c, int r, char **errmsg)
{
	return cerr(c, errmsg, r, "%s", c->msg ? c->msg : ls_strerror(r));
}

/* The error for an answer that is not a success. */
static int
status_error(struct gcall *c, const struct http_resp *resp, char **errmsg)
{
	char *d = gcs_error_detail(resp->body, resp->body_len);
	const char *who = c->g->auth ? gcs_auth_email(c->g->auth) : NULL;
	long st = resp->status;
	int code;

	code = http_status_code(&gcs_policy, st);
	if (code == LS_ERR_AUTH)
		cerr(c, errmsg, code, "HTTP %ld %s; %s%s needs roles/storage."
		    "objectAdmin (or objectUser) on bucket %s", st, d ? d : "",
		    who ? "service account " : "the caller (sending no "
		    "credentials)",
		    who ? who : "", c->g->bucket);
	else
		cerr(c, errmsg, code, "HTTP %ld %s", st, d ? d : "");
	free(d);
	return code;
}

/* Parse a decimal uint64 from a JSON string or integer; 0 or -1. */
static int
json_u64(json_t *v, uint64_t *out)
{
	const char *s = json_string_value(v);
	char *end;

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* The object metadata of key: size and (if given) md5Hash, malloc'd. */
static int
gcs_stat(struct gcall *c, const char *key, uint64_t *size, char **md5,
    char **errmsg)
{
	struct http_req q = { .method = "GET", .body_fd = -1, .resp_fd = -1,
	    .resp_max = ERRBODY_MAX };
	struct http_resp resp;
	json_t *doc = NULL;
	char *url = object_url(c->g, key, "fields=size,md5Hash");
	const char *v;
	int r;

	if ((q.url = url) == NULL)
		return cerr(c, errmsg, LS_ERR_NOMEM, "out of memory");
	if ((r = gcs_exchange(c, &q, NULL, &resp)) != 0)
		r = exchange_failed(c, r, errmsg);
	else if (resp.status != 200)
		r = status_error(c, &resp, errmsg);
	else if ((doc = json_loadb(resp.body ? resp.body : "", resp.body_len,
	    0, NULL)) == NULL ||
	    json_u64(json_object_get(doc, "size"), size) != 0)
		r = cerr(c, errmsg, LS_ERR_CORRUPT, "metadata without a size");
	else if (md5 != NULL &&
	    (v = json_string_value(json_object_get(doc, "md5Hash"))) != NULL)
		*md5 = strdup(v);
	json_decref(doc);
	http_resp_free(&resp);
	free(url);
	return r;
}

/* Base64 MD5 of the first size bytes of fd into out (at least 25 bytes). */
static int
fd_md5(int fd, uint64_t size, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE], *buf = malloc(MD5_BUF);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int mdlen = 0;
	uint64_t off;
	ssize_t n;
	int r = -1;

	if (buf == NULL || ctx == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_md5(), NULL))
		goto out;
	for (off = 0; off < size; off += (uint64_t)n) {
		n = ls_pread_all(fd, buf, size - off < MD5_BUF ? size - off :
		    MD5_BUF, (off_t)off);
		if (n <= 0 || !EVP_DigestUpdate(ctx, buf, (size_t)n))
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1) {
		EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
		r = 0;
	}
 out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return r;
}

/*
 * After a 412 that followed an attempt with no answer: 0 if the object
 * now there has our size and MD5 (that attempt created it), else
 * LS_ERR_EXISTS with the message already set.
 */
static int
was_ours(struct gcall *c, int fd, uint64_t size, char **errmsg)
{
	char *md5 = NULL, mine[32];
	uint64_t have = 0;
	int r = LS_ERR_EXISTS;

	if (gcs_stat(c, c->key, &have, &md5, NULL) == 0 && have == size &&
	    md5 != NULL && fd_md5(fd, size, mine) == 0 &&
	    strcmp(md5, mine) == 0)
		r = 0;
	free(md5);
	return r != 0 ? cerr(c, errmsg, r, "already exists") : 0;
}

/* One media upload of size bytes of fd. */
static int
media_put(struct gcall *c, int fd, uint64_t size, bool excl, char **errmsg)
{
	struct curl_slist *h = curl_slist_append(NULL,
	    "Content-Type: application/octet-stream");
	struct http_req q = { .method = "POST", .body_fd = fd,
	    .body_size = size, .resp_fd = -1, .resp_max = ERRBODY_MAX,
	    .timeout_s = xfer_timeout(size) };
	struct http_resp resp;
	char *url = upload_url(c->g, c->key, "media", excl);
	int r;

	memset(&resp, 0, sizeof(resp));
	if ((q.url = url) == NULL || h == NULL)
		r = cerr(c, errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((r = gcs_exchange(c, &q, h, &resp)) != 0)
		r = exchange_failed(c, r, errmsg);
	else if (resp.status != 200 && resp.status != 201)
		r = status_error(c, &resp, errmsg);
	http_resp_free(&resp);
	curl_slist_free_all(h);
	free(url);
	return r;
}

/* A resumable upload session: where it is and how far it got. */
struct session {
	char		*url;		/* NULL: none open */
	uint64_t	 size;		/* the object's */
	uint64_t	 off;		/* bytes the server has */
	bool		 query;		/* ask for off before sending more */
	bool		 done;
};

/* Open a session (POST uploadType=resumable); its URL is in Location. */
static int
session_start(struct gcall *c, struct session *s, bool excl, char **errmsg)
{
	struct curl_slist *h = NULL, *n;
	struct http_req q = { .method = "POST", .body = "", .body_fd = -1,
	    .resp_fd = -1, .resp_max = ERRBODY_MAX };
	struct http_resp resp;
	char *url = upload_url(c->g, c->key, "resumable", excl), *len;
	const char *loc;
	int r;

	memset(&resp, 0, sizeof(resp));
	len = mkstr("X-Upload-Content-Length: %" PRIu64, s->size);
	if (len != NULL && (h = curl_slist_append(NULL, len)) != NULL &&
	    (n = curl_slist_append(h, "X-Upload-Content-Type: "
	    "application/octet-stream")) != NULL)
		h = n;
	if ((q.url = url) == NULL || h == NULL || h->next == NULL)
		r = cerr(c, errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((r = gcs_exchange(c, &q, h, &resp)) != 0)
		r = exchange_failed(c, r, errmsg);
	else if (resp.status != 200 && resp.status != 201)
		r = status_error(c, &resp, errmsg);
	else if ((loc = http_header(&resp, "location")) == NULL)
		r = cerr(c, errmsg, LS_ERR_IO, "resumable upload started "
		    "without a Location for the session");
	else if ((s->url = strdup(loc)) == NULL)
		r = cerr(c, errmsg, LS_ERR_NOMEM, "out of memory");
	s->off = 0;
	s->query = false;
	http_resp_free(&resp);
	curl_slist_free_all(h);
	free(url);
	free(len);
	return r;
}

/* Bytes the server holds from a 308's "Range: bytes=0-N" (none: 0). */
static int
committed(const struct http_resp *resp, uint64_t *out)
{
	const char *v = http_header(resp, "range");
	unsigned long long last;
	int used = 0;

	if (v == NULL) {
		*out = 0;
		return 0;
	}
	if (sscanf(v, "bytes=0-%llu%n", &last, &used) != 1 || v[used] != '\0')
		return -1;
	*out = (uint64_t)last + 1;
	return 0;
}

/* Check the object a session ended with, from the final answer. */
static int
session_finished(struct gcall *c, struct session *s,
    const struct http_resp *resp, bool sent_all, char **errmsg)
{
	json_t *doc = json_loadb(resp->body ? resp->body : "", resp->body_len,
	    0, NULL);
	uint64_t size;
	int r = 0;

	if (!sent_all)
		r = cerr(c, errmsg, LS_ERR_IO, "the server ended the upload "
		    "before all %" PRIu64 " bytes were sent (does it support "
		    "chunked resumable uploads?)", s->size);
	else if (doc != NULL && json_u64(json_object_get(doc, "size"),
	    &size) == 0 && size != s->size)
		r = cerr(c, errmsg, LS_ERR_IO, "the server stored %" PRIu64
		    " bytes of %" PRIu64, size, s->size);
	json_decref(doc);
	s->done = r == 0;
	return r;
}

/*
 * Act on the answer to a chunk (or to a status query, sent_all meaning
 * the query): 308 moves off, 200/201 ends, 404/410 drop the session so
 * that it starts again.  Returns 1 to continue, 0 when done, or an error.
 */
static int
session_answer(struct gcall *c, struct session *s, const struct http_resp *resp,
    bool sent_all, char **errmsg)
{
	long st = resp->status;

	if (st == 308) {
		if (committed(resp, &s->off) != 0 || s->off > s->size)
			return cerr(c, errmsg, LS_ERR_IO, "bad Range \"%s\" in "
			    "the answer to a resumable upload",
			    http_header(resp, "range"));
		s->query = false;
		return 1;
	}
	if (st == 200 || st == 201)
		return session_finished(c, s, resp, sent_all, errmsg);
	if (st == 404 || st == 410) {
		free(s->url);
		s->url = NULL;
		return 1;
	}
	return status_error(c, resp, errmsg);
}

/* Send the next chunk, or ask how far the server got if s->query. */
static int
session_send(struct gcall *c, struct session *s, int fd,
    struct http_resp *resp, bool *sent_all)
{
	struct http_req q = { .method = "PUT", .url = s->url, .body = "",
	    .body_fd = -1, .resp_fd = -1, .resp_max = ERRBODY_MAX };
	struct curl_slist *h;
	uint64_t len = s->size - s->off;
	char range[96];
	int r;

	if (len > c->g->part_size)
		len = c->g->part_size;
	if (s->query || len == 0)
		snprintf(range, sizeof(range), "Content-Range: bytes "
		    "*/%" PRIu64, s->size);
	else {
		snprintf(range, sizeof(range), "Content-Range: bytes %" PRIu64
		    "-%" PRIu64 "/%" PRIu64, s->off, s->off + len - 1, s->size);
		q.body_fd = fd;
		q.body_off = s->off;
		q.body_size = len;
		q.timeout_s = xfer_timeout(len);
	}
	*sent_all = s->query || s->off + len == s->size;
	memset(resp, 0, sizeof(*resp));
	if ((h = curl_slist_append(NULL, range)) == NULL)
		return attempt_fail(c, LS_ERR_NOMEM, "out of memory");
	r = gcs_send(c, &q, h, resp);
	curl_slist_free_all(h);
	return r;
}

/* One step of a resumable upload: 1 to go on, 0 when done, or an error. */
static int
session_step(struct gcall *c, struct session *s, int fd, bool excl,
    char **errmsg)
{
	struct http_resp resp;
	uint64_t was = s->off;
	bool sent_all = false, query = s->query, stuck;
	int r;

	if (s->url == NULL)
		return (r = session_start(c, s, excl, errmsg)) == 0 ? 1 : r;
	r = session_send(c, s, fd, &resp, &sent_all);
	if (gcs_again(c, &r, &resp)) {
		s->query = true;
		r = 1;
	} else if (r != 0)
		r = exchange_failed(c, r, errmsg);
	else if ((r = session_answer(c, s, &resp, sent_all, errmsg)) == 1) {
		if (s->off > was) {	/* progress: a new lease of retries */
			c->rt.failures = 0;
			c->rt.deadline_us = ls_now_us() + c->rt.lease_us;
		}
		/* a lost session, or a chunk that did not move: pause */
		stuck = s->url == NULL ||
		    (!query && s->off == was && s->off < s->size);
		if (stuck && http_backoff(c->rt.failures++,
		    c->rt.deadline_us) != 0)
			r = cerr(c, errmsg, LS_ERR_TRANSIENT, "the resumable "
			    "upload made no progress at byte %" PRIu64
			    " before the deadline", s->off);
	}
	http_resp_free(&resp);
	return r;
}

/* A resumable upload of size bytes of fd, in chunks of part_size. */
static int
resumable_put(struct gcall *c, int fd, uint64_t size, bool excl,
    char **errmsg)
{
	struct session s = { .size = size };
	int r;

	while ((r = session_step(c, &s, fd, excl, errmsg)) == 1)
		crashpoint("store-between-parts");
	free(s.url);
	return r;
}

static int
gcs_put_common(struct store *st, const char *key, int fd, bool excl,
    char **errmsg)
{
	struct store_gcs *g = (struct store_gcs *)st;
	struct gcall c;
	struct stat sb;
	const char *why;
	char *msg = NULL;
	int r;

	gcall_init(&c, g, excl ? "put_if_absent" : "put", key);
	if ((why = key_problem(g, key)) != NULL)
		return cerr(&c, errmsg, LS_ERR_INVALID, "invalid key: %s", why);
	if (fstat(fd, &sb) == -1)
		return cerr(&c, errmsg, LS_ERR_IO, "fstat: %s",
		    strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return cerr(&c, errmsg, LS_ERR_INVALID, "the content must come "
		    "from a regular file");
	if ((uint64_t)sb.st_size > g->threshold)
		r = resumable_put(&c, fd, (uint64_t)sb.st_size, excl, &msg);
	else
		r = media_put(&c, fd, (uint64_t)sb.st_size, excl, &msg);
	if (r == LS_ERR_EXISTS && c.rt.failures > 0)
		r = was_ours(&c, fd, (uint64_t)sb.st_size, &msg);
	gcall_done(&c);
	if (r != 0 && errmsg != NULL) {
		free(*errmsg);
		*errmsg = msg;
	} else
		free(msg);
	return r;
}

static int
gcs_put(struct store *st, const char *key, int fd, char **errmsg)
{
	return gcs_put_common(st, key, fd, false, errmsg);
}

static int
gcs_put_if_absent(struct store *st, const char *key, int fd, char **errmsg)
{
	return gcs_put_common(st, key, fd, true, errmsg);
}

/* A download's progress: bytes written so far, what the first answer said. */
struct download {
	uint64_t	 done;
	uint64_t	 total;		/* UINT64_MAX: not known */
	char		*gen;		/* x-goog-generation, or NULL */
};

/* One GET of the object from byte d->done on, appended to fd. */
static int
get_send(struct gcall *c, const struct download *d, int fd,
    struct http_resp *resp)
{
	struct http_req q = { .method = "GET", .body_fd = -1, .resp_fd = fd,
	    .resp_max = ERRBODY_MAX, .timeout_s = 3600 };
	char *query, *url = NULL, range[64];
	struct curl_slist *h = NULL;
	int r;

	memset(resp, 0, sizeof(*resp));
	query = mkstr("alt=media%s%s", d->gen ? "&ifGenerationMatch=" : "",
	    d->gen ? d->gen : "");
	if (query != NULL)
		url = object_url(c->g, c->key, query);
	snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", d->done);
	if (d->done > 0)
		h = curl_slist_append(NULL, range);
	if ((q.url = url) == NULL || (d->done > 0 && h == NULL))
		r = attempt_fail(c, LS_ERR_NOMEM, "out of memory");
	else
		r = gcs_send(c, &q, h, resp);
	curl_slist_free_all(h);
	free(query);
	free(url);
	return r;
}

/* Count what an answer (whole or broken off) wrote; note its generation. */
static int
get_note(struct gcall *c, struct download *d, const struct http_resp *resp)
{
	const char *v;

	if (resp->status == 200 && d->done > 0)
		return attempt_fail(c, LS_ERR_IO, "the server ignored Range "
		    "when a download resumed at byte %" PRIu64, d->done);
	if (resp->status == 200 && d->gen == NULL) {
		if ((v = http_header(resp, "x-goog-generation")) != NULL &&
		    strspn(v, "0123456789") == strlen(v))
			d->gen = strdup(v);
		if ((v = http_header(resp, "content-length")) != NULL)
			d->total = strtoull(v, NULL, 10);
	}
	d->done += resp->written;	/* gcs_policy renews the deadline */
	return 0;
}

static int
gcs_get(struct store *st, const char *key, int fd, char **errmsg)
{
	struct download d = { 0, UINT64_MAX, NULL };
	struct http_resp resp;
	struct gcall c;
	const char *why;
	int r;

	gcall_init(&c, (struct store_gcs *)st, "get", key);
	if ((why = key_problem(c.g, key)) != NULL)
		return cerr(&c, errmsg, LS_ERR_INVALID, "invalid key: %s", why);
	for (;;) {
		if (d.done > 0 && d.done == d.total) {
			r = 0;
			break;
		}
		r = get_send(&c, &d, fd, &resp);
		if (get_note(&c, &d, &resp) != 0)
			r = LS_ERR_IO;
		else if (r == 0 && (resp.status == 200 || resp.status == 206))
			break;
		if (!gcs_again(&c, &r, &resp)) {
			r = r != 0 ? exchange_failed(&c, r, errmsg) :
			    status_error(&c, &resp, errmsg);
			break;
		}
		http_resp_free(&resp);
	}
	http_resp_free(&resp);
	free(d.gen);
	gcall_done(&c);
	return r;
}

/* Copy the body of a range answer into buf; *got its length. */
static int
range_copy(struct gcall *c, const struct http_resp *resp, uint64_t off,
    size_t len, void *buf, size_t *got, char **errmsg)
{
	long st = resp->status;

	if (st == 416)
		return 0;	/* off is at or past the end */
	if (st == 200 && off > 0)
		return cerr(c, errmsg, LS_ERR_IO, "the server ignored Range "
		    "bytes=%" PRIu64 "-", off);
	if (st != 200 && st != 206)
		return status_error(c, resp, errmsg);
	*got = resp->body_len < len ? resp->body_len : len;
	if (*got > 0)
		memcpy(buf, resp->body, *got);
	return 0;
}

static int
gcs_get_range(struct store *st, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg)
{
	struct http_req q = { .method = "GET", .body_fd = -1, .resp_fd = -1,
	    .resp_max = len > ERRBODY_MAX ? len : ERRBODY_MAX,
	    .timeout_s = xfer_timeout(len) };
	struct curl_slist *h = NULL;
	struct http_resp resp;
	struct gcall c;
	char range[96], *url = NULL;
	const char *why;
	uint64_t size;
	int r;

	*got = 0;
	gcall_init(&c, (struct store_gcs *)st, "get_range", key);
	if ((why = key_problem(c.g, key)) != NULL)
		return cerr(&c, errmsg, LS_ERR_INVALID, "invalid key: %s", why);
	if (len == 0)
		return gcs_stat(&c, key, &size, NULL, errmsg);
	memset(&resp, 0, sizeof(resp));
	snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64,
	    off, off + len - 1);
	if ((q.url = url = object_url(c.g, key, "alt=media")) == NULL ||
	    (h = curl_slist_append(NULL, range)) == NULL)
		r = cerr(&c, errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((r = gcs_exchange(&c, &q, h, &resp)) != 0)
		r = exchange_failed(&c, r, errmsg);
	else
		r = range_copy(&c, &resp, off, len, buf, got, errmsg);
	http_resp_free(&resp);
	curl_slist_free_all(h);
	free(url);
	gcall_done(&c);
	return r;
}

static int
gcs_head(struct store *st, const char *key, uint64_t *size, char **errmsg)
{
	struct gcall c;
	const char *why;
	int r;

	gcall_init(&c, (struct store_gcs *)st, "head", key);
	if ((why = key_problem(c.g, key)) != NULL)
		return cerr(&c, errmsg, LS_ERR_INVALID, "invalid key: %s", why);
	r = gcs_stat(&c, key, size, NULL, errmsg);
	gcall_done(&c);
	return r;
}

static int
gcs_del(struct store *st, const char *key, char **errmsg)
{
	struct http_req q = { .method = "DELETE", .body_fd = -1, .resp_fd = -1,
	    .resp_max = ERRBODY_MAX };
	struct http_resp resp;
	struct gcall c;
	const char *why;
	int r;

	gcall_init(&c, (struct store_gcs *)st, "delete", key);
	if ((why = key_problem(c.g, key)) != NULL)
		return cerr(&c, errmsg, LS_ERR_INVALID, "invalid key: %s", why);
	memset(&resp, 0, sizeof(resp));
	if ((q.url = object_url(c.g, key, NULL)) == NULL)
		r = cerr(&c, errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((r = gcs_exchange(&c, &q, NULL, &resp)) != 0)
		r = exchange_failed(&c, r, errmsg);
	else if (resp.status != 200 && resp.status != 204 && resp.status != 404)
		r = status_error(&c, &resp, errmsg);
	http_resp_free(&resp);
	free((char *)q.url);
	gcall_done(&c);
	return r;
}

/* State of one list_after call. */
struct lister {
	struct gcall		*c;
	struct gcs_listing	 page;
};

/* The URL of the next page. */
static char *
list_url(const struct lister *l)
{
	const struct gcs_listing *pg = &l->page;
	char *p = http_uri_encode(pg->prefix, false);
	char *a = pg->after ? http_uri_encode(pg->after, false) : NULL;
	char *t = pg->token ? http_uri_encode(pg->token, false) : NULL;
	size_t want = pg->max - pg->out->n + 1;	/* one more: is there more? */
	char *url = NULL;

	if (p != NULL && (pg->after == NULL || a != NULL) &&
	    (pg->token == NULL || t != NULL))
		url = mkstr("%s/storage/v1/b/%s/o?%s%s%smaxResults=%zu%s%s"
		    "%s%s&fields=items(name,size),nextPageToken",
		    l->c->g->endpoint, l->c->g->bucket, *p ? "prefix=" : "", p,
		    *p ? "&" : "", want < LIST_PAGE_MAX ? want : LIST_PAGE_MAX,
		    a ? "&startOffset=" : "", a ? a : "",
		    t ? "&pageToken=" : "", t ? t : "");
	free(p);
	free(a);
	free(t);
	return url;
}

/* Append one listed object; 1 if the page is full and it was left out. */
static int
list_add(struct gcs_listing *l, json_t *item, const char **why)
{
	const char *name = json_string_value(json_object_get(item, "name"));
	size_t plen = strlen(l->strip);
	struct store_entry *e;
	uint64_t size;

	if (name == NULL || json_u64(json_object_get(item, "size"), &size) != 0) {
		*why = "a listed object without a name or size";
		return LS_ERR_CORRUPT;
	}
	if (strncmp(name, l->prefix, strlen(l->prefix)) != 0 ||
	    strncmp(name, l->strip, plen) != 0 ||
	    (l->after != NULL && strcmp(name, l->after) <= 0))
		return 0;	/* startOffset is inclusive (or ignored) */
	if (l->out->n == l->max)
		return 1;
	if (l->out->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		if ((e = realloc(l->out->entries, l->cap * sizeof(*e))) == NULL)
			goto nomem;
		l->out->entries = e;
	}
	e = &l->out->entries[l->out->n];
	if ((e->key = strdup(name + plen)) == NULL)
		goto nomem;
	e->size = size;
	l->out->n++;
	return 0;
 nomem:
	*why = "out of memory";
	return LS_ERR_NOMEM;
}

int
gcs_list_parse(struct gcs_listing *l, const char *body, size_t len,
    const char **why)
{
	json_t *doc = json_loadb(body ? body : "", len, 0, NULL), *items;
	const char *next;
	size_t i;
	int r = 0;

	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		*why = "the listing is not a JSON object";
		return LS_ERR_CORRUPT;
	}
	items = json_object_get(doc, "items");
	next = json_string_value(json_object_get(doc, "nextPageToken"));
	for (i = 0; r == 0 && i < json_array_size(items); i++)
		r = list_add(l, json_array_get(items, i), why);
	if (r == 1 || (r == 0 && next != NULL && *next != '\0' &&
	    l->out->n == l->max)) {
		l->out->truncated = 1;
		next = NULL;
		r = 0;
	} else if (r != 0)
		goto out;
	if (next != NULL && *next != '\0' && l->token != NULL &&
	    strcmp(next, l->token) == 0) {
		*why = "the listing did not advance (same pageToken twice)";
		r = LS_ERR_IO;
		goto out;
	}
	free(l->token);
	l->token = next != NULL && *next != '\0' ? strdup(next) : NULL;
	if (next != NULL && *next != '\0' && l->token == NULL) {
		*why = "out of memory";
		r = LS_ERR_NOMEM;
	}
 out:
	json_decref(doc);
	return r;
}

/* Fetch and take one page. */
static int
list_page(struct lister *l, char **errmsg)
{
	struct http_req q = { .method = "GET", .body_fd = -1, .resp_fd = -1,
	    .resp_max = LIST_RESP_MAX };
	struct http_resp resp;
	const char *why = NULL;
	int r;

	memset(&resp, 0, sizeof(resp));
	if ((q.url = list_url(l)) == NULL)
		r = cerr(l->c, errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((r = gcs_exchange(l->c, &q, NULL, &resp)) != 0)
		r = exchange_failed(l->c, r, errmsg);
	else if (resp.status != 200)
		r = status_error(l->c, &resp, errmsg);
	else if ((r = gcs_list_parse(&l->page, resp.body, resp.body_len,
	    &why)) != 0)
		r = cerr(l->c, errmsg, r, "%s%s", why,
		    r == LS_ERR_CORRUPT && resp.body_len >= LIST_RESP_MAX ?
		    " (larger than 32 MiB)" : "");
	http_resp_free(&resp);
	free((char *)q.url);
	return r;
}

static int
gcs_list_after(struct store *st, const char *prefix, const char *start_after,
    size_t max, struct store_list *out, char **errmsg)
{
	struct store_gcs *g = (struct store_gcs *)st;
	struct lister l = { .page = { .strip = g->prefix, .max = max,
	    .out = out } };
	struct gcall c;
	char *full_prefix, *full_after = NULL;
	int r = 0;

	gcall_init(&c, g, "list", *prefix != '\0' ? prefix : "(all)");
	l.c = &c;
	l.page.prefix = full_prefix = mkstr("%s%s", g->prefix, prefix);
	if (*start_after != '\0')
		l.page.after = full_after = mkstr("%s%s", g->prefix,
		    start_after);
	if (full_prefix == NULL || (*start_after != '\0' && full_after == NULL))
		r = cerr(&c, errmsg, LS_ERR_NOMEM, "out of memory");
	while (r == 0 && max > 0) {
		if ((r = list_page(&l, errmsg)) != 0 || l.page.token == NULL)
			break;
	}
	free(full_prefix);
	free(full_after);
	free(l.page.token);
	gcall_done(&c);
	return r;
}

static void
gcs_free(struct store *st)
{
	struct store_gcs *g = (struct store_gcs *)st;

	if (g == NULL)
		return;
	gcs_auth_free(g->auth);
	free(g->base.url);
	free(g->endpoint);
	free(g->bucket);
	free(g->prefix);
	free(g->ca_file);
	free(g);
}

/* The endpoint: the option, else STORAGE_EMULATOR_HOST, else Google's. */
static int
endpoint_pick(struct store_gcs *g, const struct store_opts *o,
    const char *emu, char **errmsg)
{
	const char *e = o != NULL && o->gcs_endpoint != NULL &&
	    *o->gcs_endpoint != '\0' ? o->gcs_endpoint : NULL;
	size_t n;

	if (e == NULL && emu != NULL)
		g->endpoint = strstr(emu, "://") ? strdup(emu) :
		    mkstr("http://%s", emu);
	else
		g->endpoint = strdup(e != NULL ? e : DEFAULT_ENDPOINT);
	if (g->endpoint == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (n = strlen(g->endpoint); n > 0 && g->endpoint[n - 1] == '/';)
		g->endpoint[--n] = '\0';
	if (strncasecmp(g->endpoint, "https://", 8) != 0 &&
	    strncasecmp(g->endpoint, "http://", 7) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: GCS endpoint "
		    "\"%s\" must begin with https:// or http://", g->base.url,
		    g->endpoint);
	return 0;
}

/* Credentials: a service-account key, or none for an emulator. */
static int
auth_pick(struct store_gcs *g, const char *emu, char **errmsg)
{
	const char *key = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	const char *anon = getenv("LOGSHIP_GCS_ANONYMOUS");
	int r;

	if (emu != NULL || (key == NULL || *key == '\0')) {
		if (emu == NULL && (anon == NULL || strcmp(anon, "1") != 0))
			return ls_errf(errmsg, LS_ERR_INVALID, "store %s: no "
			    "GCS credentials: set "
			    "GOOGLE_APPLICATION_CREDENTIALS to a "
			    "service-account JSON key file (or, for an "
			    "emulator, STORAGE_EMULATOR_HOST or "
			    "LOGSHIP_GCS_ANONYMOUS=1)", g->base.url);
		if (!__atomic_exchange_n(&told_anonymous, 1, __ATOMIC_RELAXED))
			log_info("store", "%s: sending no credentials (%s) "
			    "endpoint=%s", g->base.url, emu ?
			    "STORAGE_EMULATOR_HOST is set" :
			    "LOGSHIP_GCS_ANONYMOUS=1", g->endpoint);
		return 0;
	}
	if ((r = gcs_auth_new(key, &g->auth, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "store %s", g->base.url);
	if (gcs_auth_url_ok(g->endpoint) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: refusing to "
		    "send credentials over plain http to %s; use https (or an "
		    "emulator on a loopback address)", g->base.url,
		    g->endpoint);
	return 0;
}

/* Bucket names: 3-222 bytes of a-z, 0-9, '-', '_', '.'. */
static int
bucket_check(const char *url, const char *bucket, char **errmsg)
{
	size_t n = strlen(bucket);

	if (n < 3 || n > 222 || strspn(bucket, "abcdefghijklmnopqrstuvwxyz"
	    "0123456789-_.") != n)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: \"%s\" is "
		    "not a GCS bucket name (3-222 characters of a-z, 0-9, '-', "
		    "'_' and '.')", url, bucket);
	return 0;
}

/* Sizes from the options, resumable chunks rounded down to 256 KiB. */
static void
sizes_pick(struct store_gcs *g, const struct store_opts *o)
{
	g->threshold = o && o->multipart_threshold ? o->multipart_threshold :
	    DEFAULT_THRESHOLD;
	g->part_size = o && o->part_size ? o->part_size : DEFAULT_PART;
	g->part_size -= g->part_size % CHUNK_UNIT;
	if (g->part_size == 0)
		g->part_size = CHUNK_UNIT;
	g->deadline_s = o && o->deadline_s > 0 ? o->deadline_s :
	    DEFAULT_DEADLINE;
}

int
store_gcs_open(const char *url, const char *bucket, const char *prefix,
    const struct store_opts *opts, struct store **out, char **errmsg)
{
	const char *emu = getenv("STORAGE_EMULATOR_HOST");
	struct store_gcs *g;
	int r;

	*out = NULL;
	if (emu != NULL && *emu == '\0')
		emu = NULL;
	if ((r = bucket_check(url, bucket, errmsg)) != 0)
		return r;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	g->base.ops = &store_gcs_ops;
	sizes_pick(g, opts);
	if ((g->base.url = strdup(url)) == NULL ||
	    (g->bucket = strdup(bucket)) == NULL ||
	    (g->prefix = *prefix ? mkstr("%s/", prefix) : strdup("")) == NULL ||
	    (opts && opts->gcs_ca_file &&
	    (g->ca_file = strdup(opts->gcs_ca_file)) == NULL))
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((r = endpoint_pick(g, opts, emu, errmsg)) == 0)
		r = auth_pick(g, emu, errmsg);
	if (r != 0) {
		gcs_free(&g->base);
		return r;
	}
	*out = &g->base;
	return 0;
}

static const struct store_ops store_gcs_ops = STORE_OPS(gcs, "gcs");
