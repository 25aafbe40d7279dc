/*
 * store.h: object stores (local directory, later S3, Azure, GCS).
 *
 * A store is opened from a URL; each backend fills in a struct store_ops.
 * Keys are '/'-separated relative names ("logship.json",
 * "00000001a2b3c4d5/seg/0000000000000001").  Objects are written once.
 * Every call returns 0 or a negative LS_ERR_* code and, on failure, sets
 * *errmsg (caller frees) to one line naming the store URL and the object.
 */
#ifndef LS_STORE_H
#define LS_STORE_H

#include <stdarg.h>
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

struct store_ops {
	const char *scheme;
	/*
	 * Write the whole content of fd (read with pread from offset 0 to EOF)
	 * as key.  put_if_absent returns LS_ERR_EXISTS, and changes nothing,
	 * when key already exists; of two concurrent creators exactly one wins.
	 */
	int (*put)(struct store *, const char *key, int fd, char **errmsg);
	int (*put_if_absent)(struct store *, const char *key, int fd, char **errmsg);
	/* Write the whole object to fd (appending at its current offset). */
	int (*get)(struct store *, const char *key, int fd, char **errmsg);
	/* Read up to len bytes at off into buf; *got is what was read. */
	int (*get_range)(struct store *, const char *key, uint64_t off,
	    size_t len, void *buf, size_t *got, char **errmsg);
	/* LS_ERR_NOTFOUND if absent; otherwise *size is its length. */
	int (*head)(struct store *, const char *key, uint64_t *size, char **errmsg);
	/*
	 * Keys beginning with prefix and sorting strictly after start_after
	 * (NULL or "" for the first), at most max of them, ascending.
	 */
	int (*list_after)(struct store *, const char *prefix,
	    const char *start_after, size_t max, struct store_list *out,
	    char **errmsg);
	/* Deleting an absent key is not an error. */
	int (*del)(struct store *, const char *key, char **errmsg);
	void (*free)(struct store *);
};

/* Every backend's struct begins with this. */
struct store {
	const struct store_ops	*ops;
	char			*url;	/* as given, for messages; no secrets */
};

/*
 * Settings of the cloud backends (command-line/config options); every field
 * may be NULL or 0 for its default.  Credentials never come from here but
 * from the environment or the files named here.
 */
struct store_opts {
	const char	*s3_endpoint;	/* default https://s3.<region>.amazonaws.com */
	const char	*s3_region;	/* default $AWS_REGION, else us-east-1 */
	const char	*s3_uri_style;	/* "path" or "host" (default host) */
	const char	*s3_ca_file;	/* CA bundle instead of the system's */
	const char	*s3_credentials_file; /* instead of AWS_* variables */
	const char	*azure_endpoint; /* default https://<account>.blob.core.windows.net */
	const char	*azure_ca_file;
	const char	*gcs_endpoint;	/* default https://storage.googleapis.com */
	const char	*gcs_ca_file;
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
int store_open(const char *url, struct store **out, char **errmsg);
int store_open_opts(const char *url, const struct store_opts *opts,
    struct store **out, char **errmsg);
void store_free(struct store *);
const char *store_url(const struct store *);

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

/*
 * For backends: set *errmsg to "store <url>: <op> <key>: <detail>" (the
 * detail formatted from fmt; the code's name if that fails); return code.
 */
int store_verrf(const struct store *, char **errmsg, int code, const char *op,
    const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* Backend constructors (store_open picks one by scheme). */
int store_file_open(const char *url, const char *path, struct store **out,
    char **errmsg);
/*
 * Cloud backends: url as given (for messages), bucket (container) and
 * prefix ("" or "a/b", no leading or trailing '/'); keys are stored as
 * prefix + "/" + key.  Must be safe to call from several threads at once.
 */
int store_s3_open(const char *url, const char *bucket, const char *prefix,
    const struct store_opts *opts, struct store **out, char **errmsg);
int store_azure_open(const char *url, const char *container,
    const char *prefix, const struct store_opts *opts, struct store **out,
    char **errmsg);
int store_gcs_open(const char *url, const char *bucket, const char *prefix,
    const struct store_opts *opts, struct store **out, char **errmsg);

#endif
