/*
 * test_store_file.c: the local-directory store (store.c + store_file.c).
 *
 * Everything happens in a fresh directory under $TMPDIR (or /tmp) that is
 * removed at the end.  The race and interrupted-write tests fork children
 * that use the parent's open store.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "store/store_int.h"
#include "tap.h"

#define RACE_ROUNDS	50
#define RACERS		3
#define RACE_SIZE	(64 * 1024)
#define PAGE_KEYS	2500
#define FLAT_KEYS	3000

static char *tmpdir;

/* "<tmpdir>/<rel>", malloc'd. */
static char *
tpath(const char *rel)
{
	char *p;

	if (asprintf(&p, "%s/%s", tmpdir, rel) == -1)
		abort();
	return p;
}

/* Open file://<tmpdir>/<rel>. */
static struct store *
open_in(const char *rel)
{
	struct store *s = NULL;
	char *url, *err = NULL;

	if (asprintf(&url, "file://%s/%s", tmpdir, rel) == -1)
		abort();
	if (store_open(url, &s, &err) != 0) {
		diag("store_open %s: %s", url, err);
		abort();
	}
	free(url);
	return s;
}

static int
put_str(struct store *s, const char *key, const char *str, int excl,
    char **err)
{
	return store_put_buf(s, key, str, strlen(str), excl, err);
}

/* Content of key (malloc'd), or NULL. */
static char *
get_str(struct store *s, const char *key)
{
	char *buf;
	size_t len;

	if (store_get_buf(s, key, 1 << 24, &buf, &len, NULL) != 0)
		return NULL;
	return buf;
}

/* Does msg contain every one of the NULL-terminated strings? */
static int __attribute__((sentinel))
has_all(const char *msg, ...)
{
	va_list ap;
	const char *want;
	int r = msg != NULL;

	va_start(ap, msg);
	while ((want = va_arg(ap, const char *)) != NULL)
		if (r && strstr(msg, want) == NULL)
			r = 0;
	va_end(ap);
	if (!r)
		diag("message: %s", msg != NULL ? msg : "(none)");
	return r;
}

/* Keys of one page joined with ',' (malloc'd); "!" appended if truncated. */
static char *
page_keys(struct store *s, const char *prefix, const char *after, size_t max)
{
	struct store_list l;
	char *err = NULL, *out;
	size_t i, len = 2;

	if (store_list_after(s, prefix, after, max, &l, &err) != 0) {
		diag("list: %s", err);
		free(err);
		return strdup("(error)");
	}
	for (i = 0; i < l.n; i++)
		len += strlen(l.entries[i].key) + 1;
	if ((out = calloc(1, len)) == NULL)
		abort();
	for (i = 0; i < l.n; i++) {
		if (i > 0)
			strcat(out, ",");
		strcat(out, l.entries[i].key);
	}
	if (l.truncated)
		strcat(out, "!");
	store_list_clear(&l);
	return out;
}

static int
check_page(struct store *s, const char *prefix, const char *after,
    size_t max, const char *want)
{
	char *got = page_keys(s, prefix, after, max);
	int r;

	r = ok(strcmp(got, want) == 0, "list prefix \"%s\" after \"%s\" "
	    "max %zu: %s", prefix, after, max, *want != '\0' ? want : "(none)");
	if (!r)
		diag("got %s", got);
	free(got);
	return r;
}

/* Number of ".tmp." files in <tmpdir>/<rel>; *maxsize the largest size. */
static int
count_tmp(const char *rel, off_t *maxsize)
{
	struct dirent *de;
	struct stat st;
	char *dir = tpath(rel);
	DIR *d;
	int n = 0;

	if (maxsize != NULL)
		*maxsize = -1;
	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp.", 5) != 0)
			continue;
		n++;
		if (maxsize != NULL &&
		    fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    st.st_size > *maxsize)
			*maxsize = st.st_size;
	}
	closedir(d);
	free(dir);
	return n;
}

