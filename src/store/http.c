/* http.c: libcurl exchanges for the object-store backends (see http.h). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/error.h"
#include "common/util.h"
#include "store/http.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
http_global_init(void)
{
	pthread_once(&once, init_curl);
}

struct xfer {
	const struct http_req	*req;
	struct http_resp	*resp;
	uint64_t		 sent;
	size_t			 cap;
	int			 write_err;
};

static size_t
on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	const struct http_req *q = x->req;
	size_t want = size * n, left;
	ssize_t got;

	left = q->body_fd >= 0 ? (size_t)(q->body_size - x->sent) :
	    q->body_len - (size_t)x->sent;
	if (want > left)
		want = left;
	if (want == 0)
		return 0;
	if (q->body_fd < 0) {
		memcpy(buf, (const char *)q->body + x->sent, want);
		x->sent += want;
		return want;
	}
	got = ls_pread_all(q->body_fd, buf, want, (off_t)(q->body_off + x->sent));
	if (got <= 0)
		return CURL_READFUNC_ABORT;
	x->sent += (uint64_t)got;
	return (size_t)got;
}

static int
on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t
on_write(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct http_resp *r = x->resp;
	size_t len = size * n, keep;
	char *bigger;

	if (x->req->resp_fd >= 0 && r->status >= 200 && r->status < 300) {
		if (ls_write_all(x->req->resp_fd, buf, len) != 0) {
			x->write_err = errno;
			return 0;
		}
		r->written += len;
		return len;
	}
	keep = r->body_len + len > x->req->resp_max ?
	    (x->req->resp_max > r->body_len ? x->req->resp_max - r->body_len : 0) :
	    len;
	if (keep > 0) {
		if (r->body_len + keep + 1 > x->cap) {
			x->cap = (r->body_len + keep + 1) * 2;
			if ((bigger = realloc(r->body, x->cap)) == NULL)
				return 0;
			r->body = bigger;
		}
		memcpy(r->body + r->body_len, buf, keep);
		r->body_len += keep;
		r->body[r->body_len] = '\0';
	}
	return len;
}

/* Header lines: the status line sets the status; others are kept. */
static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct http_resp *r = x->resp;
	size_t len = size * n, i;
	char *line, *colon, *v, *e;
	struct http_header *bigger;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		r->status = strtol(strchr(buf, ' ') ? strchr(buf, ' ') : buf, NULL, 10);
		for (i = 0; i < r->nheaders; i++) {	/* a new response */
			free(r->headers[i].name);
			free(r->headers[i].value);
		}
		r->nheaders = 0;
		return len;
	}
	if ((line = strndup(buf, len)) == NULL)
		return 0;
	if ((colon = strchr(line, ':')) != NULL &&
	    (bigger = realloc(r->headers, (r->nheaders + 1) * sizeof(*bigger)))) {
		r->headers = bigger;
		*colon = '\0';
		for (v = line; *v; v++)
			*v = (char)tolower((unsigned char)*v);
		for (v = colon + 1; isspace((unsigned char)*v); v++)
			;
		for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]); e--)
			;
		*e = '\0';
		r->headers[r->nheaders].name = strdup(line);
		r->headers[r->nheaders].value = strdup(v);
		r->nheaders++;
	}
	free(line);
	return len;
}

