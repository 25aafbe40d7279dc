/*
 * store.h: object stores (local directory, S3, Azure, GCS), for their users.
 * Backends implement store_int.h.
 *
 * A store is opened from a URL.
 * Keys are '/'-separated relative names ("logship.json",
 * "00000001a2b3c4d5/seg/0000000000000001").  Objects are written once.
 * Every call returns 0 or a negative LS_ERR_* code and, on failure, sets
 * *errmsg (caller frees) to one line naming the store URL and the object.
 */
#ifndef LS_STORE_H
#define LS_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* One page of a listing: keys in ascending byte order, with sizes. */
struct store_entry {
	char		*key;
	uint64_t	 size;
};

struct store_list {
	struct store_entry	*entries;
	size_t			 n;
	int			 truncated;	/* more keys follow the last one */
};

/*
 * Settings of the cloud backends; every field may be NULL or 0 for its
 * default.  The strings are the programs' options and config keys, named
 * in one table (store_opts.h).  Credentials never come from here but from
 * the environment or the files named here.
 */
struct store_opts {
	const char	*s3_endpoint;	/* default https://s3.<region>.amazonaws.com */
	const char	*s3_region;	/* default $AWS_REGION, else us-east-1 */
	const char	*s3_uri_style;	/* "path" or "host" (default host) */
	const char	*s3_ca_file;	/* CA bundle instead of the system's */
	const char	*s3_credentials_file; /* instead of AWS_* variables */
	const char	*azure_endpoint; /* default https://<account>.blob.core.windows.net */
	const char	*azure_ca_file;	/* CA bundle instead of the system's */
	const char	*gcs_endpoint;	/* default https://storage.googleapis.com */
	const char	*gcs_ca_file;	/* CA bundle instead of the system's */
	uint64_t	 multipart_threshold; /* default 64 MiB */
	uint64_t	 part_size;	/* default 16 MiB */
	int64_t		 deadline_s;	/* retries of one call give up after; 300 */
};

/*
 * Open the store named by url: a plain path or file:///abs/path, or
 * s3://bucket/prefix, azure://container/prefix, gcs://bucket/prefix.
 * Unknown schemes give LS_ERR_INVALID with a message naming the accepted
 * ones.  opts may be NULL.  Free the result with store_free().
 */
/*
 * Process-wide set-up of the network backends (libcurl): call once, from
 * main, before any thread starts.
 */
void store_global_init(void);

int store_open(const char *url, struct store **out, char **errmsg);
int store_open_opts(const char *url, const struct store_opts *opts,
    struct store **out, char **errmsg);
void store_free(struct store *);
const char *store_url(const struct store *);

/*
 * Watch a store's writes (for metrics): after each store_put and
 * store_put_if_absent, fn(arg, key, microseconds taken, result).  fn runs
 * on the caller's thread (base copy workers too) and must be thread-safe.
 * NULL removes it.
 */
void store_set_observer(struct store *, void (*fn)(void *arg, const char *key,
    int64_t us, int result), void *arg);
/* HTTP tries repeated after a transient failure, by every store (process). */
uint64_t store_retries(void);

/* Calls of each operation, by every store of the process, and HTTP requests. */
struct store_requests {
	uint64_t	put, put_if_absent, get, head, list, del;
	uint64_t	http;		/* every HTTP request sent, retries too */
};
void store_requests(struct store_requests *out);
/* "put_if_absent=3 put=1 get=2 head=0 list=4 delete=0 http=12" */
void store_requests_format(const struct store_requests *, char *buf,
    size_t len);

int store_put(struct store *, const char *key, int fd, char **errmsg);
int store_put_if_absent(struct store *, const char *key, int fd, char **errmsg);
int store_get(struct store *, const char *key, int fd, char **errmsg);
int store_get_range(struct store *, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg);
int store_head(struct store *, const char *key, uint64_t *size, char **errmsg);
int store_list_after(struct store *, const char *prefix, const char *start_after,
    size_t max, struct store_list *out, char **errmsg);
int store_delete(struct store *, const char *key, char **errmsg);
void store_list_clear(struct store_list *);

/* Conveniences over the table for small objects held in memory. */
int store_put_buf(struct store *, const char *key, const void *buf, size_t len,
    int if_absent, char **errmsg);
/* Read a whole object of at most max bytes; *bufp is malloc'd, NUL-terminated. */
int store_get_buf(struct store *, const char *key, size_t max, char **bufp,
    size_t *lenp, char **errmsg);

/*
 * List every key under prefix, calling fn for each in order, paging
 * through list_after.  fn returns 0 to go on, nonzero to stop (returned).
 */
int store_list_all(struct store *, const char *prefix,
    int (*fn)(void *arg, const struct store_entry *), void *arg, char **errmsg);

#endif
