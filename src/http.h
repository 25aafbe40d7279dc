/*
 * http.h: one HTTP exchange through libcurl, for the object-store backends.
 *
 * A backend builds and signs each attempt itself (signatures carry the
 * time), calls http_do, and decides with http_retryable and http_backoff
 * whether to try again.  TLS is verified by default; ca_file replaces the
 * system CA bundle.  Bodies stream from an fd (uploads) and to an fd
 * (downloads) so memory stays bounded; small bodies can live in memory.
 */
#ifndef LS_HTTP_H
#define LS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_slist;

struct http_req {
	const char		*method;	/* "GET", "PUT", ... */
	const char		*url;		/* full URL, already encoded */
	const struct curl_slist	*headers;	/* "Name: value" lines */
	/* request body: memory, or body_size bytes of body_fd from body_off */
	const void		*body;
	size_t			 body_len;
	int			 body_fd;	/* -1: none (use body/body_len) */
	uint64_t		 body_off;
	uint64_t		 body_size;
	/* response body: to resp_fd when >= 0 and the status is 2xx, else to
	 * memory, at most resp_max bytes (the rest is dropped) */
	int			 resp_fd;
	size_t			 resp_max;
	const char		*ca_file;	/* NULL: system CAs */
	long			 timeout_s;	/* whole exchange; 0: 300 */
	long			 connect_timeout_s; /* 0: 10 */
};

struct http_header {
	char	*name;		/* lowercased */
	char	*value;		/* trimmed */
};

struct http_resp {
	long			 status;	/* 0 if no response */
	char			*body;		/* NUL-terminated, may be NULL */
	size_t			 body_len;
	struct http_header	*headers;
	size_t			 nheaders;
	uint64_t		 written;	/* bytes sent to resp_fd */
};

/*
 * One exchange.  Returns 0 when a response arrived (any status: see
 * resp->status), LS_ERR_TRANSIENT for a network failure (connect, reset,
 * timeout) with *errmsg naming curl's reason, LS_ERR_IO when resp_fd cannot
 * be written, LS_ERR_INVALID for a bad URL or TLS set-up.  Free resp with
 * http_resp_free even on failure.
 */
int http_do(const struct http_req *, struct http_resp *, char **errmsg);
void http_resp_free(struct http_resp *);

/* The value of a response header (name in any case), or NULL. */
const char *http_header(const struct http_resp *, const char *name);

/* Worth another try: 5xx but 501, 408, 429 (a network failure always is). */
bool http_retryable(long status);

/*
 * Sleep before attempt n+1 (exponential back-off with jitter) unless that
 * would pass deadline_us (ls_now_us() clock): then return LS_ERR_TRANSIENT.
 */
int http_backoff(int attempt, int64_t deadline_us);

/* Percent-encode s (RFC 3986 unreserved kept; '/' kept when keep_slash). */
char *http_uri_encode(const char *s, bool keep_slash);

/* Global libcurl init; call once, single-threaded, before any thread. */
void http_global_init(void);

#endif
