/*
 * store_s3.c: a store in an S3 bucket (AWS S3 and S3-compatible services).
 *
 * s3://bucket/prefix: key K is the object "prefix/K".  Every request is
 * signed with SigV4 (sigv4.c) over the real SHA-256 of its body and sent
 * with http_do; 5xx (but 501), 408, 409, 429 and network failures are
 * tried again with back-off until the call's deadline (opts->deadline_s,
 * 300 s).  Other errors are one line: "store s3://b/p: put K: HTTP 403
 * SignatureDoesNotMatch: <the service's message>".  Secrets never appear
 * in messages.  An endpoint that is an IP address or localhost gets
 * path-style URLs unless opts->s3_uri_style says otherwise.
 *
 * A write never leaves a partial object under its name: a PUT is atomic,
 * and an object above the multipart threshold goes up in parts that appear
 * only at CompleteMultipartUpload; any failure aborts the upload.  Parts
 * stream from the fd; a worker thread hashes part n+1 while part n is sent,
 * so memory stays bounded.  A 200 answer to CompleteMultipartUpload that
 * holds an <Error> is an error.
 *
 * put_if_absent sends If-None-Match: *.  Where the service answers 501
 * (Swift's s3api does), the store says so once in the log and falls back
 * to HEAD then PUT, which a second writer can race.  A conditional PUT
 * tried again after an unclear failure that then meets 412 checks whether
 * the object is its own (ETag = MD5 of the content) before saying EXISTS.
 *
 * Tests can shrink the limits through the environment when opts leaves
 * them 0: LOGSHIP_S3_MULTIPART_THRESHOLD, LOGSHIP_S3_PART_SIZE (bytes),
 * LOGSHIP_S3_DEADLINE_S, LOGSHIP_S3_LIST_PAGE (keys per ListObjectsV2
 * page, at most 1000); LOGSHIP_S3_FAIL_PART=N fails part N on purpose.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/crashpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "common/secfile.h"
#include "common/util.h"
#include "store/http.h"
#include "store/s3/s3.h"
#include "store/s3/sigv4.h"
#include "store/store_int.h"
#include "store/xml.h"

#define MIB			(1024ULL * 1024)
#define DEFAULT_THRESHOLD	(64 * MIB)
#define DEFAULT_PART		(16 * MIB)
#define MIN_PART		(5 * MIB)	/* S3's minimum, but the last */
#define MAX_PARTS		10000
#define DEFAULT_DEADLINE_S	300
#define ABORT_DEADLINE_S	60
#define LIST_PAGE		1000
#define ERR_BODY_MAX		(64 * 1024)
#define LIST_BODY_MAX		(8 * MIB)
#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAXQ			5
#define MAXH			4
#define S3_NOCOND		1	/* internal: no If-None-Match here */

struct store_s3 {
	struct store	 base;
	char		*prefix;	/* "" or "a/b" */
	char		*base_url;	/* "https://[bucket.]host[:port]" */
	char		*host;		/* the Host header */
	char		*bucket_path;	/* "/bucket" (path style) or "" */
	char		*region;
	char		*ca_file;
	char		*access_key;
	char		*secret_key;
	char		*token;		/* NULL: long-term keys */
	uint64_t	 threshold;
	uint64_t	 part_size;
	int64_t		 deadline_s;
	unsigned	 fail_part;	/* test hook: fail this part, or 0 */
	size_t		 list_page;	/* keys asked for per ListObjectsV2 */
	int		 nocond;	/* atomic: the service answered 501 */
};

/* One request, before signing; filled by req_init and req_* helpers. */
struct s3_req {
	const char		*op;		/* "put", "get"...: messages */
	const char		*key;		/* the store key: messages */
	const char		*method;
	const char		*objkey;	/* NULL: the bucket itself */
	struct sigv4_param	 query[MAXQ];
	size_t			 nquery;
	struct sigv4_param	 hdrs[MAXH];	/* besides host, date, hash */
	size_t			 nhdrs;
	const void		*body;		/* in memory, or ... */
	size_t			 body_len;
	int			 body_fd;	/* ... from an fd (-1: none) */
	uint64_t		 body_off;
	uint64_t		 body_size;
	const char		*body_hash;	/* hex; NULL: hash body here */
	int			 resp_fd;
	size_t			 resp_max;
	int64_t			 deadline_us;	/* 0: now + the store's */
	int			 tries;		/* set by s3_call */
};

static const struct store_ops store_s3_ops;

static void
req_init(struct s3_req *q, const char *op, const char *key,
    const char *method, const char *objkey)
{
	memset(q, 0, sizeof(*q));
	q->op = op;
	q->key = key;
	q->method = method;
	q->objkey = objkey;
	q->body_fd = -1;
	q->resp_fd = -1;
	q->resp_max = ERR_BODY_MAX;
}

static void
req_query(struct s3_req *q, const char *name, const char *value)
{
	if (q->nquery < MAXQ)
		q->query[q->nquery++] = (struct sigv4_param){ name, value };
}

static void
req_header(struct s3_req *q, const char *name, const char *value)
{
	if (q->nhdrs < MAXH)
		q->hdrs[q->nhdrs++] = (struct sigv4_param){ name, value };
}

/* "prefix/key", or key when the store has no prefix; NULL if no memory. */
static char *
objkey_of(const struct store_s3 *s, const char *key)
{
	char *k;

	if (asprintf(&k, "%s%s%s", s->prefix, *s->prefix ? "/" : "", key) == -1)
		return NULL;
	return k;
}

/* The request's unencoded path: "/bucket/objkey", "/objkey", "/bucket", "/". */
static char *
req_path(const struct store_s3 *s, const struct s3_req *q)
{
	char *p;

	if (asprintf(&p, "%s%s%s", s->bucket_path, q->objkey ? "/" : "",
	    q->objkey ? q->objkey : "") == -1)
		return NULL;
	if (*p == '\0') {
		free(p);
		p = strdup("/");
	}
	return p;
}

/* ---- errors ---- */

/*
 * The S3 hooks of the shared exchange: 409 is tried again too (S3 answers
 * 409 OperationAborted / ConditionalRequestConflict while a conflicting
 * operation on the key is in progress; it clears).  A download that wrote
 * bytes before failing is not tried again there: s3_get resumes it.
 */
static const long s3_also_retry[] = { 409, 0 };
static const struct http_policy s3_policy = { s3_also_retry, NULL, false };

/* The LS_ERR_* code for a failed answer: a missing bucket is a setting. */
static int
status_code(long status, const char *code)
{
	if (status == 404 && code != NULL && strcmp(code, "NoSuchBucket") == 0)
		return LS_ERR_INVALID;
	return http_status_code(&s3_policy, status);
}