static void
test_open(void)
{
	struct store *s = NULL;
	char *err = NULL, *cwd, *p, *url;
	struct stat st;
	int r;

	r = store_open("ftp://x", &s, &err);
	ok(r == LS_ERR_INVALID && s == NULL && has_all(err, "\"ftp\"",
	    "file:///", (char *)NULL), "ftp:// is an unknown scheme");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	r = store_open("s3://bucket/prefix", &s, &err);
	ok(r == LS_ERR_INVALID && s == NULL && has_all(err, "AWS_ACCESS_KEY_ID",
	    (char *)NULL), "s3:// without credentials names the variables");
	r = store_open("gopher://x/y", &s, &err);
	ok(r == LS_ERR_INVALID && has_all(err, "\"gopher\"", "s3://", "azure://",
	    "gcs://", (char *)NULL), "gopher:// is an unknown scheme naming the "
	    "known ones");
	r = store_open("", &s, &err);
	ok(r == LS_ERR_INVALID, "empty URL is rejected");
	r = store_open("file://relative/x", &s, &err);
	ok(r == LS_ERR_INVALID && has_all(err, "file:///", (char *)NULL),
	    "file:// without an absolute path is rejected");
	free(err);
	err = NULL;

	if (asprintf(&url, "file://%s/abs-store/", tmpdir) == -1)
		abort();
	r = store_open(url, &s, &err);
	ok(r == 0 && strcmp(store_url(s), url) == 0,
	    "file:///abs opens and keeps its URL");
	p = tpath("abs-store");
	ok(stat(p, &st) == -1 && errno == ENOENT,
	    "opening does not create the directory");
	ok(r == 0 && put_str(s, "k", "v", 0, NULL) == 0 && stat(p, &st) == 0,
	    "the first put creates it");
	store_free(s);
	free(url);
	free(p);

	if ((cwd = getcwd(NULL, 0)) == NULL || chdir(tmpdir) == -1)
		abort();
	r = store_open("rel-store", &s, &err);
	if (chdir(cwd) == -1)
		abort();
	p = tpath("rel-store/k");
	ok(r == 0 && put_str(s, "k", "v", 0, NULL) == 0 && stat(p, &st) == 0,
	    "a relative path opens, resolved against the cwd");
	store_free(s);
	free(p);
	free(cwd);

	r = store_open(tmpdir, &s, &err);
	ok(r == 0, "a plain absolute path opens");
	store_free(s);
	p = tpath("rel-store/k");
	r = store_open(p, &s, &err);
	ok(r == LS_ERR_INVALID && has_all(err, "not a directory", (char *)NULL),
	    "a regular file is not a store");
	free(p);
	free(err);
	store_free(NULL);
	ok(1, "store_free(NULL) is a no-op");
}

/* Read all of fd from offset 0 into a string (malloc'd). */
static char *
slurp(int fd)
{
	char *buf;
	off_t len = lseek(fd, 0, SEEK_END);

	if (len < 0 || (buf = calloc(1, (size_t)len + 1)) == NULL ||
	    pread(fd, buf, (size_t)len, 0) != len)
		abort();
	return buf;
}

static void
test_get(struct store *s)
{
	char buf[64], *str, *err = NULL;
	size_t got;
	int fd, r;

	if ((fd = memfd_create("test", 0)) == -1 || write(fd, "xx", 2) != 2)
		abort();
	r = store_get(s, "a/b/c", fd, &err);
	str = slurp(fd);
	ok(r == 0 && strcmp(str, "xxhello, world") == 0,
	    "get appends the object at the fd's offset");
	free(str);
	close(fd);

	r = store_get_range(s, "a/b/c", 7, 5, buf, &got, &err);
	ok(r == 0 && got == 5 && memcmp(buf, "world", 5) == 0,
	    "get_range in the middle");
	r = store_get_range(s, "a/b/c", 10, sizeof(buf), buf, &got, &err);
	ok(r == 0 && got == 2 && memcmp(buf, "ld", 2) == 0,
	    "get_range across the end is short");
	r = store_get_range(s, "a/b/c", 100, sizeof(buf), buf, &got, &err);
	ok(r == 0 && got == 0, "get_range past the end reads nothing");
	r = store_get_buf(s, "a/b/c", 5, &str, &got, &err);
	ok(r == LS_ERR_TOOBIG && str == NULL &&
	    has_all(err, "a/b/c", (char *)NULL),
	    "get_buf refuses an object larger than max");
	free(err);
}

