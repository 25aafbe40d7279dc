/*
 * store_file.c: a store in a local directory (a plain path or file:///abs).
 *
 * An object is a regular file at <root>/<key>.  Writes never show a partial
 * object: content goes to ".tmp.<name>.<pid>.<random>" in the key's own
 * directory, is fsync'd, and is then renamed (put) or hard-linked
 * (put_if_absent, which link() makes atomic against other writers) onto
 * the final name, and the directory is fsync'd.  A write killed half way
 * leaves only a ".tmp." file; such names are never valid keys and never
 * listed.  Directories are created on demand (mode 0750, files 0640,
 * less the umask) and never removed.
 *
 * The root need not exist until the first put; until then the store is
 * simply empty.  Symbolic links are followed for get/head but a listing
 * yields only regular files and descends only into real directories.
 *
 * Listing walks the tree in key order and prunes directories that cannot
 * hold a wanted key, so paging through nested directories costs about one
 * page per call.  A single large directory (a generation's seg/) would
 * still be read whole for every page, so when a page ends inside a
 * directory of DIRCACHE_MIN or more entries, its sorted entries are kept
 * and the next call that continues that listing (same prefix, start_after
 * = the last key returned, within DIRCACHE_SECS, no put in between) goes
 * on from them.  Such a paging sequence sees that directory as it was when
 * its snapshot was taken, less keys deleted since (each listed file is
 * stat'ed), like a listing that happened at that moment.
 */
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "store/store_int.h"

#define TMP_PREFIX	".tmp."
#define TMP_NAME_KEEP	160		/* bytes of name kept in a temp name */
#define COPY_BUF	(256 * 1024)
#define FILE_MODE	0600		/* the store holds a whole database */
#define DIR_MODE	0700
#define DIRCACHE_MIN	1024		/* entries worth keeping for later */
#define DIRCACHE_SECS	30

/* A directory entry to visit; name has a trailing '/' if it is a directory. */
struct dent {
	char	*name;
	size_t	 len;			/* without the '/' */
	int	 isdir;
};

/* A directory's wanted entries, kept for the next page of a listing. */
struct dircache {
	struct dent	*ents;		/* NULL if empty */
	size_t		 n;
	char		*rel;		/* the directory's key prefix, "a/b/" */
	char		*prefix;	/* the listing's prefix */
	char		*cursor;	/* last key of the page */
	dev_t		 dev;
	ino_t		 ino;
	time_t		 when;		/* CLOCK_MONOTONIC seconds */
};

struct store_file {
	struct store	 base;
	char		*root;		/* absolute; no trailing '/' */
	pthread_mutex_t	 lock;		/* protects cache */
	struct dircache	 cache;
};

/* State of one list_after call. */
struct lister {
	struct store_file	*sf;
	const char		*label;		/* prefix, for messages */
	const char		*prefix;
	const char		*after;
	size_t			 max;
	size_t			 cap;
	struct store_list	*out;
	int			 done;		/* saw a key past the max'th */
	int			 cached;	/* kept a directory's entries */
	char			**errmsg;
};

static const struct store_ops store_file_ops;
static void cache_drop(struct store_file *);

/* Set *errmsg to "store <url>: <op> <key>: <detail>"; return code. */
static int __attribute__((format(printf, 6, 7)))
ferr(struct store_file *sf, char **errmsg, int code, const char *op,
    const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_verrf(&sf->base, errmsg, code, op, key, fmt, ap);
	va_end(ap);
	return code;
}

/* The LS_ERR_* code for a failed system call's errno. */
static int
errno_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return LS_ERR_NOTFOUND;
	case ENOMEM:
		return LS_ERR_NOMEM;
	case ENAMETOOLONG:
		return LS_ERR_INVALID;
	default:
		return LS_ERR_IO;
	}
}

/* Report the failed system call (errno) "what" about key. */
static int
syserr(struct store_file *sf, char **errmsg, const char *op, const char *key,
    const char *what)
{
	int e = errno;

	return ferr(sf, errmsg, errno_code(e), op, key, "%s: %s", what,
	    strerror(e));
}