/* The LS_ERR_* code for an answer, from its status and <Error> code. */
static int
resp_code(const struct http_resp *resp)
{
	char *code, *msg;
	int r;

	xml_error(resp->body, resp->body_len, &code, &msg);
	r = status_code(resp->status, code);
	free(code);
	free(msg);
	return r;
}

/* What a request was about, for messages. */
static const char *
req_what(const struct s3_req *q)
{
	return q->key != NULL && *q->key != '\0' ? q->key : "(all)";
}

/* "store <url>: <op> <key>: <detail>" for a failure that is not HTTP. */
static int __attribute__((format(printf, 5, 6)))
s3_err(struct store_s3 *s, const struct s3_req *q, char **errmsg, int code,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_verrf(&s->base, errmsg, code, q->op, req_what(q), fmt, ap);
	va_end(ap);
	return code;
}

/*
 * The error for an unexpected answer: "store <url>: <op> <key>: HTTP 403
 * SignatureDoesNotMatch: <message>" (the code and message when the body
 * is an S3 <Error>).
 */
static int
s3_fail(struct store_s3 *s, const struct s3_req *q,
    const struct http_resp *resp, char **errmsg)
{
	char *code, *msg, tries[64] = "", text[2 * HTTP_MSG_MAX + 64];
	int r;

	xml_error(resp->body, resp->body_len, &code, &msg);
	r = status_code(resp->status, code);
	if (r == LS_ERR_TRANSIENT && q->tries > 1)
		snprintf(tries, sizeof(tries), " (gave up after %d tries)",
		    q->tries);
	s3_err(s, q, errmsg, r, "%s%s", http_status_text(text, sizeof(text),
	    resp->status, code, msg), tries);
	free(code);
	free(msg);
	return r;
}

/* ---- one signed exchange, and retries ---- */

/* Append "name: value" to *list; 0 or -1. */
static int
slist_add(struct curl_slist **list, const char *name, const char *value)
{
	struct curl_slist *l;
	char *line;

	if (asprintf(&line, "%s: %s", name, value) == -1)
		return -1;
	l = curl_slist_append(*list, line);
	OPENSSL_cleanse(line, strlen(line));
	free(line);
	if (l == NULL)
		return -1;
	*list = l;
	return 0;
}

/* The headers to send: the signed ones, x-amz-date, token, Authorization. */
static int
send_headers(const struct store_s3 *s, const struct sigv4_param *h, size_t n,
    const char *date, const char *auth, struct curl_slist **list)
{
	size_t i;
	int r = 0;

	for (i = 0; i < n; i++)
		r |= slist_add(list, h[i].name, h[i].value);
	r |= slist_add(list, "x-amz-date", date);
	if (s->token != NULL)
		r |= slist_add(list, "x-amz-security-token", s->token);
	r |= slist_add(list, "Authorization", auth);
	return r == 0 ? 0 : LS_ERR_NOMEM;
}

/* "https://host/path?query" for q; NULL if out of memory. */
static char *
req_url(const struct store_s3 *s, const struct s3_req *q)
{
	char *path = req_path(s, q), *epath = NULL, *query = NULL, *url = NULL;

	if (path != NULL && (epath = sigv4_encode_path(path)) != NULL &&
	    (query = sigv4_canonical_query(q->query, q->nquery)) != NULL &&
	    asprintf(&url, "%s%s%s%s", s->base_url, epath, *query ? "?" : "",
	    query) == -1)
		url = NULL;
	free(path);
	free(epath);
	free(query);
	return url;
}

/* Sign q with the time now; fill the header list and the URL. */
static int
sign_req(struct store_s3 *s, const struct s3_req *q,
    struct curl_slist **list, char **urlp)
{
	struct sigv4_creds c = { s->access_key, s->secret_key, s->token };
	struct sigv4_param h[MAXH + 2];
	struct sigv4_request sq;
	struct sigv4_signed sig;
	char date[17], hash[65], *path;
	int r;

	if (q->body_hash != NULL)
		snprintf(hash, sizeof(hash), "%s", q->body_hash);
	else
		sigv4_sha256_hex(q->body ? q->body : "", q->body_len, hash);
	sigv4_amz_date(ls_now_us(), date);
	h[0] = (struct sigv4_param){ "Host", s->host };
	h[1] = (struct sigv4_param){ "x-amz-content-sha256", hash };
	memcpy(h + 2, q->hdrs, q->nhdrs * sizeof(h[0]));
	if ((path = req_path(s, q)) == NULL)
		return LS_ERR_NOMEM;
	sq = (struct sigv4_request){ q->method, path, q->query, q->nquery, h,
	    q->nhdrs + 2, hash, date, s->region, "s3" };
	if ((r = sigv4_sign(&c, &sq, &sig)) == 0)
		r = send_headers(s, h, q->nhdrs + 2, date, sig.authorization,
		    list);
	if (r == 0 && (*urlp = req_url(s, q)) == NULL)
		r = LS_ERR_NOMEM;
	sigv4_signed_free(&sig);
	free(path);
	return r;
}

/* One attempt: sign and exchange.  As http_do; *why is curl's reason. */
static int
s3_attempt(struct store_s3 *s, const struct s3_req *q,
    struct http_resp *resp, char **why)
{
	struct curl_slist *list = NULL;
	struct http_req hq;
	char *url = NULL;
	int r;

	memset(resp, 0, sizeof(*resp));
	if ((r = sign_req(s, q, &list, &url)) != 0) {
		r = ls_errf(why, r, "out of memory");
		goto out;
	}
	hq = (struct http_req){ q->method, url, list, q->body, q->body_len,
	    q->body_fd, q->body_off, q->body_size, q->resp_fd, q->resp_max,
	    s->ca_file, 0, 0 };
	r = http_do(&hq, resp, why);
 out:
	curl_slist_free_all(list);
	free(url);
	return r;
}

/* One try of the request a struct s3_try names (http_exchange's attempt). */
struct s3_try {
	struct store_s3		*s;
	const struct s3_req	*q;
};

static int
s3_try(void *arg, struct http_resp *resp, char **why)
{
	struct s3_try *t = arg;

	return s3_attempt(t->s, t->q, resp, why);
}

/*
 * Exchange q through http_exchange under s3_policy until the deadline.  0
 * with the last answer in resp (which may still be a retryable status:
 * report it with s3_fail), or the error of the last network failure.
 */
