/* state.c: LMDB-backed restore state (see state.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "error.h"
#include "state.h"

struct state {
	int	 lockfd;	/* flock: one logship-restore per state dir */
	MDB_env	*env;
	MDB_dbi	 meta;
	MDB_dbi	 base;
	char	*dir;
};

static int
lmdb_err(char **errmsg, const struct state *st, const char *what, int rc)
{
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
	    (rc = mdb_dbi_open(txn, "base", MDB_CREATE, &st->base)) != 0) {
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

int
state_open(const char *dir, struct state **out, char **errmsg)
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
	if ((rc = lock_dir(st, errmsg)) != 0) {
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
	size_t got = 0;
	int r = get(st, st->meta, "marker", m, sizeof(*m), &got, errmsg);

	if (r == 0 && got != sizeof(*m))
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
