/*
 * store.c: opening a store by URL and the public store_* calls.
 *
 * store_open() picks a backend by the URL's scheme; every other function
 * here dispatches through the backend's struct store_ops and makes sure a
 * failure's message names the store URL and the object it was about.
 * The conveniences at the bottom (store_put_buf, store_get_buf,
 * store_list_all) are written only in terms of the ops table, so every
 * backend gets them for free.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "store/http.h"
#include "store/store_int.h"

#define STORE_LIST_PAGE	1000

/*
 * Length of the scheme of url ("s3" in "s3://b/p"), or 0 if url does not
 * begin with "scheme://" (RFC 3986: ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")).
 */
static size_t
url_scheme_len(const char *url)
{
	size_t i;

	if (!isalpha((unsigned char)url[0]))
		return 0;
	for (i = 1; url[i] != '\0'; i++) {
		if (!isalnum((unsigned char)url[i]) && url[i] != '+' &&
		    url[i] != '-' && url[i] != '.')
			break;
	}
	return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

/* Make a plain path absolute: realpath if it exists, else cwd + "/" + path. */
static int
absolute_path(const char *url, const char *path, char **out, char **errmsg)
{
	char *cwd = NULL, *p = NULL;
	int r = LS_ERR_INTERNAL;

	if (path[0] == '/') {
		if ((p = strdup(path)) == NULL)
			goto nomem;
	} else if ((p = realpath(path, NULL)) == NULL) {
		if ((cwd = getcwd(NULL, 0)) == NULL) {
			r = ls_errf(errmsg, LS_ERR_IO, "store \"%s\": "
			    "current directory: %s", url, strerror(errno));
			goto out;
		}
		if (asprintf(&p, "%s/%s", cwd, path) < 0) {
			p = NULL;
			goto nomem;
		}
	}
	*out = p;
	p = NULL;
	r = 0;
	goto out;
 nomem:
	r = ls_errf(errmsg, LS_ERR_NOMEM, "store \"%s\": out of memory", url);
 out:
	free(cwd);
	free(p);
	return r;
}

/* Cloud backends by scheme; each takes bucket (container) and prefix. */
typedef int (*cloud_open_fn)(const char *url, const char *bucket,
    const char *prefix, const struct store_opts *opts, struct store **out,
    char **errmsg);

static const struct {
	const char	*scheme;
	cloud_open_fn	 open;
} clouds[] = {
	{ "azure", store_azure_open },
	{ "gcs", store_gcs_open },
	{ "s3", store_s3_open },
	{ NULL, NULL }
};

/* "scheme://bucket/some/prefix/" -> bucket, "some/prefix". */
static int
open_cloud(const char *url, size_t slen, const struct store_opts *opts,
    struct store **out, char **errmsg)
{
	const char *b = url + slen + 3, *slash;
	char *bucket, *prefix;
	size_t i, plen;
	int r;

	for (i = 0; clouds[i].scheme != NULL; i++)
		if (strlen(clouds[i].scheme) == slen &&
		    strncmp(url, clouds[i].scheme, slen) == 0)
			break;
	if (clouds[i].scheme == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "store \"%s\": unknown URL "
		    "scheme \"%.*s\"; use a directory path, file:///abs/path, "
		    "s3://, azure:// or gcs://", url, (int)slen, url);
	slash = strchr(b, '/');
	if ((bucket = strndup(b, slash ? (size_t)(slash - b) : strlen(b))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (*bucket == '\0') {
		free(bucket);
		return ls_errf(errmsg, LS_ERR_INVALID, "store \"%s\": no bucket "
		    "or container name (%.*s://NAME/prefix)", url, (int)slen, url);
	}
	prefix = strdup(slash ? slash + 1 : "");
	for (plen = prefix ? strlen(prefix) : 0; plen > 0 && prefix[plen - 1] == '/';)
		prefix[--plen] = '\0';
	r = prefix == NULL ? ls_errf(errmsg, LS_ERR_NOMEM, "out of memory") :
	    clouds[i].open(url, bucket, prefix, opts, out, errmsg);
	free(bucket);
	free(prefix);
	return r;
}

void
store_global_init(void)
{
	http_global_init();
}

int
store_verrf(const struct store *s, char **errmsg, int code, const char *op,
    const char *key, const char *fmt, va_list ap)
{
	char *detail = NULL;

	if (vasprintf(&detail, fmt, ap) == -1)
		detail = NULL;
	ls_errf(errmsg, code, "store %s: %s %s: %s", s->url, op,
	    key != NULL && *key != '\0' ? key : "\"\"",
	    detail != NULL ? detail : ls_strerror(code));
	free(detail);
	return code;
}

int
store_open(const char *url, struct store **out, char **errmsg)
{
	return store_open_opts(url, NULL, out, errmsg);
}

int
store_open_opts(const char *url, const struct store_opts *opts,
    struct store **out, char **errmsg)
{
	char *path = NULL;
	size_t n;
	int r = LS_ERR_INTERNAL;

	*out = NULL;
	if (url == NULL || *url == '\0')
		return ls_errf(errmsg, LS_ERR_INVALID, "store URL is empty; "
		    "use a directory path or file:///abs/path");
	if (strncmp(url, "file://", 7) == 0) {
		if (url[7] != '/')
			return ls_errf(errmsg, LS_ERR_INVALID, "store \"%s\": "
			    "a file URL needs an absolute path "
			    "(file:///abs/path)", url);
		return store_file_open(url, url + 7, out, errmsg);
	}
	if ((n = url_scheme_len(url)) != 0)
		return open_cloud(url, n, opts, out, errmsg);
	if ((r = absolute_path(url, url, &path, errmsg)) != 0)
		goto out;
	r = store_file_open(url, path, out, errmsg);
 out:
	free(path);
	return r;
}

void
store_free(struct store *s)
{
	if (s != NULL)
		s->ops->free(s);
}

const char *
store_url(const struct store *s)
{
	return s->url;
}

/*
 * Hand a backend's result to the caller.  On failure, make sure the
 * message exists and starts with "store <url>: " (adding "<op> <what>"
 * if the backend did not), then move it into *errmsg.
 */
static int
finish(struct store *s, int r, const char *op, const char *what, char *msg,
    char **errmsg)
{
	size_t ulen = strlen(s->url);

	if (r >= 0) {
		free(msg);
		return r;
	}
	if (msg == NULL)
		ls_errf(&msg, r, "store %s: %s %s: %s", s->url, op, what,
		    ls_strerror(r));
	else if (strncmp(msg, "store ", 6) != 0 ||
	    strncmp(msg + 6, s->url, ulen) != 0)
		ls_errprefix(&msg, r, "store %s: %s %s", s->url, op, what);
	if (errmsg != NULL) {
		free(*errmsg);
		*errmsg = msg;
	} else
		free(msg);
	return r;
}

void
store_set_observer(struct store *s, void (*fn)(void *, const char *, int64_t,
    int), void *arg)
{
	s->observe = fn;
	s->observe_arg = arg;
}

uint64_t
store_retries(void)
{
	return http_retries();
}

static struct store_requests counts;	/* atomic builtins: any thread */

static void
count(uint64_t *n)
{
	__atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

void
store_requests(struct store_requests *out)
{
	out->put = __atomic_load_n(&counts.put, __ATOMIC_RELAXED);
	out->put_if_absent = __atomic_load_n(&counts.put_if_absent,
	    __ATOMIC_RELAXED);
	out->get = __atomic_load_n(&counts.get, __ATOMIC_RELAXED);
	out->head = __atomic_load_n(&counts.head, __ATOMIC_RELAXED);
	out->list = __atomic_load_n(&counts.list, __ATOMIC_RELAXED);
	out->del = __atomic_load_n(&counts.del, __ATOMIC_RELAXED);
	out->http = http_requests();
}

void
store_requests_format(const struct store_requests *q, char *buf, size_t len)
{
	snprintf(buf, len, "put_if_absent=%" PRIu64 " put=%" PRIu64 " get=%"
	    PRIu64 " head=%" PRIu64 " list=%" PRIu64 " delete=%" PRIu64
	    " http=%" PRIu64, q->put_if_absent, q->put, q->get, q->head,
	    q->list, q->del, q->http);
}

int
store_put(struct store *s, const char *key, int fd, char **errmsg)
{
	int64_t start = ls_now_us();
	char *msg = NULL;
	int r;

	count(&counts.put);
	r = s->ops->put(s, key, fd, &msg);
	if (s->observe != NULL)
		s->observe(s->observe_arg, key, ls_now_us() - start, r);
	return finish(s, r, "put", key, msg, errmsg);
}

int
store_put_if_absent(struct store *s, const char *key, int fd, char **errmsg)
{
	int64_t start = ls_now_us();
	char *msg = NULL;
	int r;

	count(&counts.put_if_absent);
	r = s->ops->put_if_absent(s, key, fd, &msg);
	if (s->observe != NULL)
		s->observe(s->observe_arg, key, ls_now_us() - start, r);
	return finish(s, r, "put_if_absent", key, msg, errmsg);
}

int
store_get(struct store *s, const char *key, int fd, char **errmsg)
{
	char *msg = NULL;
	int r;

	count(&counts.get);
	r = s->ops->get(s, key, fd, &msg);
	return finish(s, r, "get", key, msg, errmsg);
}

int
store_get_range(struct store *s, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg)
{
	char *msg = NULL;
	int r;

	*got = 0;
	count(&counts.get);
	r = s->ops->get_range(s, key, off, len, buf, got, &msg);
	return finish(s, r, "get", key, msg, errmsg);
}

int
store_head(struct store *s, const char *key, uint64_t *size, char **errmsg)
{
	char *msg = NULL;
	int r;

	count(&counts.head);
	r = s->ops->head(s, key, size, &msg);
	return finish(s, r, "head", key, msg, errmsg);
}

int
store_list_after(struct store *s, const char *prefix, const char *start_after,
    size_t max, struct store_list *out, char **errmsg)
{
	char *msg = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (prefix == NULL)
		prefix = "";
	if (start_after == NULL)
		start_after = "";
	count(&counts.list);
	r = s->ops->list_after(s, prefix, start_after, max, out, &msg);
	if (r < 0)
		store_list_clear(out);
	return finish(s, r, "list", *prefix != '\0' ? prefix : "(all)", msg,
	    errmsg);
}

int
store_delete(struct store *s, const char *key, char **errmsg)
{
	char *msg = NULL;
	int r;

	count(&counts.del);
	r = s->ops->del(s, key, &msg);
	return finish(s, r, "delete", key, msg, errmsg);
}

void
store_list_clear(struct store_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->entries[i].key);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}

int
store_put_buf(struct store *s, const char *key, const void *buf, size_t len,
    int if_absent, char **errmsg)
{
	const char *op = if_absent ? "put_if_absent" : "put";
	int fd, r = LS_ERR_INTERNAL;
	char *why = NULL;

	if ((fd = ls_temp_fd(NULL, &why)) < 0) {
		r = ls_errf(errmsg, fd, "store %s: %s %s: %s", s->url, op,
		    key, why);
		free(why);
		return r;
	}
	if (ls_write_all(fd, buf, len) != 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "store %s: %s %s: "
		    "temporary file: %s", s->url, op, key, strerror(errno));
		goto out;
	}
	if (if_absent)
		r = store_put_if_absent(s, key, fd, errmsg);
	else
		r = store_put(s, key, fd, errmsg);
 out:
	close(fd);
	return r;
}

int
store_get_buf(struct store *s, const char *key, size_t max, char **bufp,
    size_t *lenp, char **errmsg)
{
	char *buf = NULL;
	uint64_t size;
	size_t got, len = 0;
	int r;

	*bufp = NULL;
	*lenp = 0;
	if ((r = store_head(s, key, &size, errmsg)) != 0)
		goto out;
	if (size > max || size >= SIZE_MAX) {
		r = ls_errf(errmsg, LS_ERR_TOOBIG, "store %s: get %s: object "
		    "is %llu bytes, more than the %zu allowed", s->url, key,
		    (unsigned long long)size, max);
		goto out;
	}
	if ((buf = malloc((size_t)size + 1)) == NULL) {
		r = ls_errf(errmsg, LS_ERR_NOMEM, "store %s: get %s: out of "
		    "memory for %llu bytes", s->url, key,
		    (unsigned long long)size);
		goto out;
	}
	while (len < size) {
		r = store_get_range(s, key, len, (size_t)size - len,
		    buf + len, &got, errmsg);
		if (r != 0)
			goto out;
		if (got == 0) {
			r = ls_errf(errmsg, LS_ERR_IO, "store %s: get %s: "
			    "object ended at %zu of its %llu bytes "
			    "(changed while reading?)", s->url, key, len,
			    (unsigned long long)size);
			goto out;
		}
		len += got;
	}
	buf[len] = '\0';
	*bufp = buf;
	buf = NULL;
	*lenp = len;
	r = 0;
 out:
	free(buf);
	return r;
}

int
store_list_all(struct store *s, const char *prefix,
    int (*fn)(void *arg, const struct store_entry *), void *arg, char **errmsg)
{
	struct store_list page = { NULL, 0, 0 };
	char *after = NULL;
	size_t i;
	int r;

	for (;;) {
		r = store_list_after(s, prefix, after, STORE_LIST_PAGE, &page,
		    errmsg);
		if (r != 0)
			goto out;
		for (i = 0; i < page.n; i++) {
			if ((r = fn(arg, &page.entries[i])) != 0)
				goto out;
		}
		if (!page.truncated)
			break;
		if (page.n == 0 || (after != NULL &&
		    strcmp(page.entries[page.n - 1].key, after) <= 0)) {
			r = ls_errf(errmsg, LS_ERR_INTERNAL, "store %s: list "
			    "%s: listing did not advance", s->url,
			    prefix != NULL ? prefix : "");
			goto out;
		}
		free(after);
		after = page.entries[page.n - 1].key;
		page.entries[page.n - 1].key = NULL;
		store_list_clear(&page);
	}
	r = 0;
 out:
	store_list_clear(&page);
	free(after);
	return r;
}