static int
s3_call(struct store_s3 *s, struct s3_req *q, struct http_resp *resp,
    char **errmsg)
{
	struct s3_try t = { s, q };
	struct http_retry rt;
	char *why = NULL;
	int r;

	http_retry_start(&rt, s->deadline_s * 1000000, q->deadline_us);
	r = http_exchange(&s3_policy, &t, s3_try, &rt, resp, &why);
	q->tries = rt.tries;
	if (r == LS_ERR_TRANSIENT)
		s3_err(s, q, errmsg, r, "%s (gave up after %d %s in %lld s)",
		    why, q->tries, q->tries == 1 ? "try" : "tries",
		    (long long)((ls_now_us() - rt.start_us + 500000) / 1000000));
	else if (r != 0)
		s3_err(s, q, errmsg, r, "%s", why);
	free(why);
	return r;
}

/* Is status a success (2xx)? */
static int
ok2xx(long status)
{
	return status >= 200 && status < 300;
}

/* ---- head, get, get_range, delete ---- */

/* Check a key: relative, no empty, "." or ".." parts, no control bytes. */
static int
key_check(struct store_s3 *s, const char *op, const char *key, char **errmsg)
{
	struct s3_req q;
	const char *p, *why = NULL;
	size_t len;

	req_init(&q, op, key, NULL, NULL);
	if (key == NULL || *key == '\0')
		why = "empty key";
	for (p = key; why == NULL; p += len + 1) {
		len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			why = "empty, \".\" or \"..\" path component";
		if (p[len] == '\0')
			break;
	}
	for (p = key; why == NULL && *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			why = "control character in key";
	return why == NULL ? 0 : s3_err(s, &q, errmsg, LS_ERR_INVALID,
	    "invalid key: %s", why);
}

/* Check key and make its object key (*objp, caller frees). */
static int
obj_for(struct store_s3 *s, const char *op, const char *key, char **objp,
    char **errmsg)
{
	struct s3_req q;
	int r;

	*objp = NULL;
	if ((r = key_check(s, op, key, errmsg)) != 0)
		return r;
	if ((*objp = objkey_of(s, key)) == NULL) {
		req_init(&q, op, key, NULL, NULL);
		return s3_err(s, &q, errmsg, LS_ERR_NOMEM, "out of memory");
	}
	return 0;
}

/*
 * A HEAD answer has no body, so no S3 error code: ask again with a one-byte
 * GET to report the failure as "HTTP 403 SignatureDoesNotMatch: ...".
 */
static int
head_fail(struct store_s3 *s, struct s3_req *q, const struct http_resp *head,
    char **errmsg)
{
	struct http_resp resp = { 0 };
	int r;

	q->method = "GET";
	req_header(q, "Range", "bytes=0-0");
	if (s3_call(s, q, &resp, NULL) == 0 && resp.status == head->status)
		r = s3_fail(s, q, &resp, errmsg);
	else
		r = s3_fail(s, q, head, errmsg);
	http_resp_free(&resp);
	return r;
}

/* HEAD key (for op): its size and ETag (*etagp, may be NULL; caller frees). */
static int
s3_stat(struct store_s3 *s, const char *op, const char *key, uint64_t *size,
    char **etagp, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	const char *len, *etag;
	char *obj;
	int r;

	if ((r = obj_for(s, op, key, &obj, errmsg)) != 0)
		return r;
	req_init(&q, op, key, "HEAD", obj);
	if ((r = s3_call(s, &q, &resp, errmsg)) != 0)
		goto out;
	if (resp.status == 404)
		r = s3_err(s, &q, errmsg, LS_ERR_NOTFOUND, "no such object");
	else if (!ok2xx(resp.status))
		r = head_fail(s, &q, &resp, errmsg);
	else if ((len = http_header(&resp, "content-length")) == NULL)
		r = s3_err(s, &q, errmsg, LS_ERR_IO, "no Content-Length");
	else {
		*size = strtoull(len, NULL, 10);
		etag = http_header(&resp, "etag");
		if (etagp != NULL && etag != NULL)
			*etagp = strdup(etag);
	}
 out:
	http_resp_free(&resp);
	free(obj);
	return r;
}

static int
s3_head(struct store *st, const char *key, uint64_t *size, char **errmsg)
{
	return s3_stat((struct store_s3 *)st, "head", key, size, NULL, errmsg);
}

/* One GET of obj to fd from byte done on; *wrote is what reached fd. */
static int
get_from(struct store_s3 *s, const char *key, const char *obj, int fd,
    uint64_t done, int64_t deadline, uint64_t *wrote, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	char range[48];
	int r;

	req_init(&q, "get", key, "GET", obj);
	q.resp_fd = fd;
	q.deadline_us = deadline;
	snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)done);
	if (done > 0)
		req_header(&q, "Range", range);
	r = s3_call(s, &q, &resp, errmsg);
	*wrote = resp.written;
	if (r != 0)
		goto out;
	if (resp.status == 404)
		r = s3_fail(s, &q, &resp, errmsg);
	else if (done > 0 && resp.status != 206)
		r = s3_err(s, &q, errmsg, LS_ERR_IO, "resuming at byte %llu: "
		    "HTTP %ld instead of 206; the output holds a partial copy",
		    (unsigned long long)done, resp.status);
	else if (!ok2xx(resp.status))
		r = s3_fail(s, &q, &resp, errmsg);
 out:
	http_resp_free(&resp);
	return r;
}

/* GET to fd; a download cut short resumes where it stopped (Range). */
static int
s3_get(struct store *st, const char *key, int fd, char **errmsg)
{
	struct store_s3 *s = (struct store_s3 *)st;
	int64_t deadline = ls_now_us() + s->deadline_s * 1000000;
	uint64_t done = 0, wrote;
	char *obj;
	int r;

	if ((r = obj_for(s, "get", key, &obj, errmsg)) != 0)
		return r;
	for (;;) {
		r = get_from(s, key, obj, fd, done, deadline, &wrote, errmsg);
		done += wrote;
		if (r != LS_ERR_TRANSIENT || wrote == 0 ||
		    ls_now_us() >= deadline)
			break;
	}
	free(obj);
	return r;
}

