/* state.c: LMDB-backed restore state (see state.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/error.h"
#include "common/secfile.h"
#include "state.h"

/* Less than this free after a short write: the filesystem is full. */
#define STATE_FULL_BYTES	(64u << 10)

struct state {
	int	 lockfd;	/* flock: one logship-restore per state dir */
	MDB_env	*env;
	MDB_dbi	 meta;
	MDB_dbi	 base;
	MDB_dbi	 idmap;		/* table \0 orig -> struct mapval + new key */
	MDB_dbi	 idrev;		/* table \0 new -> orig */
	char	*dir;
};

/*
 * Did the write that failed with rc run out of space?  LMDB returns errno
 * values, and EIO for a short write (a filesystem that took part of it):
 * that is a full one when almost nothing is left.
 */
static bool
out_of_space(const struct state *st, int rc, char *why, size_t len)
{
	struct statvfs vfs;

	snprintf(why, len, "%s", mdb_strerror(rc));
	if (ls_errno_code(rc) == LS_ERR_NOSPACE)
		return true;
	if (rc != EIO || statvfs(st->dir, &vfs) != 0 ||
	    (uint64_t)vfs.f_bavail * vfs.f_frsize >= STATE_FULL_BYTES)
		return false;
	snprintf(why, len, "%s (a short write: %" PRIu64 " bytes free there)",
	    strerror(ENOSPC), (uint64_t)vfs.f_bavail * vfs.f_frsize);
	return true;
}

/*
 * An LMDB failure.  A full filesystem leaves the environment as its last
 * commit left it, and the target's marker is authoritative: the rerun
 * resumes exactly once there is room.
 */
static int
lmdb_err(char **errmsg, const struct state *st, const char *what, int rc)
{
	char why[160];

	if (out_of_space(st, rc, why, sizeof(why)))
		return ls_errf(errmsg, LS_ERR_NOSPACE, "LOCAL DISK FULL: state "
		    "dir %s: %s: %s; the target holds what its marker says was "
		    "applied, nothing more: free space on that filesystem, or "
		    "stop the restore and move the whole state dir to a larger "
		    "one (--state-dir), then run the restore again: it resumes "
		    "at the target's marker", st->dir, what, why);
	return ls_errf(errmsg, LS_ERR_IO, "state dir %s: %s: %s", st->dir, what,
	    mdb_strerror(rc));
}

static int
open_dbs(struct state *st, char **errmsg)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return lmdb_err(errmsg, st, "begin", rc);
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "base", MDB_CREATE, &st->base)) != 0 ||
	    (rc = mdb_dbi_open(txn, "idmap", MDB_CREATE, &st->idmap)) != 0 ||
	    (rc = mdb_dbi_open(txn, "idrev", MDB_CREATE, &st->idrev)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(errmsg, st, "open", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_err(errmsg, st, "commit", rc);
	return 0;
}

/* Only one process may use a state dir at a time. */
static int
lock_dir(struct state *st, char **errmsg)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/logship-restore.lock", st->dir);
	if ((st->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "state dir %s: %s; give a "
		    "writable --state-dir", st->dir, strerror(errno));
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "state dir %s is in use by "
		    "another logship-restore; run one restore per state dir",
		    st->dir);
	return 0;
}

static int open_state(const char *dir, bool lock, struct state **out,
    char **errmsg);

int
state_open(const char *dir, struct state **out, char **errmsg)
{
	return open_state(dir, true, out, errmsg);
}

int
state_open_readonly(const char *dir, struct state **out, char **errmsg)
{
	struct stat sb;

	if (stat(dir, &sb) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "state dir %s: %s", dir,
		    strerror(errno));
	return open_state(dir, false, out, errmsg);
}