static int
setup(CURL *c, const struct http_req *q, struct xfer *x, char *errbuf)
{
	uint64_t size = q->body_fd >= 0 ? q->body_size : q->body_len;
	bool has_body = q->body_fd >= 0 || q->body != NULL;

	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, q->headers);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, q->timeout_s > 0 ? q->timeout_s : 300L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, q->connect_timeout_s > 0 ?
	    q->connect_timeout_s : 10L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (q->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, q->ca_file);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	if (strcmp(q->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (has_body || strcmp(q->method, "PUT") == 0 ||
	    strcmp(q->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	}
	return 0;
}

int
http_do(const struct http_req *q, struct http_resp *resp, char **errmsg)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct xfer x = { q, resp, 0, 0, 0 };
	CURL *c;
	CURLcode rc;
	int r = 0;

	http_global_init();
	memset(resp, 0, sizeof(*resp));
	if ((c = curl_easy_init()) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "curl init failed");
	setup(c, q, &x, errbuf);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	else if (x.write_err != 0)
		r = ls_errf(errmsg, LS_ERR_IO, "writing the response: %s",
		    strerror(x.write_err));
	else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
	    rc == CURLE_SSL_CACERT_BADFILE)
		r = ls_errf(errmsg, LS_ERR_INVALID, "%s", *errbuf ? errbuf :
		    curl_easy_strerror(rc));
	else if (rc == CURLE_PEER_FAILED_VERIFICATION)	/* no retry mends it */
		r = ls_errf(errmsg, LS_ERR_INVALID, "%s: the server's TLS "
		    "certificate is not trusted; if a private CA signed it, give "
		    "that CA with --s3-ca-file, --azure-ca-file or --gcs-ca-file "
		    "(the store's kind)", *errbuf ? errbuf :
		    curl_easy_strerror(rc));
	else
		r = ls_errf(errmsg, LS_ERR_TRANSIENT, "%s", *errbuf ? errbuf :
		    curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	return r;
}

void
http_resp_free(struct http_resp *r)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

const char *
http_header(const struct http_resp *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

bool
http_retryable(long status)
{
	/* 501 Not Implemented will not change on a retry */
	return (status >= 500 && status != 501) || status == 408 ||
	    status == 429 || status == 0;
}

bool
http_policy_retryable(const struct http_policy *p, long status)
{
	const long *s;

	for (s = p != NULL ? p->also_retry : NULL; s != NULL && *s != 0; s++)
		if (*s == status)
			return true;
	return http_retryable(status);
}

void
http_retry_start(struct http_retry *rt, int64_t lease_us, int64_t deadline_us)
{
	memset(rt, 0, sizeof(*rt));
	rt->start_us = ls_now_us();
	rt->lease_us = lease_us;
	rt->deadline_us = deadline_us != 0 ? deadline_us : rt->start_us +
	    lease_us;
}

static uint64_t retries;	/* atomic builtins: any thread */
static uint64_t requests;

uint64_t
http_requests(void)
{
	return __atomic_load_n(&requests, __ATOMIC_RELAXED);
}

uint64_t
http_retries(void)
{
	return __atomic_load_n(&retries, __ATOMIC_RELAXED);
}

bool
http_retry_again(const struct http_policy *p, void *arg,
    struct http_retry *rt, int r, const struct http_resp *resp)
{
	if (r != 0 && r != LS_ERR_TRANSIENT)
		return false;
	if (r == 0 && p->again_now != NULL && p->again_now(arg, resp))
		return true;
	if (r == 0 && !http_policy_retryable(p, resp->status))
		return false;
	if (resp->written > 0) {	/* a download got further */
		if (!p->renew_on_progress)
			return false;
		rt->failures = 0;
		rt->deadline_us = ls_now_us() + rt->lease_us;
	}
	if (http_backoff(rt->failures++, rt->deadline_us) != 0)
		return false;
	__atomic_add_fetch(&retries, 1, __ATOMIC_RELAXED);
	return true;
}

int
http_exchange(const struct http_policy *p, void *arg,
    int (*attempt)(void *, struct http_resp *, char **),
    struct http_retry *rt, struct http_resp *resp, char **why)
{
	int r;

	do {
		free(*why);
		*why = NULL;
		http_resp_free(resp);
		rt->tries++;
		__atomic_add_fetch(&requests, 1, __ATOMIC_RELAXED);
		r = attempt(arg, resp, why);
	} while (http_retry_again(p, arg, rt, r, resp));
	return r;
}

int
http_status_code(const struct http_policy *p, long status)
{
	if (status == 404)
		return LS_ERR_NOTFOUND;
	if (status == 401 || status == 403)
		return LS_ERR_AUTH;
	if (status == 412)
		return LS_ERR_EXISTS;
	if (http_policy_retryable(p, status))
		return LS_ERR_TRANSIENT;
	return status >= 400 && status < 500 ? LS_ERR_INVALID : LS_ERR_IO;
}

char *
http_status_text(char *buf, size_t len, long status, const char *code,
    const char *message)
{
	snprintf(buf, len, "HTTP %ld%s%s%s%s", status, code ? " " : "",
	    code ? code : "", message ? ": " : "", message ? message : "");
	return buf;
}

int
http_backoff(int attempt, int64_t deadline_us)
{
	int64_t wait = ls_backoff_us(attempt);
	struct timespec ts;

	if (ls_now_us() + wait > deadline_us)
		return LS_ERR_TRANSIENT;
	ts.tv_sec = (time_t)(wait / 1000000);
	ts.tv_nsec = (long)(wait % 1000000) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 0;
}

char *
http_uri_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *p = out;
	unsigned char ch;

	if (out == NULL)
		return NULL;
	for (; *s; s++) {
		ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
		    (keep_slash && ch == '/'))
			*p++ = (char)ch;
		else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}

char *
http_one_line(char *s)
{
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; s[i] != '\0' && s[i] != '\n' && s[i] != '\r'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
	s[i] = '\0';
	if (i > HTTP_MSG_MAX + 3)
		strcpy(s + HTTP_MSG_MAX, "...");
	return s;
}