/* Why name (one '/'-separated component of len bytes) is unfit, or NULL. */
static const char *
component_problem(const char *name, size_t len)
{
	size_t i;

	if (len == 0)
		return "empty path component";
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return "\".\" and \"..\" are not allowed";
	if (len >= strlen(TMP_PREFIX) &&
	    strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
		return "names starting \".tmp.\" are reserved";
	if (len > NAME_MAX)
		return "path component longer than 255 bytes";
	for (i = 0; i < len; i++) {
		if (name[i] == '\\')
			return "backslash in key";
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return "control character in key";
	}
	return NULL;
}

/*
 * Check that key is a relative '/'-separated name with no empty, ".", ".."
 * or ".tmp." components, backslashes or control characters.  (A C string
 * cannot hold a NUL.)
 */
static int
key_check(struct store_file *sf, const char *op, const char *key,
    char **errmsg)
{
	const char *p, *slash, *why = NULL;

	if (key == NULL)
		return ferr(sf, errmsg, LS_ERR_INVALID, op, "", "no key");
	if (*key == '\0')
		why = "empty key";
	else if (*key == '/')
		why = "key must be relative";
	for (p = key; why == NULL; p = slash + 1) {
		if ((slash = strchr(p, '/')) == NULL)
			slash = p + strlen(p);
		why = component_problem(p, (size_t)(slash - p));
		if (*slash == '\0')
			break;
	}
	if (why != NULL)
		return ferr(sf, errmsg, LS_ERR_INVALID, op, key,
		    "invalid key: %s", why);
	return 0;
}

/* Check key and make *pathp = "<root>/<key>" (caller frees). */
static int
key_path(struct store_file *sf, const char *op, const char *key, char **pathp,
    char **errmsg)
{
	int r;

	*pathp = NULL;
	if ((r = key_check(sf, op, key, errmsg)) != 0)
		return r;
	if (asprintf(pathp, "%s/%s", sf->root, key) == -1) {
		*pathp = NULL;
		return ferr(sf, errmsg, LS_ERR_NOMEM, op, key, "out of memory");
	}
	return 0;
}

/* fsync a directory; -1 with errno on failure.  EINVAL means "can't". */
static int
fsync_dir(const char *dir)
{
	int fd, r = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (fsync(fd) == -1 && errno != EINVAL)
		r = -1;
	close(fd);
	return r;
}

/* fsync the directory holding path (an absolute path). */
static int
fsync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	int r;

	if (slash == NULL)
		return 0;
	if (slash == path)
		return fsync_dir("/");
	*slash = '\0';
	r = fsync_dir(path);
	*slash = '/';
	return r;
}

/* mkdir -p dir (absolute), fsyncing the parent of each directory created. */
static int
mkdir_p(char *dir)
{
	char *slash;
	int r;

	if (mkdir(dir, DIR_MODE) == 0)
		return fsync_parent(dir);
	if (errno == EEXIST)
		return 0;
	if (errno != ENOENT || (slash = strrchr(dir, '/')) == NULL ||
	    slash == dir)
		return -1;
	*slash = '\0';
	r = mkdir_p(dir);
	*slash = '/';
	if (r == -1)
		return -1;
	if (mkdir(dir, DIR_MODE) == 0)
		return fsync_parent(dir);
	return errno == EEXIST ? 0 : -1;
}

/*
 * Copy src, from offset 0 to EOF, to dst (at dst's offset).  src is read
 * with pread so its own offset is left alone; but if src is a pipe, FIFO or
 * socket (pread fails with ESPIPE), it is read with read() from where it
 * stands until EOF instead, so a caller can stream into a store.  On
 * failure return -1 with errno set and *what = "read" or "write".
 */
static int
copy_fd(int src, int dst, const char **what)
{
	char *buf;
	off_t off = 0;
	ssize_t n;
	int seekable = 1, r = -1;

	*what = "read";
	if ((buf = malloc(COPY_BUF)) == NULL)
		return -1;
	for (;;) {
		n = seekable ? pread(src, buf, COPY_BUF, off) :
		    read(src, buf, COPY_BUF);
		if (n == -1 && errno == ESPIPE && seekable && off == 0) {
			seekable = 0;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (ls_write_all(dst, buf, (size_t)n) != 0) {
			*what = "write";
			goto out;
		}
		off += n;
	}
	if (n == 0)
		r = 0;
 out:
	free(buf);
	return r;
}

/* 64 random bits for a temp name; uniqueness is enforced by O_EXCL anyway. */
static unsigned long long
temp_random(void)
{
	static unsigned long long counter;
	unsigned long long x;
	struct timespec ts;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) == (ssize_t)sizeof(x))
		return x;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((unsigned long long)ts.tv_sec << 30) ^
	    (unsigned long long)ts.tv_nsec ^ (++counter << 48);
}