static int
open_state(const char *dir, bool lock, struct state **out, char **errmsg)
{
	struct state *st = calloc(1, sizeof(*st));
	int rc;

	if (st == NULL || (st->dir = strdup(dir)) == NULL) {
		free(st);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	st->lockfd = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = ls_errf(errmsg, LS_ERR_INVALID, "state dir %s: %s; give a "
		    "writable --state-dir", dir, strerror(errno));
		state_close(st);
		return rc;
	}
	if ((rc = secfile_check_dir(dir, "state dir", errmsg)) != 0) {
		state_close(st);
		return LS_ERR_INVALID;
	}
	if (lock && (rc = lock_dir(st, errmsg)) != 0) {
		state_close(st);
		return rc;
	}
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, (size_t)8 << 30)) != 0 ||
	    (rc = mdb_env_open(st->env, dir, 0, 0600)) != 0) {
		rc = ls_errf(errmsg, LS_ERR_INVALID, "state dir %s: %s; give a "
		    "readable, writable --state-dir", dir, mdb_strerror(rc));
		state_close(st);
		return rc;
	}
	if ((rc = open_dbs(st, errmsg)) != 0) {
		state_close(st);
		return LS_ERR_INVALID;
	}
	*out = st;
	return 0;
}

void
state_close(struct state *st)
{
	if (st == NULL)
		return;
	if (st->env != NULL)
		mdb_env_close(st->env);
	if (st->lockfd >= 0)
		close(st->lockfd);
	free(st->dir);
	free(st);
}

/* Get key from dbi into buf (at most len bytes); *got its size. */
static int
get(struct state *st, MDB_dbi dbi, const char *key, void *buf, size_t len,
    size_t *got, char **errmsg)
{
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_err(errmsg, st, "begin", rc);
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == 0) {
		*got = v.mv_size;
		memcpy(buf, v.mv_data, v.mv_size < len ? v.mv_size : len);
	}
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return LS_ERR_NOTFOUND;
	return rc == 0 ? 0 : lmdb_err(errmsg, st, "get", rc);
}

/* Put (durably: the commit syncs). */
static int
put(struct state *st, MDB_dbi dbi, const char *key, const void *buf, size_t len,
    char **errmsg)
{
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)buf };
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return lmdb_err(errmsg, st, "begin", rc);
	if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(errmsg, st, "put", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_err(errmsg, st, "commit", rc);
	return 0;
}

int
state_bind(struct state *st, const char *store_id, const char *target_id,
    char **errmsg)
{
	char want[1024], have[1024];
	size_t got = 0;
	int r;

	snprintf(want, sizeof(want), "store %s, target %s", store_id, target_id);
	r = get(st, st->meta, "binding", have, sizeof(have) - 1, &got, errmsg);
	if (r == LS_ERR_NOTFOUND)
		return put(st, st->meta, "binding", want, strlen(want), errmsg);
	if (r != 0)
		return r;
	have[got < sizeof(have) ? got : sizeof(have) - 1] = '\0';
	if (strcmp(have, want) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "state dir %s belongs to "
		    "%s, not %s; use a new --state-dir for this store and target",
		    st->dir, have, want);
	return 0;
}

int
state_get_marker(struct state *st, struct state_marker *m, char **errmsg)
{
	size_t got = 0, old = offsetof(struct state_marker, heartbeat_time);
	int r;

	memset(m, 0, sizeof(*m));
	r = get(st, st->meta, "marker", m, sizeof(*m), &got, errmsg);
	if (r == 0 && got != sizeof(*m) && got != old)	/* old: no heartbeat */
		return ls_errf(errmsg, LS_ERR_CORRUPT, "state dir %s: marker has "
		    "the wrong size", st->dir);
	return r;
}

int
state_put_marker(struct state *st, const struct state_marker *m, char **errmsg)
{
	return put(st, st->meta, "marker", m, sizeof(*m), errmsg);
}

int
state_base_loaded(struct state *st, const char *key, bool *loaded,
    char **errmsg)
{
	char one;
	size_t got;
	int r = get(st, st->base, key, &one, 1, &got, errmsg);

	*loaded = r == 0;
	return r == LS_ERR_NOTFOUND ? 0 : r;
}

int
state_base_mark(struct state *st, const char *key, char **errmsg)
{
	return put(st, st->base, key, "1", 1, errmsg);
}

/* ---- the ID map ---- */

struct state_txn {
	struct state	*st;
	MDB_txn		*txn;
};

struct mapval {
	uint64_t	tag;		/* LSN that made it (0: base) */
	uint64_t	deleted;	/* LSN that deleted it (0: live) */
};