static int
s3_get_range(struct store *st, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg)
{
	struct store_s3 *s = (struct store_s3 *)st;
	struct http_resp resp = { 0 };
	struct s3_req q;
	char range[64], *obj;
	int r;

	*got = 0;
	if ((r = obj_for(s, "get", key, &obj, errmsg)) != 0 || len == 0)
		goto out;
	req_init(&q, "get", key, "GET", obj);
	q.resp_max = len > ERR_BODY_MAX ? len : ERR_BODY_MAX;
	snprintf(range, sizeof(range), "bytes=%llu-%llu",
	    (unsigned long long)off, (unsigned long long)(off + len - 1));
	req_header(&q, "Range", range);
	if ((r = s3_call(s, &q, &resp, errmsg)) != 0 || resp.status == 416)
		goto out;	/* 416: off is at or past the end */
	if (resp.status == 206 || (resp.status == 200 && off == 0)) {
		*got = resp.body_len < len ? resp.body_len : len;
		memcpy(buf, resp.body, *got);
	} else if (resp.status == 200)
		r = s3_err(s, &q, errmsg, LS_ERR_IO, "the service ignored the "
		    "Range header");
	else
		r = s3_fail(s, &q, &resp, errmsg);
 out:
	http_resp_free(&resp);
	free(obj);
	return r;
}

static int
s3_del(struct store *st, const char *key, char **errmsg)
{
	struct store_s3 *s = (struct store_s3 *)st;
	struct http_resp resp = { 0 };
	struct s3_req q;
	char *obj;
	int r;

	if ((r = obj_for(s, "delete", key, &obj, errmsg)) != 0)
		return r;
	req_init(&q, "delete", key, "DELETE", obj);
	if ((r = s3_call(s, &q, &resp, errmsg)) == 0 &&
	    !ok2xx(resp.status) && resp_code(&resp) != LS_ERR_NOTFOUND)
		r = s3_fail(s, &q, &resp, errmsg);	/* absent is fine */
	http_resp_free(&resp);
	free(obj);
	return r;
}

/* ---- list ---- */

/* State of one list_after call. */
struct lister {
	struct store_s3		*s;
	struct s3_req		 q;
	struct s3_listing	 page;
};

/* Add one <Contents> entry to the listing, if it is under the prefix. */
static int
list_add(struct s3_listing *l, size_t skip, xmlNodePtr c)
{
	struct store_entry *e;
	char *key = xml_child_text(c, "Key"), *size = xml_child_text(c, "Size");
	int r = 0;

	if (key == NULL || strlen(key) <= skip || (skip > 0 &&
	    (strncmp(key, l->prefix, skip - 1) != 0 ||
	    key[skip - 1] != '/')))
		goto out;		/* not under the prefix: ignored */
	if (l->after != NULL && strcmp(key + skip, l->after) <= 0)
		goto out;		/* see sendable_after */
	if (l->out->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		e = realloc(l->out->entries, l->cap * sizeof(*e));
		if (e == NULL) {
			r = LS_ERR_NOMEM;
			goto out;
		}
		l->out->entries = e;
	}
	e = &l->out->entries[l->out->n];
	if ((e->key = strdup(key + skip)) == NULL) {
		r = LS_ERR_NOMEM;
		goto out;
	}
	e->size = size != NULL ? strtoull(size, NULL, 10) : 0;
	l->out->n++;
 out:
	free(key);
	free(size);
	return r;
}

int
s3_list_parse(struct s3_listing *l, const char *body, size_t len)
{
	xmlDocPtr doc = xml_parse(body, len);
	xmlNodePtr root = xml_root(doc, "ListBucketResult"), c;
	size_t skip = *l->prefix != '\0' ? strlen(l->prefix) + 1 : 0;
	char *trunc;
	int r = 0;

	if (root == NULL) {
		xmlFreeDoc(doc);
		return LS_ERR_IO;
	}
	for (c = root->children; r == 0 && c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)c->name, "Contents") != 0)
			continue;
		if (l->out->n >= l->max) {
			l->out->truncated = 1;
			break;
		}
		r = list_add(l, skip, c);
	}
	trunc = xml_child_text(root, "IsTruncated");
	l->more = trunc != NULL && strcmp(trunc, "true") == 0;
	free(trunc);
	free(l->token);
	l->token = l->more ? xml_child_text(root, "NextContinuationToken") : NULL;
	xmlFreeDoc(doc);
	return r;
}

/* Take one ListObjectsV2 page: its keys, IsTruncated, the next token. */
static int
list_parse(struct lister *l, const struct http_resp *resp, char **errmsg)
{
	int r = s3_list_parse(&l->page, resp->body, resp->body_len);

	if (r == LS_ERR_IO)
		return s3_err(l->s, &l->q, errmsg, LS_ERR_IO, "the answer is "
		    "not a ListBucketResult (%zu bytes)", resp->body_len);
	if (r != 0)
		return s3_err(l->s, &l->q, errmsg, r, "out of memory");
	return 0;
}

/* Fetch and take one page of at most the keys still wanted. */
static int
list_page(struct lister *l, const char *full_prefix, const char *full_after,
    char **errmsg)
{
	struct http_resp resp = { 0 };
	size_t want = l->page.max - l->page.out->n;
	char maxkeys[24];
	int r;

	snprintf(maxkeys, sizeof(maxkeys), "%zu", want == 0 ? 1 :
	    want > l->s->list_page ? l->s->list_page : want);
	req_init(&l->q, "list", l->q.key, "GET", NULL);
	l->q.resp_max = LIST_BODY_MAX;
	req_query(&l->q, "list-type", "2");
	req_query(&l->q, "max-keys", maxkeys);
	if (*full_prefix != '\0')
		req_query(&l->q, "prefix", full_prefix);
	if (l->page.token != NULL)
		req_query(&l->q, "continuation-token", l->page.token);
	else if (full_after != NULL)
		req_query(&l->q, "start-after", full_after);
	if ((r = s3_call(l->s, &l->q, &resp, errmsg)) == 0)
		r = resp.status == 200 ? list_parse(l, &resp, errmsg) :
		    s3_fail(l->s, &l->q, &resp, errmsg);
	http_resp_free(&resp);
	return r;
}