/* put from a file whose offset is at its end: put reads from offset 0. */
static void
test_put_from_file(struct store *s)
{
	char *str = NULL;
	int fd;

	if ((fd = memfd_create("test", 0)) == -1 ||
	    write(fd, "from a file", 11) != 11)
		abort();
	ok(store_put(s, "f/file", fd, NULL) == 0 &&
	    (str = get_str(s, "f/file")) != NULL &&
	    strcmp(str, "from a file") == 0 &&
	    lseek(fd, 0, SEEK_CUR) == 11,
	    "put copies from offset 0 and leaves the fd's offset alone");
	free(str);
	close(fd);
}

/* put from a pipe: pread fails with ESPIPE, so put falls back to read(). */
static void
test_put_from_pipe(struct store *s)
{
	char *str = NULL;
	int p[2];

	if (pipe(p) == -1 || write(p[1], "through a pipe", 14) != 14)
		abort();
	close(p[1]);
	ok(store_put(s, "f/pipe", p[0], NULL) == 0 &&
	    (str = get_str(s, "f/pipe")) != NULL &&
	    strcmp(str, "through a pipe") == 0, "put streams from a pipe");
	free(str);
	close(p[0]);
}

static void
test_big(struct store *s)
{
	size_t i, len = 3 * 1024 * 1024 + 17, got;
	unsigned char *big, *back = NULL;
	uint64_t size;

	if ((big = malloc(len)) == NULL)
		abort();
	for (i = 0; i < len; i++)
		big[i] = (unsigned char)(i * 2654435761u >> 13);
	ok(store_put_buf(s, "big/obj", big, len, 0, NULL) == 0 &&
	    store_head(s, "big/obj", &size, NULL) == 0 && size == len &&
	    store_get_buf(s, "big/obj", len, (char **)&back, &got, NULL) == 0 &&
	    got == len && memcmp(big, back, len) == 0 && back[len] == '\0',
	    "a 3 MiB object round-trips");
	free(big);
	free(back);
}

static void
test_roundtrip(struct store *s)
{
	char *str = NULL, *err = NULL;
	uint64_t size = 0;
	size_t len;
	int r;

	r = put_str(s, "a/b/c", "hello, world", 0, &err);
	ok(r == 0, "put a/b/c");
	r = store_head(s, "a/b/c", &size, &err);
	ok(r == 0 && size == 12, "head gives the size");
	test_get(s);
	ok(count_tmp("rt/a/b", NULL) == 0, "put leaves no temp file");
	r = put_str(s, "a/b/c", "bye", 0, &err);
	ok(r == 0 && (str = get_str(s, "a/b/c")) != NULL &&
	    strcmp(str, "bye") == 0, "put replaces an object");
	free(str);
	str = NULL;
	test_put_from_file(s);
	test_put_from_pipe(s);
	test_big(s);
	r = put_str(s, "empty", "", 0, &err);
	ok(r == 0 && store_head(s, "empty", &size, NULL) == 0 && size == 0 &&
	    store_get_buf(s, "empty", 0, &str, &len, NULL) == 0 && len == 0 &&
	    *str == '\0', "an empty object");
	free(str);

	r = store_delete(s, "a/b/c", &err);
	ok(r == 0, "delete");
	r = store_head(s, "a/b/c", &size, &err);
	ok(r == LS_ERR_NOTFOUND && has_all(err, store_url(s), "head a/b/c",
	    "No such file", (char *)NULL),
	    "head after delete: not found, named");
	r = store_get(s, "a/b/c", 1, &err);
	ok(r == LS_ERR_NOTFOUND && has_all(err, "get a/b/c", (char *)NULL),
	    "get after delete: not found");
	ok(store_delete(s, "a/b/c", &err) == 0, "deleting an absent key is ok");
	ok(store_head(s, "a", &size, NULL) == LS_ERR_NOTFOUND,
	    "a directory is not an object");
	r = put_str(s, "empty/under", "x", 0, &err);
	ok(r == LS_ERR_IO && has_all(err, store_url(s), "put empty/under",
	    "Not a directory", (char *)NULL),
	    "put below an object fails, named");
	ok(store_head(s, "empty/under", &size, NULL) == LS_ERR_NOTFOUND,
	    "head below an object: not found");
	free(err);
}