int
state_txn_begin(struct state *st, struct state_txn **out, char **errmsg)
{
	struct state_txn *t = calloc(1, sizeof(*t));
	int rc;

	if (t == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	t->st = st;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &t->txn)) != 0) {
		free(t);
		return lmdb_err(errmsg, st, "begin", rc);
	}
	*out = t;
	return 0;
}

int
state_txn_commit(struct state_txn *t, char **errmsg)
{
	int rc = mdb_txn_commit(t->txn);
	struct state *st = t->st;

	free(t);
	return rc == 0 ? 0 : lmdb_err(errmsg, st, "commit", rc);
}

void
state_txn_abort(struct state_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

/* "table\0key" as an LMDB key in buf (malloc'd). */
static MDB_val
map_key(const char *table, const char *key, char **buf)
{
	size_t tl = strlen(table), kl = strlen(key);
	MDB_val k = { 0, NULL };

	if ((*buf = malloc(tl + 1 + kl)) == NULL)
		return k;
	memcpy(*buf, table, tl + 1);
	memcpy(*buf + tl + 1, key, kl);
	k.mv_size = tl + 1 + kl;
	k.mv_data = *buf;
	return k;
}

static int
map_read(MDB_txn *txn, MDB_dbi dbi, const char *table, const char *orig,
    struct mapval *mv, char **newkey)
{
	char *kb;
	MDB_val k = map_key(table, orig, &kb), v;
	int rc;

	if (k.mv_data == NULL)
		return LS_ERR_NOMEM;
	rc = mdb_get(txn, dbi, &k, &v);
	free(kb);
	if (rc != 0 || v.mv_size < sizeof(*mv))
		return rc == MDB_NOTFOUND || rc == 0 ? LS_ERR_NOTFOUND : LS_ERR_IO;
	memcpy(mv, v.mv_data, sizeof(*mv));
	if (newkey != NULL && (*newkey = strndup((char *)v.mv_data + sizeof(*mv),
	    v.mv_size - sizeof(*mv))) == NULL)
		return LS_ERR_NOMEM;
	return 0;
}

int
state_map_get(struct state *st, struct state_txn *t, const char *table,
    const char *orig, char **newkey, char **errmsg)
{
	struct mapval mv;
	MDB_txn *txn = t != NULL ? t->txn : NULL;
	int rc;

	if (txn == NULL && (rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_err(errmsg, st, "begin", rc);
	*newkey = NULL;
	rc = map_read(txn, st->idmap, table, orig, &mv, newkey);
	if (t == NULL)
		mdb_txn_abort(txn);
	if (rc == 0 && mv.deleted != 0) {
		free(*newkey);
		*newkey = NULL;
		rc = LS_ERR_NOTFOUND;
	}
	if (rc != 0 && rc != LS_ERR_NOTFOUND)
		return ls_errf(errmsg, rc, "state dir %s: id map read failed",
		    st->dir);
	return rc;
}

static int
map_write(struct state_txn *t, const char *table, const char *orig,
    const char *newkey, const struct mapval *mv, char **errmsg)
{
	size_t nl = strlen(newkey);
	char *kb = NULL, *rb = NULL, *vb = malloc(sizeof(*mv) + nl);
	MDB_val k = map_key(table, orig, &kb), rk = map_key(table, newkey, &rb);
	MDB_val v = { sizeof(*mv) + nl, vb }, rv = { strlen(orig), (void *)orig };
	int rc = LS_ERR_NOMEM;

	if (vb != NULL && k.mv_data != NULL && rk.mv_data != NULL) {
		memcpy(vb, mv, sizeof(*mv));
		memcpy(vb + sizeof(*mv), newkey, nl);
		rc = mdb_put(t->txn, t->st->idmap, &k, &v, 0);
		if (rc == 0)
			rc = mdb_put(t->txn, t->st->idrev, &rk, &rv, 0);
		rc = rc == 0 ? 0 : lmdb_err(errmsg, t->st, "id map write", rc);
	}
	free(kb);
	free(rb);
	free(vb);
	return rc;
}

int
state_map_put(struct state_txn *t, const char *table, const char *orig,
    const char *newkey, uint64_t tag, char **errmsg)
{
	struct mapval mv = { tag, 0 };

	return map_write(t, table, orig, newkey, &mv, errmsg);
}

int
state_map_delete(struct state_txn *t, const char *table, const char *orig,
    uint64_t tag, char **errmsg)
{
	struct mapval mv;
	char *newkey = NULL;
	int rc = map_read(t->txn, t->st->idmap, table, orig, &mv, &newkey);

	if (rc == LS_ERR_NOTFOUND)
		return 0;
	if (rc != 0)
		return ls_errf(errmsg, rc, "state dir %s: id map read failed",
		    t->st->dir);
	mv.deleted = tag ? tag : 1;
	rc = map_write(t, table, orig, newkey, &mv, errmsg);
	free(newkey);
	return rc;
}

/* Rewrite the current entry with mv (LMDB data may not be modified in place). */
static int
revive(MDB_cursor *cur, MDB_val *k, const MDB_val *v, const struct mapval *mv)
{
	char *buf = malloc(v->mv_size);
	MDB_val nv = { v->mv_size, buf };
	int rc;

	if (buf == NULL)
		return ENOMEM;
	memcpy(buf, v->mv_data, v->mv_size);
	memcpy(buf, mv, sizeof(*mv));
	rc = mdb_cursor_put(cur, k, &nv, MDB_CURRENT);
	free(buf);
	return rc;
}

int
state_map_drop_table(struct state_txn *t, const char *table, uint64_t tag,
    uint64_t *n, char **errmsg)
{
	size_t tl = strlen(table) + 1;
	MDB_cursor *cur;
	MDB_val k = { tl, (void *)table }, v;
	struct mapval mv;
	int rc;

	*n = 0;
	if ((rc = mdb_cursor_open(t->txn, t->st->idmap, &cur)) != 0)
		return lmdb_err(errmsg, t->st, "cursor", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < tl || memcmp(k.mv_data, table, tl) != 0)
			break;	/* past this table's entries */
		if (v.mv_size < sizeof(mv))
			continue;
		memcpy(&mv, v.mv_data, sizeof(mv));
		if (mv.deleted != 0)
			continue;
		mv.deleted = tag ? tag : 1;
		if ((rc = revive(cur, &k, &v, &mv)) != 0)
			break;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 :
	    lmdb_err(errmsg, t->st, "id map write", rc);
}

/* Up to max live entries of table from *at on: their originals and new keys. */
static int
map_chunk(struct state_txn *t, const char *table, char **at, size_t *atlen,
    char **orig, char **newkey, size_t max, size_t *n)
{
	size_t tl = strlen(table) + 1;
	MDB_cursor *cur;
	MDB_val k = { *atlen, *at }, v;
	struct mapval mv;
	int rc;

	*n = 0;
	if ((rc = mdb_cursor_open(t->txn, t->st->idmap, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    *n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < tl || memcmp(k.mv_data, table, tl) != 0)
			break;
		if (v.mv_size < sizeof(mv))
			continue;
		memcpy(&mv, v.mv_data, sizeof(mv));
		if (mv.deleted != 0)
			continue;
		orig[*n] = strndup((char *)k.mv_data + tl, k.mv_size - tl);
		newkey[*n] = strndup((char *)v.mv_data + sizeof(mv),
		    v.mv_size - sizeof(mv));
		if (orig[*n] == NULL || newkey[*n] == NULL) {
			free(orig[*n]);
			free(newkey[*n]);
			rc = ENOMEM;
			break;
		}
		(*n)++;
		free(*at);
		if ((*at = malloc(k.mv_size)) == NULL) {
			rc = ENOMEM;
			break;
		}
		memcpy(*at, k.mv_data, k.mv_size);
		*atlen = k.mv_size;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	for (; rc != 0 && *n > 0; (*n)--) {
		free(orig[*n - 1]);
		free(newkey[*n - 1]);
	}
	return rc;
}

int
state_map_rename_table(struct state_txn *t, const char *from, const char *to,
    uint64_t tag, uint64_t *moved, char **errmsg)
{
	enum { CHUNK = 1024 };
	char *orig[CHUNK], *newkey[CHUNK], *at = strdup(from);
	size_t atlen = strlen(from) + 1, n, i;
	int rc = 0, mrc = at == NULL ? ENOMEM : 0;

	*moved = 0;
	do {	/* read a chunk, then write: no cursor lives across writes */
		if (mrc != 0 || (mrc = map_chunk(t, from, &at, &atlen, orig,
		    newkey, CHUNK, &n)) != 0)
			break;
		for (i = 0; i < n; i++) {
			if (rc == 0 && (rc = state_map_put(t, to, orig[i],
			    newkey[i], tag, errmsg)) == 0)
				rc = state_map_delete(t, from, orig[i], tag, errmsg);
			free(orig[i]);
			free(newkey[i]);
		}
		*moved += n;
	} while (rc == 0 && n == CHUNK);
	free(at);
	if (mrc == ENOMEM)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	return mrc != 0 ? lmdb_err(errmsg, t->st, "id map read", mrc) : rc;
}

int
state_map_reverse(struct state *st, const char *table, const char *newkey,
    char **orig, char **errmsg)
{
	MDB_txn *txn;
	char *kb;
	MDB_val k = map_key(table, newkey, &kb), v;
	int rc;

	if (k.mv_data == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0) {
		free(kb);
		return lmdb_err(errmsg, st, "begin", rc);
	}
	rc = mdb_get(txn, st->idrev, &k, &v);
	if (rc == 0)
		*orig = strndup(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	free(kb);
	if (rc == MDB_NOTFOUND)
		return LS_ERR_NOTFOUND;
	return rc == 0 ? 0 : lmdb_err(errmsg, st, "id map read", rc);
}

/* Apply the reconcile rule to one entry; sets *drop or rewrites *mv. */
static int
reconcile_one(struct mapval *mv, uint64_t committed, bool *drop, bool *dirty)
{
	*drop = mv->tag > committed ||
	    (mv->deleted != 0 && mv->deleted <= committed);
	*dirty = !*drop && mv->deleted > committed;
	if (*dirty)
		mv->deleted = 0;	/* the deleting batch never committed */
	return 0;
}

/* Remove the reverse entry of an idmap entry being dropped. */
static void
drop_reverse(struct state *st, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
	const char *table = k->mv_data;
	size_t tl = strnlen(table, k->mv_size), nl = v->mv_size - sizeof(struct mapval);
	char *rk = malloc(tl + 1 + nl);
	MDB_val key;

	if (rk == NULL)
		return;
	memcpy(rk, table, tl + 1);
	memcpy(rk + tl + 1, (char *)v->mv_data + sizeof(struct mapval), nl);
	key.mv_size = tl + 1 + nl;
	key.mv_data = rk;
	mdb_del(txn, st->idrev, &key, NULL);
	free(rk);
}

int
state_map_reconcile(struct state *st, uint64_t committed, uint64_t *dropped,
    char **errmsg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct mapval mv;
	bool drop, dirty;
	int rc;

	*dropped = 0;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return lmdb_err(errmsg, st, "begin", rc);
	if ((rc = mdb_cursor_open(txn, st->idmap, &cur)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(errmsg, st, "cursor", rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size < sizeof(mv))
			continue;
		memcpy(&mv, v.mv_data, sizeof(mv));
		reconcile_one(&mv, committed, &drop, &dirty);
		if (drop) {
			drop_reverse(st, txn, &k, &v);
			mdb_cursor_del(cur, 0);
			(*dropped)++;
		} else if (dirty && (rc = revive(cur, &k, &v, &mv)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return lmdb_err(errmsg, st, "reconcile", rc);
	}
	rc = mdb_txn_commit(txn);
	return rc == 0 ? 0 : lmdb_err(errmsg, st, "commit", rc);
}

int
state_map_count(struct state *st, uint64_t *n, char **errmsg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct mapval mv;
	int rc;

	*n = 0;
	(void)errmsg;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_err(errmsg, st, "begin", rc);
	if ((rc = mdb_cursor_open(txn, st->idmap, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (v.mv_size < sizeof(mv))
				continue;
			memcpy(&mv, v.mv_data, sizeof(mv));
			*n += mv.deleted == 0;
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return 0;
}