/* Length of the longest prefix of s that is valid UTF-8. */
static size_t
utf8_prefix(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;

	while (p[i] != '\0') {
		n = p[i] < 0x80 ? 1 : p[i] >= 0xc2 && p[i] < 0xe0 ? 2 :
		    p[i] >= 0xe0 && p[i] < 0xf0 ? 3 :
		    p[i] >= 0xf0 && p[i] < 0xf5 ? 4 : 0;
		if (n == 0)
			return i;
		for (k = 1; k < n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += n;
	}
	return i;
}

/*
 * The start-after to send, as an object key.  S3 wants UTF-8 there, but
 * callers may pass any bytes (catalog.c skips a generation with
 * "<gen>/\xff").  Then send the valid part, followed by U+10FFFF when the
 * first bad byte sorts above every UTF-8 byte, and set *filter: keys up to
 * start_after are dropped as they arrive.
 */
static char *
sendable_after(const struct store_s3 *s, const char *after,
    const char **filter)
{
	size_t n = utf8_prefix(after);
	char *valid, *out;

	*filter = NULL;
	if (after[n] == '\0')
		return objkey_of(s, after);
	*filter = after;
	if (asprintf(&valid, "%.*s%s", (int)n, after,
	    (unsigned char)after[n] >= 0xf5 ? "\xf4\x8f\xbf\xbf" : "") == -1)
		return NULL;
	out = objkey_of(s, valid);
	free(valid);
	return out;
}

static int
s3_list_after(struct store *st, const char *prefix, const char *start_after,
    size_t max, struct store_list *out, char **errmsg)
{
	struct store_s3 *s = (struct store_s3 *)st;
	struct lister l = { .s = s, .page = { .prefix = s->prefix, .max = max,
	    .out = out } };
	char *full_prefix = objkey_of(s, prefix), *full_after = NULL;
	int r = 0;

	l.q.key = prefix;
	if (*start_after != '\0')
		full_after = sendable_after(s, start_after, &l.page.after);
	if (full_prefix == NULL || (*start_after != '\0' && full_after == NULL))
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	while (r == 0) {
		if ((r = list_page(&l, full_prefix, full_after, errmsg)) != 0 ||
		    out->truncated)
			break;
		if (!l.page.more)
			break;
		if (out->n >= max || l.page.token == NULL) {
			out->truncated = 1;
			break;
		}
	}
	free(l.page.token);
	free(full_prefix);
	free(full_after);
	return r;
}

/* ---- put ---- */

/* The digests of an upload (whole object or one part). */
struct digest {
	char	sha[65];
	char	md5_b64[25];
	char	etag[36];		/* '"' md5-hex '"': a PUT's ETag */
};

static int
digest_fd(int fd, uint64_t off, uint64_t len, struct digest *d,
    char **errmsg)
{
	uint8_t md5[16];
	char hex[33];
	int r;

	if ((r = sigv4_hash_fd(fd, off, len, d->sha, md5, errmsg)) != 0)
		return r;
	EVP_EncodeBlock((unsigned char *)d->md5_b64, md5, 16);
	ls_hex(md5, 16, hex);
	snprintf(d->etag, sizeof(d->etag), "\"%s\"", hex);
	return 0;
}

/* Size of the regular file (or memfd) fd. */
static int
fd_size(struct store_s3 *s, const char *op, const char *key, int fd,
    uint64_t *size, char **errmsg)
{
	struct s3_req q;
	struct stat st;

	req_init(&q, op, key, NULL, NULL);
	if (fstat(fd, &st) == -1)
		return s3_err(s, &q, errmsg, LS_ERR_IO, "fstat: %s",
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return s3_err(s, &q, errmsg, LS_ERR_INVALID, "the source is "
		    "not a regular file (S3 needs its size up front)");
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Say once per process that conditional writes are not supported. */
static void
note_nocond(struct store_s3 *s)
{
	static int warned;

	__atomic_store_n(&s->nocond, 1, __ATOMIC_RELAXED);
	if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED) == 0)
		log_warn("store", "store %s: the service does not support "
		    "conditional writes (HTTP 501); falling back to HEAD then "
		    "PUT", s->base.url);
}

/* After a 412 to a retried conditional PUT: is the object our own? */
static int
own_object(struct store_s3 *s, const char *op, const char *key,
    const struct digest *d, uint64_t size)
{
	uint64_t got = 0;
	char *etag = NULL;
	int mine;

	mine = s3_stat(s, op, key, &got, &etag, NULL) == 0 && got == size &&
	    etag != NULL && strcmp(etag, d->etag) == 0;
	free(etag);
	return mine;
}

/* One PUT of the whole of fd; 0, LS_ERR_EXISTS, S3_NOCOND, or an error. */
static int
put_single(struct store_s3 *s, const char *op, const char *key, int fd,
    uint64_t size, const struct digest *d, int cond, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	char *obj;
	int r;

	if ((r = obj_for(s, op, key, &obj, errmsg)) != 0)
		return r;
	req_init(&q, op, key, "PUT", obj);
	q.body_fd = fd;
	q.body_size = size;
	q.body_hash = d->sha;
	req_header(&q, "Content-MD5", d->md5_b64);
	if (cond)
		req_header(&q, "If-None-Match", "*");
	if ((r = s3_call(s, &q, &resp, errmsg)) != 0 || ok2xx(resp.status))
		goto out;
	if (cond && resp.status == 501)
		r = S3_NOCOND;
	else if (cond && resp.status == 412)
		r = q.tries > 1 && own_object(s, op, key, d, size) ? 0 :
		    s3_err(s, &q, errmsg, LS_ERR_EXISTS, "already exists");
	else
		r = s3_fail(s, &q, &resp, errmsg);
 out:
	http_resp_free(&resp);
	free(obj);
	return r;
}

/* LS_ERR_EXISTS if key exists, 0 if not, or the HEAD's error. */
static int
absent(struct store_s3 *s, const char *op, const char *key, char **errmsg)
{
	struct s3_req q;
	uint64_t size = 0;
	int r;

	r = s3_stat(s, op, key, &size, NULL, errmsg);
	if (r == LS_ERR_NOTFOUND)
		return 0;
	if (r != 0)
		return r;
	req_init(&q, op, key, NULL, NULL);
	return s3_err(s, &q, errmsg, LS_ERR_EXISTS, "already exists");
}

/* ---- multipart ---- */

/* One multipart upload in progress. */
struct mpu {
	struct store_s3	*s;
	const char	*op;
	const char	*key;
	char		*obj;
	int		 fd;
	uint64_t	 size;
	uint64_t	 part;		/* bytes per part, but the last */
	unsigned	 nparts;
	char		*upload_id;
	char		**etags;	/* per part, as the service gave them */
};

/* A part's digests, computed by a worker thread. */
struct part_hash {
	pthread_t	 tid;
	int		 running;
	int		 fd;
	uint64_t	 off;
	uint64_t	 len;
	struct digest	 d;
	int		 r;
	char		*err;
};

static void *
part_hash_main(void *arg)
{
	struct part_hash *h = arg;

	h->r = digest_fd(h->fd, h->off, h->len, &h->d, &h->err);
	return NULL;
}

/* Start hashing part n (1-based) on a thread, or here if none can start. */
static void
part_hash_start(struct part_hash *h, const struct mpu *m, unsigned n)
{
	uint64_t off = (uint64_t)(n - 1) * m->part;

	memset(h, 0, sizeof(*h));
	h->fd = m->fd;
	h->off = off;
	h->len = m->size - off < m->part ? m->size - off : m->part;
	h->running = pthread_create(&h->tid, NULL, part_hash_main, h) == 0;
	if (!h->running)
		part_hash_main(h);
}

static void
part_hash_wait(struct part_hash *h)
{
	if (h->running)
		pthread_join(h->tid, NULL);
	h->running = 0;
}

char *
s3_upload_id(const char *body, size_t len)
{
	xmlDocPtr doc = xml_parse(body, len);
	char *id = xml_child_text(xml_root(doc, "InitiateMultipartUploadResult"),
	    "UploadId");

	xmlFreeDoc(doc);
	if (id != NULL && (*id == '\0' || strpbrk(id, "\r\n") != NULL)) {
		free(id);
		id = NULL;
	}
	return id;
}

/* CreateMultipartUpload: m->upload_id. */
static int
mpu_create(struct mpu *m, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	int r;

	req_init(&q, m->op, m->key, "POST", m->obj);
	req_query(&q, "uploads", NULL);
	if ((r = s3_call(m->s, &q, &resp, errmsg)) != 0)
		goto out;
	if (resp.status != 200) {
		r = s3_fail(m->s, &q, &resp, errmsg);
		goto out;
	}
	m->upload_id = s3_upload_id(resp.body, resp.body_len);
	if (m->upload_id == NULL)
		r = s3_err(m->s, &q, errmsg, LS_ERR_IO, "starting a multipart "
		    "upload: no UploadId in the answer");
 out:
	http_resp_free(&resp);
	return r;
}

/* UploadPart n with the digests h computed. */
static int
mpu_part(struct mpu *m, unsigned n, const struct part_hash *h, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	const char *etag;
	char num[16];
	int r;

	req_init(&q, m->op, m->key, "PUT", m->obj);
	if (n == m->s->fail_part)
		return s3_err(m->s, &q, errmsg, LS_ERR_IO, "part %u: failure "
		    "injected by LOGSHIP_S3_FAIL_PART", n);
	snprintf(num, sizeof(num), "%u", n);
	req_query(&q, "partNumber", num);
	req_query(&q, "uploadId", m->upload_id);
	req_header(&q, "Content-MD5", h->d.md5_b64);
	q.body_fd = m->fd;
	q.body_off = h->off;
	q.body_size = h->len;
	q.body_hash = h->d.sha;
	if ((r = s3_call(m->s, &q, &resp, errmsg)) == 0 && !ok2xx(resp.status))
		r = s3_fail(m->s, &q, &resp, errmsg);
	else if (r == 0 && ((etag = http_header(&resp, "etag")) == NULL ||
	    (m->etags[n - 1] = strdup(etag)) == NULL))
		r = s3_err(m->s, &q, errmsg, LS_ERR_IO, "part %u: no ETag in "
		    "the answer", n);
	http_resp_free(&resp);
	return r;
}

/* Send every part; part n+1 is hashed while part n is sent. */
static int
mpu_parts(struct mpu *m, char **errmsg)
{
	struct part_hash h[2];
	struct part_hash *cur, *next;
	unsigned n;
	int r = 0;

	part_hash_start(&h[0], m, 1);
	for (n = 1; n <= m->nparts && r == 0; n++) {
		cur = &h[(n - 1) % 2];
		next = &h[n % 2];
		part_hash_wait(cur);
		if ((r = cur->r) != 0) {
			ls_errf(errmsg, r, "store %s: %s %s: part %u: %s",
			    m->s->base.url, m->op, m->key, n, cur->err);
			free(cur->err);
			break;
		}
		if (n < m->nparts)
			part_hash_start(next, m, n + 1);
		r = mpu_part(m, n, cur, errmsg);
		if (r == 0 && n < m->nparts)
			crashpoint("store-between-parts");
		if (r != 0 && n < m->nparts) {
			part_hash_wait(next);
			free(next->err);
		}
	}
	return r;
}

/* The CompleteMultipartUpload document; NULL if out of memory. */
static char *
mpu_xml(const struct mpu *m, size_t *lenp)
{
	char *out = NULL;
	unsigned n;
	FILE *f;

	if ((f = open_memstream(&out, lenp)) == NULL)
		return NULL;
	fputs("<CompleteMultipartUpload>", f);
	for (n = 1; n <= m->nparts; n++) {
		fprintf(f, "<Part><PartNumber>%u</PartNumber><ETag>", n);
		xml_escape(f, m->etags[n - 1]);
		fputs("</ETag></Part>", f);
	}
	fputs("</CompleteMultipartUpload>", f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* An answer to Complete: 200 may still hold an <Error>. */
static int
mpu_answer(struct mpu *m, struct s3_req *q, struct http_resp *resp,
    int cond, char **errmsg)
{
	xmlDocPtr doc;
	int err;

	if (cond && resp->status == 501)
		return S3_NOCOND;
	if (cond && resp->status == 412)
		return s3_err(m->s, q, errmsg, LS_ERR_EXISTS, "already exists");
	if (resp->status != 200)
		return s3_fail(m->s, q, resp, errmsg);
	doc = xml_parse(resp->body, resp->body_len);
	err = xml_root(doc, "Error") != NULL;
	xmlFreeDoc(doc);
	return err ? s3_fail(m->s, q, resp, errmsg) : 0;
}

/* CompleteMultipartUpload, with If-None-Match: * when cond. */
static int
mpu_complete(struct mpu *m, int cond, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	size_t len;
	char *xml;
	int r;

	req_init(&q, m->op, m->key, "POST", m->obj);
	if ((xml = mpu_xml(m, &len)) == NULL)
		return s3_err(m->s, &q, errmsg, LS_ERR_NOMEM, "out of memory");
	req_query(&q, "uploadId", m->upload_id);
	if (cond)
		req_header(&q, "If-None-Match", "*");
	q.body = xml;
	q.body_len = len;
	if ((r = s3_call(m->s, &q, &resp, errmsg)) == 0)
		r = mpu_answer(m, &q, &resp, cond, errmsg);
	http_resp_free(&resp);
	free(xml);
	return r;
}

/* AbortMultipartUpload; on failure, say which upload is left. */
static void
mpu_abort(struct mpu *m, int r, char **errmsg)
{
	struct http_resp resp = { 0 };
	struct s3_req q;
	char *why = NULL;

	req_init(&q, m->op, m->key, "DELETE", m->obj);
	req_query(&q, "uploadId", m->upload_id);
	q.deadline_us = ls_now_us() + (m->s->deadline_s < ABORT_DEADLINE_S ?
	    m->s->deadline_s : ABORT_DEADLINE_S) * 1000000;
	if (s3_call(m->s, &q, &resp, &why) == 0 &&
	    (ok2xx(resp.status) || resp.status == 404))
		goto out;
	if (why == NULL)
		s3_fail(m->s, &q, &resp, &why);
	ls_errf(errmsg, r, "%s; and aborting upload %s failed (%s): remove it "
	    "or let a bucket lifecycle rule expire it", errmsg && *errmsg ?
	    *errmsg : ls_strerror(r), m->upload_id, why);
 out:
	free(why);
	http_resp_free(&resp);
}

/* Complete a conditional upload; on 501, fall back to HEAD, then plain. */
static int
mpu_finish(struct mpu *m, int cond, char **errmsg)
{
	int r;

	if (cond && __atomic_load_n(&m->s->nocond, __ATOMIC_RELAXED))
		cond = 0;
	if ((r = mpu_complete(m, cond, errmsg)) != S3_NOCOND)
		return r;
	note_nocond(m->s);
	if ((r = absent(m->s, m->op, m->key, errmsg)) != 0)
		return r;
	return mpu_complete(m, 0, errmsg);
}

/* Split the object into parts: the configured size, or more (10,000 max). */
static void
mpu_plan(struct mpu *m)
{
	uint64_t part = m->s->part_size, min;

	min = (m->size + MAX_PARTS - 1) / MAX_PARTS;
	if (part < min)
		part = (min + MIB - 1) / MIB * MIB;
	m->part = part;
	m->nparts = (unsigned)((m->size + part - 1) / part);
}

/* Upload fd in parts; on any failure the upload is aborted. */
static int
put_multipart(struct store_s3 *s, const char *op, const char *key, int fd,
    uint64_t size, int cond, char **errmsg)
{
	struct mpu m = { .s = s, .op = op, .key = key, .fd = fd, .size = size };
	unsigned n;
	int r;

	if (cond && (r = absent(s, op, key, errmsg)) != 0)
		return r;
	if ((r = obj_for(s, op, key, &m.obj, errmsg)) != 0)
		return r;
	mpu_plan(&m);
	if ((m.etags = calloc(m.nparts, sizeof(*m.etags))) == NULL)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (r == 0 && (r = mpu_create(&m, errmsg)) == 0 &&
	    ((r = mpu_parts(&m, errmsg)) != 0 ||
	    (r = mpu_finish(&m, cond, errmsg)) != 0))
		mpu_abort(&m, r, errmsg);
	for (n = 0; m.etags != NULL && n < m.nparts; n++)
		free(m.etags[n]);
	free(m.etags);
	free(m.upload_id);
	free(m.obj);
	return r;
}

/* put and put_if_absent (cond). */
static int
put_common(struct store_s3 *s, const char *op, const char *key, int fd,
    int cond, char **errmsg)
{
	struct digest d;
	uint64_t size = 0;
	int r;

	if ((r = key_check(s, op, key, errmsg)) != 0 ||
	    (r = fd_size(s, op, key, fd, &size, errmsg)) != 0)
		return r;
	if (size > s->threshold)
		return put_multipart(s, op, key, fd, size, cond, errmsg);
	if ((r = digest_fd(fd, 0, size, &d, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "store %s: %s %s", s->base.url,
		    op, key);
	if (cond && !__atomic_load_n(&s->nocond, __ATOMIC_RELAXED)) {
		r = put_single(s, op, key, fd, size, &d, 1, errmsg);
		if (r != S3_NOCOND)
			return r;
		note_nocond(s);
	}
	if (cond && (r = absent(s, op, key, errmsg)) != 0)
		return r;
	return put_single(s, op, key, fd, size, &d, 0, errmsg);
}

static int
s3_put(struct store *st, const char *key, int fd, char **errmsg)
{
	return put_common((struct store_s3 *)st, "put", key, fd, 0, errmsg);
}

static int
s3_put_if_absent(struct store *st, const char *key, int fd, char **errmsg)
{
	return put_common((struct store_s3 *)st, "put_if_absent", key, fd, 1,
	    errmsg);
}

/* ---- open ---- */

static void
wipe_free(char *p)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

static void
s3_free(struct store *st)
{
	struct store_s3 *s = (struct store_s3 *)st;

	if (s == NULL)
		return;
	free(s->base.url);
	free(s->prefix);
	free(s->base_url);
	free(s->host);
	free(s->bucket_path);
	free(s->region);
	free(s->ca_file);
	wipe_free(s->access_key);
	wipe_free(s->secret_key);
	wipe_free(s->token);
	free(s);
}

/* Replace *dst by a copy of src (NULL stays NULL); -1 if out of memory. */
static int
set_str(char **dst, const char *src)
{
	wipe_free(*dst);
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL ? 0 : -1;
}

/* s with blanks (and a line's end) trimmed, in place. */
static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	return s;
}

/* One "name = value" line of a credentials file. */
static int
creds_line(struct store_s3 *s, char *line)
{
	char *eq = strchr(line, '='), *name, *value;

	if (eq == NULL)
		return 0;
	*eq = '\0';
	name = trim(line);
	value = trim(eq + 1);
	if (strcasecmp(name, "aws_access_key_id") == 0)
		return set_str(&s->access_key, value);
	if (strcasecmp(name, "aws_secret_access_key") == 0)
		return set_str(&s->secret_key, value);
	if (strcasecmp(name, "aws_session_token") == 0)
		return set_str(&s->token, value);
	return 0;
}

/*
 * Read keys from a "key = value" file; in an INI file (~/.aws/credentials)
 * only the [default] section counts.  Comments start with '#' or ';'.
 */
static int
creds_file(struct store_s3 *s, const char *path, char **errmsg)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *p;
	size_t cap = 0;
	int in_default = 1, r = 0;

	if (f == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: S3 "
		    "credentials file %s: %s", s->base.url, path,
		    strerror(errno));
	if ((r = secfile_check_fd(fileno(f), path, "S3 credentials file",
	    errmsg)) != 0) {
		fclose(f);
		return ls_errprefix(errmsg, r, "store %s", s->base.url);
	}
	while (r == 0 && getline(&line, &cap, f) != -1) {
		p = trim(line);
		if (*p == '[')
			in_default = strcmp(p, "[default]") == 0;
		else if (in_default && *p != '#' && *p != ';')
			r = creds_line(s, p);
	}
	if (line != NULL)
		OPENSSL_cleanse(line, cap);
	free(line);
	fclose(f);
	if (r != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	return 0;
}

/* Credentials: the file named in opts, else AWS_* variables. */
static int
load_creds(struct store_s3 *s, const struct store_opts *o, char **errmsg)
{
	const char *tok = getenv("AWS_SESSION_TOKEN");
	int r;

	if (o->s3_credentials_file != NULL) {
		if ((r = creds_file(s, o->s3_credentials_file, errmsg)) != 0)
			return r;
	} else if (set_str(&s->access_key, getenv("AWS_ACCESS_KEY_ID")) != 0 ||
	    set_str(&s->secret_key, getenv("AWS_SECRET_ACCESS_KEY")) != 0 ||
	    set_str(&s->token, tok != NULL && *tok != '\0' ? tok : NULL) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (s->access_key != NULL && *s->access_key != '\0' &&
	    s->secret_key != NULL && *s->secret_key != '\0')
		return 0;
	if (o->s3_credentials_file != NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: no S3 "
		    "credentials in %s: it needs aws_access_key_id and "
		    "aws_secret_access_key (and aws_session_token for "
		    "temporary credentials)", s->base.url,
		    o->s3_credentials_file);
	return ls_errf(errmsg, LS_ERR_INVALID, "store %s: no S3 credentials: "
	    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
	    "AWS_SESSION_TOKEN for temporary credentials), or give "
	    "--s3-credentials-file", s->base.url);
}

/* Is the endpoint's host (auth: "host[:port]") an IP address or localhost? */
static int
literal_host(const char *auth, size_t alen)
{
	size_t hlen = auth[0] == '[' ? alen : strcspn(auth, ":");

	if (hlen > alen)
		hlen = alen;
	return auth[0] == '[' || strspn(auth, "0123456789.") == hlen ||
	    (hlen == 9 && strncmp(auth, "localhost", 9) == 0);
}

/*
 * Endpoint, Host header and path of the bucket, by URI style: host
 * (virtual-hosted) unless asked for path, or unless the endpoint is an IP
 * address or localhost, where a bucket cannot be a host name.
 */
static int
set_endpoint(struct store_s3 *s, const char *bucket,
    const struct store_opts *o, char **errmsg)
{
	const char *ep = o->s3_endpoint, *style = o->s3_uri_style, *auth;
	char *dflt = NULL;
	size_t slen, alen;
	int path_style, r;

	if (style != NULL && strcmp(style, "path") != 0 &&
	    strcmp(style, "host") != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: S3 URI style "
		    "\"%s\": use path or host", s->base.url, style);
	if (ep == NULL && asprintf(&dflt, "https://s3.%s.amazonaws.com",
	    s->region) == -1)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	ep = ep != NULL ? ep : dflt;
	slen = strncmp(ep, "https://", 8) == 0 ? 8 :
	    strncmp(ep, "http://", 7) == 0 ? 7 : 0;
	auth = ep + slen;
	alen = strcspn(auth, "/");
	path_style = style != NULL ? strcmp(style, "path") == 0 :
	    literal_host(auth, alen);
	if (slen == 0 || alen == 0 || strspn(auth + alen, "/") !=
	    strlen(auth + alen))
		r = ls_errf(errmsg, LS_ERR_INVALID, "store %s: S3 endpoint "
		    "\"%s\": expected http(s)://host[:port]", s->base.url, ep);
	else if (asprintf(&s->host, "%s%s%.*s", path_style ? "" : bucket,
	    path_style ? "" : ".", (int)alen, auth) == -1 ||
	    asprintf(&s->base_url, "%.*s%s", (int)slen, ep, s->host) == -1 ||
	    asprintf(&s->bucket_path, "%s%s", path_style ? "/" : "",
	    path_style ? bucket : "") == -1)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else
		r = 0;
	free(dflt);
	return r;
}

/* A size from opts, else from the environment (tests), else dflt. */
static uint64_t
setting(uint64_t opt, const char *env, uint64_t dflt)
{
	const char *v = getenv(env);
	char *end;
	unsigned long long n;

	if (opt != 0)
		return opt;
	if (v == NULL || *v == '\0')
		return dflt;
	errno = 0;
	n = strtoull(v, &end, 10);
	return errno == 0 && *end == '\0' && n > 0 ? n : dflt;
}

/* Region, limits and test hooks. */
static int
set_limits(struct store_s3 *s, const struct store_opts *o, char **errmsg)
{
	const char *region = o->s3_region ? o->s3_region : getenv("AWS_REGION");

	if (set_str(&s->region, region != NULL && *region != '\0' ? region :
	    "us-east-1") != 0 ||
	    set_str(&s->ca_file, o->s3_ca_file) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	s->threshold = setting(o->multipart_threshold,
	    "LOGSHIP_S3_MULTIPART_THRESHOLD", DEFAULT_THRESHOLD);
	s->part_size = setting(o->part_size, "LOGSHIP_S3_PART_SIZE",
	    DEFAULT_PART);
	s->deadline_s = (int64_t)setting(o->deadline_s > 0 ?
	    (uint64_t)o->deadline_s : 0, "LOGSHIP_S3_DEADLINE_S",
	    DEFAULT_DEADLINE_S);
	s->fail_part = (unsigned)setting(0, "LOGSHIP_S3_FAIL_PART", 0);
	s->list_page = (size_t)setting(0, "LOGSHIP_S3_LIST_PAGE", LIST_PAGE);
	if (s->list_page > LIST_PAGE)
		s->list_page = LIST_PAGE;
	if (s->part_size < MIN_PART)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: S3 part size "
		    "%llu is below the service's minimum of 5 MiB", s->base.url,
		    (unsigned long long)s->part_size);
	return 0;
}

/* A bucket name S3 (or a compatible service) could accept. */
static int
bucket_ok(const char *b)
{
	return *b != '\0' && strlen(b) <= 255 && strspn(b,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
	    == strlen(b);
}

int
store_s3_open(const char *url, const char *bucket, const char *prefix,
    const struct store_opts *opts, struct store **out, char **errmsg)
{
	static const struct store_opts none;
	struct store_s3 *s;
	int r;

	*out = NULL;
	opts = opts != NULL ? opts : &none;
	if (!bucket_ok(bucket))
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: \"%s\" is "
		    "not a valid S3 bucket name", url, bucket);
	xml_global_init();
	http_global_init();
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((s->base.url = strdup(url)) == NULL ||
	    (s->prefix = strdup(prefix)) == NULL) {
		s3_free(&s->base);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	s->base.ops = &store_s3_ops;
	if ((r = set_limits(s, opts, errmsg)) != 0 ||
	    (r = set_endpoint(s, bucket, opts, errmsg)) != 0 ||
	    (r = load_creds(s, opts, errmsg)) != 0) {
		s3_free(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

static const struct store_ops store_s3_ops = STORE_OPS(s3, "s3");