static void
test_invalid_keys(struct store *s)
{
	static const char *bad[] = {
		"", "/abs", "a//b", "a/", "..", "../x", "a/../b", ".", "./a",
		"a/.", "a\\b", ".tmp.x", "a/.tmp.y/b", "a\nb",
	};
	char *err = NULL, *str, longname[300];
	uint64_t size;
	size_t i, got;
	int fails;

	memset(longname, 'n', 256);
	longname[256] = '\0';
	ok(put_str(s, longname, "x", 0, NULL) == LS_ERR_INVALID,
	    "a 256-byte name is rejected");
	longname[255] = '\0';
	ok(put_str(s, longname, "x", 0, NULL) == 0 &&
	    store_delete(s, longname, NULL) == 0, "a 255-byte name is fine");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fails = put_str(s, bad[i], "x", 0, &err) == LS_ERR_INVALID &&
		    has_all(err, store_url(s), "invalid key", (char *)NULL);
		fails = fails &&
		    put_str(s, bad[i], "x", 1, NULL) == LS_ERR_INVALID &&
		    store_head(s, bad[i], &size, NULL) == LS_ERR_INVALID &&
		    store_get(s, bad[i], 1, NULL) == LS_ERR_INVALID &&
		    store_get_buf(s, bad[i], 9, &str, &got, NULL) ==
		    LS_ERR_INVALID &&
		    store_delete(s, bad[i], NULL) == LS_ERR_INVALID;
		ok(fails, "invalid key \"%s\" is rejected by every call",
		    strchr(bad[i], '\n') != NULL ? "a\\nb" : bad[i]);
	}
	free(err);
}

static void
test_put_if_absent(struct store *s)
{
	char *err = NULL, *str = NULL;
	int r;

	r = put_str(s, "once/k", "first", 1, &err);
	ok(r == 0, "put_if_absent creates");
	r = put_str(s, "once/k", "second", 1, &err);
	ok(r == LS_ERR_EXISTS && has_all(err, store_url(s), "once/k",
	    "already exists", (char *)NULL),
	    "put_if_absent on an existing key");
	ok((str = get_str(s, "once/k")) != NULL && strcmp(str, "first") == 0,
	    "and the content is unchanged");
	free(str);
	ok(count_tmp("rt/once", NULL) == 0, "the loser's temp file is gone");
	free(err);
}

/* Make the files and directories of the ordering tests by hand. */
static void
make_list_fixture(struct store *s)
{
	static const char *keys[] = {
		"b", "a0", "a/y/z", "a/x", "a-b", "a/y-", "c/d/e/f",
	};
	static const char *mkdirs[] = { "ls/emptydir", "ls/.tmp.d" };
	static const char *files[] = {
		"ls/.tmp.b.1.2", "ls/a/.tmp.x.3.4", "ls/.tmp.d/inner",
	};
	char *p, *q;
	size_t i;
	FILE *f;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (put_str(s, keys[i], keys[i], 0, NULL) != 0)
			abort();
	for (i = 0; i < sizeof(mkdirs) / sizeof(mkdirs[0]); i++) {
		p = tpath(mkdirs[i]);
		if (mkdir(p, 0700) == -1)
			abort();
		free(p);
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = tpath(files[i]);
		if ((f = fopen(p, "w")) == NULL || fclose(f) == EOF)
			abort();
		free(p);
	}
	p = tpath("ls/b");
	q = tpath("ls/link");
	if (symlink(p, q) == -1)
		abort();
	free(p);
	free(q);
}

