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
 * The retried exchange every cloud backend uses.  What differs per service
 * is its struct http_policy, written once in each backend:
 *  - also_retry: statuses worth another try besides http_retryable's
 *    (0-terminated; NULL for none);
 *  - again_now: after an answer, true to try once more at once without
 *    counting a failure (GCS: a new token after a 401); NULL: never;
 *  - renew_on_progress: a try that wrote part of a download to resp_fd
 *    renews the deadline and the back-off and is tried again (the attempt
 *    resumes from resp->written); false: the exchange stops there and the
 *    caller resumes with a new request.
 */
struct http_policy {
	const long	*also_retry;
	bool		(*again_now)(void *arg, const struct http_resp *);
	bool		 renew_on_progress;
};

/* The state of one retried call: its clock and its tries. */
struct http_retry {
	int64_t		 start_us;
	int64_t		 deadline_us;
	int64_t		 lease_us;	/* deadline after start or progress */
	int		 tries;		/* made so far */
	int		 failures;	/* since the last progress */
};

/* Start a call: deadline_us, or now + lease_us when deadline_us is 0. */
void http_retry_start(struct http_retry *, int64_t lease_us,
    int64_t deadline_us);

/* Is status worth another try under policy p? */
bool http_policy_retryable(const struct http_policy *p, long status);

/*
 * After a try that gave r (http_do's result) and resp: true to try again,
 * having slept the back-off; false when the answer is final, the failure
 * is not transient, or the next try would pass the deadline.
 */
bool http_retry_again(const struct http_policy *p, void *arg,
    struct http_retry *rt, int r, const struct http_resp *resp);

/*
 * Run attempt (which builds, signs and sends one try with http_do) until
 * http_retry_again says stop.  Returns attempt's last result: 0 with the
 * last answer in resp (possibly still a retryable status when time ran
 * out), or its error with *why (caller frees) saying why.  resp is freed
 * before each try; free it with http_resp_free.
 */
int http_exchange(const struct http_policy *p, void *arg,
    int (*attempt)(void *arg, struct http_resp *, char **why),
    struct http_retry *rt, struct http_resp *resp, char **why);

/*
 * The LS_ERR_* code of a final answer: 404 LS_ERR_NOTFOUND, 401 and 403
 * LS_ERR_AUTH, 412 LS_ERR_EXISTS, retryable (under p, may be NULL)
 * LS_ERR_TRANSIENT, other 4xx LS_ERR_INVALID, the rest LS_ERR_IO.  A
 * backend maps its service codes (NoSuchBucket, BlobAlreadyExists...)
 * before asking here.
 */
int http_status_code(const struct http_policy *p, long status);

/*
 * "HTTP <status>[ <code>][: <message>]" into buf for an error detail;
 * code and message may be NULL.  Returns buf.
 */
char *http_status_text(char *buf, size_t len, long status, const char *code,
    const char *message);

/*
 * Sleep before attempt n+1 (exponential back-off with jitter) unless that
 * would pass deadline_us (ls_now_us() clock): then return LS_ERR_TRANSIENT.
 */
int http_backoff(int attempt, int64_t deadline_us);

/* Percent-encode s (RFC 3986 unreserved kept; '/' kept when keep_slash). */
char *http_uri_encode(const char *s, bool keep_slash);

/*
 * Make a service's text one short line, in place: the first line only,
 * other control bytes made spaces, at most HTTP_MSG_MAX bytes ("..." marks
 * a cut).  Returns s (NULL stays NULL).
 */
#define HTTP_MSG_MAX	300
char *http_one_line(char *s);

/* Tries http_retry_again allowed, process-wide (metrics). */
uint64_t http_retries(void);
/* HTTP requests sent (every try), by every store (process). */
uint64_t http_requests(void);

/* Global libcurl init; call once, single-threaded, before any thread. */
void http_global_init(void);

#endif
