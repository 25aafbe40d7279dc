/*
 * store_int.h: the side of the store layer its backends see (file.c,
 * s3/, azure/, gcs/) and nothing else: the operations table each backend
 * fills in, the struct every backend's store begins with, and the
 * constructors store_open() picks from by URL scheme.
 */
#ifndef LS_STORE_INT_H
#define LS_STORE_INT_H

#include <stdarg.h>

#include "store/store.h"

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

/*
 * A backend's table, from its functions named PREFIX_put, PREFIX_get, ...
 * (one of each op above): static const struct store_ops x = STORE_OPS(...).
 */
#define STORE_OPS(prefix, scheme_name) {				\
	.scheme = scheme_name,						\
	.put = prefix##_put,						\
	.put_if_absent = prefix##_put_if_absent,			\
	.get = prefix##_get,						\
	.get_range = prefix##_get_range,				\
	.head = prefix##_head,						\
	.list_after = prefix##_list_after,				\
	.del = prefix##_del,						\
	.free = prefix##_free,						\
}

/* Every backend's struct begins with this. */
struct store {
	const struct store_ops	*ops;
	char			*url;	/* as given, for messages; no secrets */
	void			(*observe)(void *, const char *, int64_t, int);
	void			*observe_arg;
};

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