static void
test_list_order(void)
{
	struct store *s = open_in("ls");
	struct store_list l;

	make_list_fixture(s);
	check_page(s, "", "", 100, "a-b,a/x,a/y-,a/y/z,a0,b,c/d/e/f");
	check_page(s, "a/", "", 100, "a/x,a/y-,a/y/z");
	check_page(s, "a", "", 100, "a-b,a/x,a/y-,a/y/z,a0");
	check_page(s, "", "a/x", 100, "a/y-,a/y/z,a0,b,c/d/e/f");
	check_page(s, "", "a/y", 100, "a/y-,a/y/z,a0,b,c/d/e/f");
	check_page(s, "", "a/y/z", 100, "a0,b,c/d/e/f");
	check_page(s, "a/y", "a/y-", 100, "a/y/z");
	check_page(s, "c/d/", "", 100, "c/d/e/f");
	check_page(s, "zz", "", 100, "");
	check_page(s, "", "c", 100, "c/d/e/f");
	check_page(s, "", "c/d/e/f", 100, "");
	check_page(s, "", "", 2, "a-b,a/x!");
	check_page(s, "", "a/x", 2, "a/y-,a/y/z!");
	check_page(s, "", "", 0, "!");
	check_page(s, "", "a/y/z", 3, "a0,b,c/d/e/f");
	ok(store_list_after(s, "c/", NULL, 10, &l, NULL) == 0 && l.n == 1 &&
	    l.entries[0].size == 7 && !l.truncated,
	    "entries carry sizes; NULL start_after means from the start");
	store_list_clear(&l);
	store_free(s);

	s = open_in("never-created");
	ok(store_list_after(s, "", "", 10, &l, NULL) == 0 && l.n == 0 &&
	    !l.truncated, "a store whose directory does not exist is empty");
	store_free(s);
}

struct collect {
	char	**keys;
	size_t	  n;
	size_t	  stop_at;
};