/* Create a new temp file for path's last component in dir; -1 on failure. */
static int
open_temp(const char *dir, const char *name, char **tmpp)
{
	char *tmp;
	int fd, i;

	for (i = 0; i < 100; i++) {
		if (asprintf(&tmp, "%s/" TMP_PREFIX "%.*s.%ld.%016llx", dir,
		    TMP_NAME_KEEP, name, (long)getpid(), temp_random()) == -1) {
			errno = ENOMEM;
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    FILE_MODE);
		if (fd != -1) {
			*tmpp = tmp;
			return fd;
		}
		free(tmp);
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* Fill the new temp file tfd from fd and make it durable; closes tfd. */
static int
fill_temp(struct store_file *sf, const char *op, const char *key, int fd,
    int tfd, char **errmsg)
{
	const char *what;
	int r = LS_ERR_INTERNAL;

	if (copy_fd(fd, tfd, &what) == -1) {
		r = syserr(sf, errmsg, op, key, strcmp(what, "read") == 0 ?
		    "read source" : "write temporary file");
		goto out;
	}
	if (fsync(tfd) == -1) {
		r = syserr(sf, errmsg, op, key, "fsync temporary file");
		goto out;
	}
	r = 0;
 out:
	if (close(tfd) == -1 && r == 0)
		r = syserr(sf, errmsg, op, key, "close temporary file");
	return r;
}

/*
 * Write fd's content to a durable temp file beside path, creating path's
 * directory if need be.  *dirp and *tmpp are set (caller frees, and
 * unlinks *tmpp) when 0 is returned.
 */
static int
write_temp(struct store_file *sf, const char *op, const char *key,
    const char *path, int fd, char **dirp, char **tmpp, char **errmsg)
{
	char *dir = NULL, *tmp = NULL;
	const char *slash = strrchr(path, '/');
	int tfd, r = LS_ERR_INTERNAL;

	if ((dir = strndup(path, (size_t)(slash - path))) == NULL) {
		r = ferr(sf, errmsg, LS_ERR_NOMEM, op, key, "out of memory");
		goto out;
	}
	if (mkdir_p(dir) == -1) {
		r = ferr(sf, errmsg, LS_ERR_IO, op, key, "create directory "
		    "%s: %s", dir, strerror(errno));
		goto out;
	}
	if ((tfd = open_temp(dir, slash + 1, &tmp)) == -1) {
		r = ferr(sf, errmsg, LS_ERR_IO, op, key, "create temporary "
		    "file in %s: %s", dir, strerror(errno));
		goto out;
	}
	if ((r = fill_temp(sf, op, key, fd, tfd, errmsg)) != 0)
		goto out;
	*dirp = dir;
	*tmpp = tmp;
	dir = tmp = NULL;
	r = 0;
 out:
	if (tmp != NULL)
		unlink(tmp);
	free(dir);
	free(tmp);
	return r;
}

/*
 * Publish tmp as path only if path does not exist, then remove tmp.
 * link() is atomic and fails with EEXIST for all but one of racing
 * writers; on filesystems without hard links renameat2(RENAME_NOREPLACE)
 * does the same.  On failure tmp is left for the caller to remove.
 */
static int
publish_new(struct store_file *sf, const char *op, const char *key,
    const char *tmp, const char *path, char **errmsg)
{
	if (link(tmp, path) == 0) {
		unlink(tmp);
		return 0;
	}
	if ((errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS) &&
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST)
		return ferr(sf, errmsg, LS_ERR_EXISTS, op, key,
		    "already exists");
	return syserr(sf, errmsg, op, key, "link");
}

/* Put fd's content at key: replacing it, or (excl) only if absent. */
static int
file_put_common(struct store *s, const char *key, int fd, int excl,
    char **errmsg)
{
	struct store_file *sf = (struct store_file *)s;
	const char *op = excl ? "put_if_absent" : "put";
	char *path = NULL, *dir = NULL, *tmp = NULL;
	int r;

	if ((r = key_path(sf, op, key, &path, errmsg)) != 0)
		goto out;
	if ((r = write_temp(sf, op, key, path, fd, &dir, &tmp, errmsg)) != 0)
		goto out;
	if (excl) {
		if ((r = publish_new(sf, op, key, tmp, path, errmsg)) != 0)
			goto out;
	} else if (rename(tmp, path) == -1) {
		r = syserr(sf, errmsg, op, key, "rename");
		goto out;
	}
	free(tmp);		/* renamed or linked and removed */
	tmp = NULL;
	cache_drop(sf);
	if (fsync_dir(dir) == -1) {
		r = ferr(sf, errmsg, LS_ERR_IO, op, key, "fsync directory %s: "
		    "%s", dir, strerror(errno));
		goto out;
	}
	r = 0;
 out:
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(dir);
	free(path);
	return r;
}

static int
file_put(struct store *s, const char *key, int fd, char **errmsg)
{
	return file_put_common(s, key, fd, 0, errmsg);
}

static int
file_put_if_absent(struct store *s, const char *key, int fd, char **errmsg)
{
	return file_put_common(s, key, fd, 1, errmsg);
}

/* Open key's regular file for reading; LS_ERR_NOTFOUND if there is none. */
static int
open_object(struct store_file *sf, const char *op, const char *key, int *fdp,
    char **errmsg)
{
	struct stat st;
	char *path = NULL;
	int fd = -1, r;

	*fdp = -1;
	if ((r = key_path(sf, op, key, &path, errmsg)) != 0)
		goto out;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		r = syserr(sf, errmsg, op, key, "open");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = ferr(sf, errmsg, LS_ERR_NOTFOUND, op, key,
		    "not a regular file");
		goto out;
	}
	*fdp = fd;
	fd = -1;
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	free(path);
	return r;
}

static int
file_get(struct store *s, const char *key, int fd, char **errmsg)
{
	struct store_file *sf = (struct store_file *)s;
	const char *what;
	int ofd, r;

	if ((r = open_object(sf, "get", key, &ofd, errmsg)) != 0)
		return r;
	if (copy_fd(ofd, fd, &what) == -1)
		r = syserr(sf, errmsg, "get", key, strcmp(what, "read") == 0 ?
		    "read" : "write output");
	close(ofd);
	return r;
}

static int
file_get_range(struct store *s, const char *key, uint64_t off, size_t len,
    void *buf, size_t *got, char **errmsg)
{
	struct store_file *sf = (struct store_file *)s;
	ssize_t n;
	int fd, r;

	*got = 0;
	if ((r = open_object(sf, "get", key, &fd, errmsg)) != 0)
		return r;
	while (*got < len && off + *got <= (uint64_t)INT64_MAX) {
		n = pread(fd, (char *)buf + *got, len - *got,
		    (off_t)(off + *got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = syserr(sf, errmsg, "get", key, "read");
			break;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	close(fd);
	return r;
}

static int
file_head(struct store *s, const char *key, uint64_t *size, char **errmsg)
{
	struct store_file *sf = (struct store_file *)s;
	struct stat st;
	char *path = NULL;
	int r;

	if ((r = key_path(sf, "head", key, &path, errmsg)) != 0)
		goto out;
	if (stat(path, &st) == -1) {
		r = syserr(sf, errmsg, "head", key, "stat");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = ferr(sf, errmsg, LS_ERR_NOTFOUND, "head", key,
		    "not a regular file");
		goto out;
	}
	*size = (uint64_t)st.st_size;
	r = 0;
 out:
	free(path);
	return r;
}

static int
file_del(struct store *s, const char *key, char **errmsg)
{
	struct store_file *sf = (struct store_file *)s;
	char *path = NULL;
	int r;

	if ((r = key_path(sf, "delete", key, &path, errmsg)) != 0)
		goto out;
	if (unlink(path) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			r = syserr(sf, errmsg, "delete", key, "unlink");
		goto out;
	}
	if (fsync_parent(path) == -1)
		r = syserr(sf, errmsg, "delete", key, "fsync directory");
 out:
	free(path);
	return r;
}

/* Does s begin with prefix? */
static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Could key (a file's key, or a directory's "rel/name/") be, or hold,
 * a key in this listing?  A directory holds only keys beginning with its
 * name, so it is pruned unless that name is compatible with the prefix
 * and some such key can sort after start_after.
 */
static int
wanted(const struct lister *l, const char *key, int isdir)
{
	if (!isdir)
		return has_prefix(key, l->prefix) && strcmp(key, l->after) > 0;
	if (!has_prefix(key, l->prefix) && !has_prefix(l->prefix, key))
		return 0;
	return has_prefix(l->after, key) || strcmp(key, l->after) > 0;
}

/*
 * Directories sort as "name/": every key below "a/" sorts after "a-b" and
 * before "a0", so visiting entries in this order yields keys in byte order.
 */
static int
dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name,
	    ((const struct dent *)b)->name);
}

static void
dents_free(struct dent *ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

/* Kind of entry de of directory fd: 0 regular file, 1 directory, -1 other. */
static int
dent_kind(int fd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_REG)
		return 0;
	if (de->d_type == DT_DIR)
		return 1;
	if (de->d_type != DT_UNKNOWN ||
	    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return S_ISREG(st.st_mode) ? 0 : S_ISDIR(st.st_mode) ? 1 : -1;
}

/* Append (name, isdir) to *ents; -1 on allocation failure. */
static int
dents_add(struct dent **ents, size_t *n, size_t *cap, const char *name,
    size_t len, int isdir)
{
	struct dent *e;

	if (*n == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		if ((e = reallocarray(*ents, *cap, sizeof(**ents))) == NULL)
			return -1;
		*ents = e;
	}
	e = &(*ents)[*n];
	if ((e->name = malloc(len + 2)) == NULL)
		return -1;
	memcpy(e->name, name, len);
	e->name[len] = '/';
	e->name[isdir ? len + 1 : len] = '\0';
	e->len = len;
	e->isdir = isdir;
	(*n)++;
	return 0;
}

/*
 * Read directory d into *entsp: the regular files and directories that
 * wanted() keeps, sorted as dent_cmp says.  key holds the directory's key
 * prefix (rel) and has room for rlen + NAME_MAX + 2 bytes.
 */
static int
read_dents(struct lister *l, DIR *d, char *key, size_t rlen,
    struct dent **entsp, size_t *np)
{
	struct dirent *de;
	struct dent *ents = NULL;
	size_t len, n = 0, cap = 0;
	int kind, r = LS_ERR_INTERNAL;

	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		len = strlen(de->d_name);
		if (len > NAME_MAX || has_prefix(de->d_name, TMP_PREFIX) ||
		    strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    (kind = dent_kind(dirfd(d), de)) == -1)
			continue;
		memcpy(key + rlen, de->d_name, len);
		key[rlen + len] = '/';
		key[kind ? rlen + len + 1 : rlen + len] = '\0';
		if (wanted(l, key, kind) &&
		    dents_add(&ents, &n, &cap, de->d_name, len, kind) == -1) {
			r = ferr(l->sf, l->errmsg, LS_ERR_NOMEM, "list",
			    l->label, "out of memory");
			goto out;
		}
	}
	if (errno != 0) {
		key[rlen] = '\0';
		r = ferr(l->sf, l->errmsg, LS_ERR_IO, "list", l->label,
		    "read directory %s/%s: %s", l->sf->root, key,
		    strerror(errno));
		goto out;
	}
	if (n > 1)
		qsort(ents, n, sizeof(*ents), dent_cmp);
	*entsp = ents;
	*np = n;
	ents = NULL;
	n = 0;
	r = 0;
 out:
	dents_free(ents, n);
	return r;
}

/*
 * Index of the first of the sorted entries ents that wanted() keeps (all
 * of them match the prefix).  The kept ones form a tail of the array:
 * the entries sorting after start_after, preceded by the directory that
 * start_after lies in, if any.  key is as for read_dents.
 */
static size_t
first_wanted(const struct lister *l, const struct dent *ents, size_t n,
    char *key, size_t rlen)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		strcpy(key + rlen, ents[mid].name);
		if (wanted(l, key, ents[mid].isdir))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Empty a cache (lock held or not yet shared). */
static void
cache_clear(struct dircache *c)
{
	dents_free(c->ents, c->n);
	free(c->rel);
	free(c->prefix);
	free(c->cursor);
	memset(c, 0, sizeof(*c));
}

/* Forget kept entries: a put may have added to their directory. */
static void
cache_drop(struct store_file *sf)
{
	pthread_mutex_lock(&sf->lock);
	cache_clear(&sf->cache);
	pthread_mutex_unlock(&sf->lock);
}

/*
 * If this call continues the listing whose previous page ended in
 * directory st (keys beginning with rel), move that directory's kept
 * entries to *entsp and return 1.
 */
static int
cache_take(struct lister *l, const struct stat *st, const char *rel,
    struct dent **entsp, size_t *np)
{
	struct dircache *c = &l->sf->cache;
	int hit;

	pthread_mutex_lock(&l->sf->lock);
	hit = c->ents != NULL && c->dev == st->st_dev &&
	    c->ino == st->st_ino && mono_now() - c->when < DIRCACHE_SECS &&
	    strcmp(c->rel, rel) == 0 && strcmp(c->prefix, l->prefix) == 0 &&
	    strcmp(c->cursor, l->after) == 0;
	if (hit) {
		*entsp = c->ents;
		*np = c->n;
		c->ents = NULL;
		c->n = 0;
		cache_clear(c);
	}
	pthread_mutex_unlock(&l->sf->lock);
	return hit;
}

/*
 * This page ended in directory st (keys beginning with rel): keep its
 * entries (moved from *entsp) if there are enough to be worth it.
 * Failing to keep them only costs time.
 */
static void
cache_put(struct lister *l, const struct stat *st, const char *rel,
    struct dent **entsp, size_t *np)
{
	struct store_list *out = l->out;
	struct dircache c;

	if (*np < DIRCACHE_MIN || l->cached || out->n == 0)
		return;
	l->cached = 1;
	memset(&c, 0, sizeof(c));
	c.rel = strdup(rel);
	c.prefix = strdup(l->prefix);
	c.cursor = strdup(out->entries[out->n - 1].key);
	if (c.rel == NULL || c.prefix == NULL || c.cursor == NULL) {
		cache_clear(&c);
		return;
	}
	c.ents = *entsp;
	c.n = *np;
	*entsp = NULL;
	*np = 0;
	c.dev = st->st_dev;
	c.ino = st->st_ino;
	c.when = mono_now();
	pthread_mutex_lock(&l->sf->lock);
	cache_clear(&l->sf->cache);
	l->sf->cache = c;
	pthread_mutex_unlock(&l->sf->lock);
}

/* Add the file key (name in directory fd) to the page, or end the page. */
static int
emit(struct lister *l, int fd, const char *name, const char *key)
{
	struct store_list *out = l->out;
	struct store_entry *e;
	struct stat st;

	if (out->n == l->max) {
		out->truncated = 1;
		l->done = 1;
		return 0;
	}
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0;	/* deleted or replaced since readdir */
	if (out->n == l->cap) {
		l->cap = l->cap == 0 ? 64 : l->cap * 2;
		e = reallocarray(out->entries, l->cap, sizeof(*e));
		if (e == NULL)
			goto nomem;
		out->entries = e;
	}
	if ((out->entries[out->n].key = strdup(key)) == NULL)
		goto nomem;
	out->entries[out->n++].size = (uint64_t)st.st_size;
	return 0;
 nomem:
	return ferr(l->sf, l->errmsg, LS_ERR_NOMEM, "list", l->label,
	    "out of memory");
}

static int walk(struct lister *, int, const char *);

/* Visit one entry of directory fd: emit a file, walk a directory. */
static int
visit(struct lister *l, int fd, const char *rel, const struct dent *e)
{
	char *key = NULL, *name = NULL;
	int cfd, r = LS_ERR_INTERNAL;

	if (asprintf(&key, "%s%s", rel, e->name) == -1)
		key = NULL;
	if (key == NULL || (name = strndup(e->name, e->len)) == NULL) {
		r = ferr(l->sf, l->errmsg, LS_ERR_NOMEM, "list", l->label,
		    "out of memory");
		goto out;
	}
	if (!e->isdir) {
		r = emit(l, fd, name, key);
		goto out;
	}
	cfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd == -1 &&
	    (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
		r = 0;		/* gone or replaced since readdir */
	else if (cfd == -1)
		r = ferr(l->sf, l->errmsg, LS_ERR_IO, "list", l->label,
		    "open directory %s/%s: %s", l->sf->root, key,
		    strerror(errno));
	else
		r = walk(l, cfd, key);
 out:
	free(name);
	free(key);
	return r;
}

/* List directory fd (its keys begin with rel) in order; closes fd. */
static int
walk(struct lister *l, int fd, const char *rel)
{
	struct dent *ents = NULL;
	struct stat st;
	size_t i, n = 0, rlen = strlen(rel);
	char *key = NULL;
	DIR *d;
	int r = LS_ERR_INTERNAL;

	if ((d = fdopendir(fd)) == NULL || fstat(fd, &st) == -1) {
		r = ferr(l->sf, l->errmsg, LS_ERR_IO, "list", l->label,
		    "open directory %s/%s: %s", l->sf->root, rel,
		    strerror(errno));
		goto out;
	}
	if ((key = malloc(rlen + NAME_MAX + 2)) == NULL) {
		r = ferr(l->sf, l->errmsg, LS_ERR_NOMEM, "list", l->label,
		    "out of memory");
		goto out;
	}
	memcpy(key, rel, rlen + 1);
	if (!cache_take(l, &st, rel, &ents, &n) &&
	    (r = read_dents(l, d, key, rlen, &ents, &n)) != 0)
		goto out;
	r = 0;
	for (i = first_wanted(l, ents, n, key, rlen); r == 0 && i < n &&
	    !l->done; i++)
		r = visit(l, fd, rel, &ents[i]);
	if (r == 0 && l->done)
		cache_put(l, &st, rel, &ents, &n);
 out:
	dents_free(ents, n);
	free(key);
	if (d != NULL)
		closedir(d);
	else
		close(fd);
	return r;
}

static int
file_list_after(struct store *s, const char *prefix, const char *start_after,
    size_t max, struct store_list *out, char **errmsg)
{
	struct store_file *sf = (struct store_file *)s;
	struct lister l;
	int fd;

	memset(&l, 0, sizeof(l));
	l.sf = sf;
	l.prefix = prefix != NULL ? prefix : "";
	l.after = start_after != NULL ? start_after : "";
	l.label = *l.prefix != '\0' ? l.prefix : "(all)";
	l.max = max;
	l.out = out;
	l.errmsg = errmsg;
	memset(out, 0, sizeof(*out));
	if ((fd = open(sf->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;	/* nothing stored yet */
		return ferr(sf, errmsg, LS_ERR_IO, "list", l.label,
		    "open directory %s: %s", sf->root, strerror(errno));
	}
	return walk(&l, fd, "");
}

static void
file_free(struct store *s)
{
	struct store_file *sf = (struct store_file *)s;

	if (sf == NULL)
		return;
	cache_clear(&sf->cache);
	pthread_mutex_destroy(&sf->lock);
	free(sf->root);
	free(sf->base.url);
	free(sf);
}

/* Check that root, if it exists, is a directory. */
static int
root_check(const char *url, const char *root, char **errmsg)
{
	struct stat st;

	if (stat(root, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return ls_errf(errmsg, LS_ERR_IO, "store %s: %s: %s", url,
		    root, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: %s is not "
		    "a directory", url, root);
	return 0;
}

int
store_file_open(const char *url, const char *path, struct store **out,
    char **errmsg)
{
	struct store_file *sf = NULL;
	size_t len;
	int r = LS_ERR_INTERNAL;

	*out = NULL;
	if (path == NULL || path[0] != '/')
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s: the "
		    "directory must be an absolute path", url);
	if ((sf = calloc(1, sizeof(*sf))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "store %s: out of memory",
		    url);
	sf->base.ops = &store_file_ops;
	pthread_mutex_init(&sf->lock, NULL);
	if ((sf->root = strdup(path)) == NULL ||
	    (sf->base.url = strdup(url)) == NULL) {
		r = ls_errf(errmsg, LS_ERR_NOMEM, "store %s: out of memory",
		    url);
		goto out;
	}
	for (len = strlen(sf->root); len > 1 && sf->root[len - 1] == '/'; len--)
		sf->root[len - 1] = '\0';
	if ((r = root_check(url, sf->root, errmsg)) != 0)
		goto out;
	*out = &sf->base;
	sf = NULL;
	r = 0;
 out:
	if (sf != NULL)
		file_free(&sf->base);
	return r;
}

static const struct store_ops store_file_ops = STORE_OPS(file, "file");