static int
collect(void *arg, const struct store_entry *e)
{
	struct collect *c = arg;

	c->keys[c->n++] = strdup(e->key);
	return c->n == c->stop_at ? 42 : 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Page through "p/" by 1000: each key once, in order, truncated right. */
static int
page_through(struct store *s, char **want, size_t nwant)
{
	struct store_list l;
	char *after = NULL;
	size_t i, seen = 0, pages = 0;
	int good = 1, more;

	do {
		if (store_list_after(s, "p/", after, 1000, &l, NULL) != 0)
			break;
		for (i = 0; i < l.n; i++, seen++)
			if (seen >= nwant || strcmp(l.entries[i].key,
			    want[seen]) != 0)
				good = 0;
		pages++;
		more = l.truncated;
		if (more != (seen < nwant))
			good = 0;
		free(after);
		after = l.n > 0 ? strdup(l.entries[l.n - 1].key) : NULL;
		store_list_clear(&l);
	} while (good && more);
	free(after);
	return good && seen == nwant && pages == 3;
}

static void
test_paging(void)
{
	struct store *s = open_in("pg");
	struct collect c = { NULL, 0, 0 };
	char *want[PAGE_KEYS];
	size_t i;
	int r;

	for (i = 0; i < PAGE_KEYS; i++) {
		if (asprintf(&want[i], "p/%02zu/%s/%05zu", i % 25,
		    i % 2 ? "odd" : "even", i) == -1 ||
		    put_str(s, want[i], "x", 0, NULL) != 0)
			abort();
	}
	if (put_str(s, "o", "x", 0, NULL) != 0 ||
	    put_str(s, "q/x", "x", 0, NULL) != 0)
		abort();
	qsort(want, PAGE_KEYS, sizeof(want[0]), cmp_str);
	ok(page_through(s, want, PAGE_KEYS),
	    "%d keys in nested directories paged by 1000: 3 pages, each key "
	    "once, in order", PAGE_KEYS);

	if ((c.keys = calloc(PAGE_KEYS, sizeof(char *))) == NULL)
		abort();
	r = store_list_all(s, "p/", collect, &c, NULL);
	for (i = 0; r == 0 && i < c.n; i++)
		r = strcmp(c.keys[i], want[i]) != 0;
	ok(r == 0 && c.n == PAGE_KEYS,
	    "store_list_all sees every key in order");
	for (i = 0; i < c.n; i++)
		free(c.keys[i]);
	c.n = 0;
	c.stop_at = 1500;
	r = store_list_all(s, "p/", collect, &c, NULL);
	ok(r == 42 && c.n == 1500, "store_list_all stops when fn says so");
	for (i = 0; i < c.n; i++)
		free(c.keys[i]);
	free(c.keys);
	for (i = 0; i < PAGE_KEYS; i++)
		free(want[i]);
	store_free(s);
}

/* Is page l exactly the keys seg/<from..to> less seg/<skip>, then extra? */
static int
is_seg_run(const struct store_list *l, int from, int to, int skip,
    const char *extra)
{
	char key[64];
	size_t k = 0;
	int i;

	for (i = from; i <= to; i++) {
		if (i == skip)
			continue;
		snprintf(key, sizeof(key), "seg/%016x", i);
		if (k >= l->n || strcmp(l->entries[k++].key, key) != 0)
			return 0;
	}
	if (extra != NULL &&
	    (k >= l->n || strcmp(l->entries[k++].key, extra) != 0))
		return 0;
	return k == l->n;
}

/* A flat directory of FLAT_KEYS files, made by hand. */
static void
make_flat(void)
{
	char *top = tpath("flat"), *dir = tpath("flat/seg"), *p;
	int fd, i;

	if (mkdir(top, 0700) == -1 || mkdir(dir, 0700) == -1)
		abort();
	for (i = 1; i <= FLAT_KEYS; i++) {
		if (asprintf(&p, "%s/%016x", dir, i) == -1 ||
		    (fd = open(p, O_WRONLY | O_CREAT, 0600)) == -1)
			abort();
		close(fd);
		free(p);
	}
	free(dir);
	free(top);
}

/*
 * Paging through one large directory (served from kept entries after the
 * first page) stays right when keys are deleted or put in between.
 */
static void
test_flat_paging(void)
{
	struct store *s = open_in("flat");
	struct store_list l;
	const char *last_key = "seg/0000000000001388";
	char last[64];

	make_flat();
	ok(store_list_after(s, "seg/", NULL, 1000, &l, NULL) == 0 &&
	    l.truncated && is_seg_run(&l, 1, 1000, 0, NULL),
	    "flat directory: first page");
	snprintf(last, sizeof(last), "%s", l.n ? l.entries[l.n - 1].key : "");
	store_list_clear(&l);
	ok(store_delete(s, "seg/00000000000005dc", NULL) == 0,
	    "delete a key beyond the page");
	ok(store_list_after(s, "seg/", last, 1000, &l, NULL) == 0 &&
	    l.truncated && is_seg_run(&l, 1001, 2001, 1500, NULL),
	    "second page: continues in order, without the deleted key");
	snprintf(last, sizeof(last), "%s", l.n ? l.entries[l.n - 1].key : "");
	store_list_clear(&l);
	ok(put_str(s, last_key, "new", 0, NULL) == 0, "put a key beyond it");
	ok(store_list_after(s, "seg/", last, 1000, &l, NULL) == 0 &&
	    !l.truncated && is_seg_run(&l, 2002, FLAT_KEYS, 0, last_key),
	    "third page: the rest and the new key, and no more");
	store_list_clear(&l);
	ok(store_list_after(s, "seg/", "seg/00000000000009c4", 10, &l,
	    NULL) == 0 && l.truncated && is_seg_run(&l, 2501, 2510, 0, NULL),
	    "a page from another cursor");
	store_list_clear(&l);
	store_free(s);
}

/* Child of a race: wait for the start signal, then try to create key. */
static void __attribute__((noreturn))
racer(struct store *s, int start, const char *key, int who)
{
	char buf[RACE_SIZE], c;
	int r;

	memset(buf, 'A' + who, sizeof(buf));
	if (read(start, &c, 1) == -1)
		_exit(3);
	close(start);
	r = store_put_buf(s, key, buf, sizeof(buf), 1, NULL);
	_exit(r == 0 ? 0 : r == LS_ERR_EXISTS ? 1 : 2);
}

/* One race on key; -1 on a bad outcome, else the winner's index. */
static int
race_once(struct store *s, const char *key)
{
	pid_t pids[RACERS];
	int i, st, p[2], wins = 0, losses = 0, winner = -1;

	if (pipe(p) == -1)
		abort();
	for (i = 0; i < RACERS; i++) {
		if ((pids[i] = fork()) == -1)
			abort();
		if (pids[i] == 0) {
			close(p[1]);
			racer(s, p[0], key, i);
		}
	}
	close(p[0]);
	close(p[1]);		/* EOF on the pipe: all start at once */
	for (i = 0; i < RACERS; i++) {
		if (waitpid(pids[i], &st, 0) == -1 || !WIFEXITED(st))
			continue;
		if (WEXITSTATUS(st) == 0) {
			wins++;
			winner = i;
		} else if (WEXITSTATUS(st) == 1)
			losses++;
	}
	return wins == 1 && losses == RACERS - 1 ? winner : -1;
}

static void
test_race(struct store *s)
{
	char key[64], *buf = NULL, want[RACE_SIZE];
	int round, winner, bad = 0, badcontent = 0, tmps = 0;
	size_t len;

	for (round = 0; round < RACE_ROUNDS; round++) {
		snprintf(key, sizeof(key), "race/%04d", round);
		if ((winner = race_once(s, key)) == -1) {
			bad++;
			continue;
		}
		memset(want, 'A' + winner, sizeof(want));
		if (store_get_buf(s, key, RACE_SIZE, &buf, &len, NULL) != 0 ||
		    len != RACE_SIZE || memcmp(buf, want, len) != 0)
			badcontent++;
		free(buf);
		buf = NULL;
	}
	tmps = count_tmp("rt/race", NULL);
	ok(bad == 0, "%d races of %d put_if_absent: exactly one wins each",
	    RACE_ROUNDS, RACERS);
	ok(badcontent == 0, "the object holds the winner's content");
	ok(tmps == 0, "no temp files are left behind");
}

/* Wait (up to 10 s) for a temp file in <tmpdir>/<rel> to reach size. */
static int
wait_tmp_size(const char *rel, off_t size)
{
	struct timespec ms = { 0, 1000 * 1000 };
	off_t got;
	int i;

	for (i = 0; i < 10000; i++) {
		if (count_tmp(rel, &got) > 0 && got >= size)
			return 1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

static void
test_interrupted(struct store *s)
{
	static char half[48 * 1024];
	struct store_list l;
	uint64_t size;
	int p[2], st;
	char *str = NULL;
	pid_t pid;

	if (pipe(p) == -1 || (pid = fork()) == -1)
		abort();
	if (pid == 0) {
		close(p[1]);
		st = store_put(s, "intr/obj", p[0], NULL);
		close(p[0]);
		_exit(st == 0 ? 0 : 1);
	}
	close(p[0]);
	memset(half, 'h', sizeof(half));
	if (write(p[1], half, sizeof(half)) != (ssize_t)sizeof(half))
		abort();
	ok(wait_tmp_size("rt/intr", sizeof(half)),
	    "a put streaming from a pipe is half written");
	kill(pid, SIGKILL);
	ok(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
	    WTERMSIG(st) == SIGKILL, "the writer was killed mid-write");
	close(p[1]);
	ok(store_head(s, "intr/obj", &size, NULL) == LS_ERR_NOTFOUND,
	    "the key does not exist");
	ok(count_tmp("rt/intr", NULL) == 1, "only a .tmp. file is left");
	ok(store_list_after(s, "intr", NULL, 10, &l, NULL) == 0 && l.n == 0 &&
	    !l.truncated, "and the listing does not show it");
	store_list_clear(&l);
	ok(put_str(s, "intr/obj", "again", 1, NULL) == 0 &&
	    (str = get_str(s, "intr/obj")) != NULL &&
	    strcmp(str, "again") == 0, "a new put of the key succeeds");
	free(str);
	ok(store_list_after(s, "intr", NULL, 10, &l, NULL) == 0 && l.n == 1 &&
	    strcmp(l.entries[0].key, "intr/obj") == 0, "and is listed");
	store_list_clear(&l);
}

/*
 * A backend that misbehaves, to check what store.c adds: messages that
 * always name the store and key, and guards against short reads and
 * listings that do not advance.
 */
static int
fake_put(struct store *s, const char *key, int fd, char **errmsg)
{
	return LS_ERR_IO;		/* and no message */
}

static int
fake_get(struct store *s, const char *key, int fd, char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_TRANSIENT, "boom");
}

static int
fake_get_range(struct store *s, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg)
{
	*got = 0;
	return 0;
}

static int
fake_head(struct store *s, const char *key, uint64_t *size, char **errmsg)
{
	*size = 10;
	return 0;
}

static int
fake_list_after(struct store *s, const char *prefix, const char *after,
    size_t max, struct store_list *out, char **errmsg)
{
	out->truncated = 1;
	return 0;
}

static int
fake_del(struct store *s, const char *key, char **errmsg)
{
	return 0;
}

static void
fake_free(struct store *s)
{
	free(s);
}

static int
never(void *arg, const struct store_entry *e)
{
	return 0;
}

static void
test_wrappers(void)
{
	static const struct store_ops fake_ops = {
		"fake", fake_put, fake_put, fake_get, fake_get_range,
		fake_head, fake_list_after, fake_del, fake_free,
	};
	struct store *s;
	char *err = NULL, *buf;
	size_t len;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		abort();
	s->ops = &fake_ops;
	s->url = (char *)"fake://x";
	r = put_str(s, "k/1", "x", 0, &err);
	ok(r == LS_ERR_IO &&
	    has_all(err, "store fake://x: put k/1: ", (char *)NULL),
	    "a backend error without a message gets one");
	r = store_get(s, "k/2", 1, &err);
	ok(r == LS_ERR_TRANSIENT &&
	    has_all(err, "store fake://x: get k/2: boom", (char *)NULL),
	    "a backend message is prefixed with the store and key");
	r = store_get_buf(s, "k/3", 100, &buf, &len, &err);
	ok(r == LS_ERR_IO && buf == NULL && has_all(err, "k/3", (char *)NULL),
	    "get_buf: an object shorter than its head is an error");
	r = store_list_all(s, "p/", never, NULL, &err);
	ok(r == LS_ERR_INTERNAL &&
	    has_all(err, "did not advance", (char *)NULL),
	    "list_all: a listing that does not advance is an error");
	free(err);
	store_free(s);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	struct store *s;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&tmpdir, "%s/test_store_file.XXXXXX", base) == -1 ||
	    mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	test_open();
	test_wrappers();
	s = open_in("rt");
	test_roundtrip(s);
	test_invalid_keys(s);
	test_put_if_absent(s);
	test_race(s);
	test_interrupted(s);
	store_free(s);
	test_list_order();
	test_paging();
	test_flat_paging();
	if (nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		diag("cannot remove %s: %s", tmpdir, strerror(errno));
	free(tmpdir);
	return tap_done();
}
