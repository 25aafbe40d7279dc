/* baseload.c: parallel COPY of base chunks into the target (see baseload.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "baseload.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pool.h"
#include "format/blob.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "state.h"
#include "target.h"

struct job {
	struct base_chunk	 chunk;
	const char		*schema, *name;
	const char		**cols;		/* COPY columns (manifest) */
	size_t			 ncols;
};

/* Where a chunk's bytes go: straight to COPY, or line by line through
 * the transform. */
struct sink {
	PGconn			*c;
	const struct baseload_opts *o;
	const struct job	*j;
	char			*pend;		/* an incomplete line */
	size_t			 plen, pcap;
	char			*err;
};

struct loader {
	const struct baseload_opts *o;
	struct job		*jobs;
	size_t			 njobs, next;
	pthread_mutex_t		 lock;
	struct baseload_stats	 stats;
	size_t			 finished;	/* jobs done, skipped or left out */
};

int
restore_session_setup(void *pgconn, char **errmsg)
{
	PGconn *c = pgconn;
	PGresult *res;

	/*
	 * As PostgreSQL's own apply worker: ordinary triggers and foreign-key
	 * triggers do not fire for replicated rows (superuser only; otherwise
	 * the setting stays and the restore still works).
	 */
	res = PQexec(c, "SET session_replication_role = replica");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		log_warn("restore", "cannot set session_replication_role=replica "
		    "(not a superuser?): target triggers will fire during replay");
	PQclear(res);
	return target_exec(c, "SET statement_timeout = 0; SET lock_timeout = 0; "
	    "SET idle_in_transaction_session_timeout = 0; SET DateStyle = ISO; "
	    "SET IntervalStyle = postgres; SET extra_float_digits = 3; "
	    "SET synchronous_commit = off", errmsg);
}

static int
put_line(struct sink *k, const char *line, size_t len)
{
	const char *out;
	size_t outlen;
	bool skip = false;
	int r;

	if ((r = k->o->transform(k->o->transform_arg, k->j->schema, k->j->name,
	    k->j->cols, k->j->ncols, line, len, &out, &outlen, &skip,
	    &k->err)) != 0)
		return r;
	if (skip)
		return 0;
	return PQputCopyData(k->c, out, (int)outlen) == 1 ? 0 : LS_ERR_TRANSIENT;
}

static int
send_copy(void *arg, const void *buf, size_t len)
{
	struct sink *k = arg;
	const char *p = buf, *nl;
	char *bigger;
	int r;

	if (k->o->transform == NULL)
		return PQputCopyData(k->c, buf, (int)len) == 1 ? 0 : LS_ERR_TRANSIENT;
	if (k->plen + len > k->pcap) {
		k->pcap = (k->plen + len) * 2;
		if ((bigger = realloc(k->pend, k->pcap)) == NULL)
			return LS_ERR_NOMEM;
		k->pend = bigger;
	}
	memcpy(k->pend + k->plen, p, len);
	k->plen += len;
	p = k->pend;
	while ((nl = memchr(p, '\n', k->plen - (size_t)(p - k->pend))) != NULL) {
		if ((r = put_line(k, p, (size_t)(nl - p + 1))) != 0)
			return r;
		p = nl + 1;
	}
	k->plen -= (size_t)(p - k->pend);
	memmove(k->pend, p, k->plen);
	return 0;
}

/*
 * "(a, b)": the target's columns by name, so that a table whose physical
 * column order differs from the source's (inheritance, dropped and re-added
 * columns, a schema from pg_dump -s) loads each value into its own column.
 * The filters' callback names them when it drops some; otherwise they are
 * the manifest's.  "" for a table without columns (or a manifest older
 * than column lists); NULL when out of memory.
 */
static char *
column_list(PGconn *c, const struct baseload_opts *o, const struct job *j)
{
	const char **names = calloc(j->ncols + 1, sizeof(*names));
	char *out = strdup("("), *q, *next;
	size_t n = 0, i;

	if (names == NULL || out == NULL)
		goto fail;
	if (o->columns != NULL) {
		if (o->columns(o->transform_arg, j->schema, j->name, j->cols,
		    j->ncols, names, &n) != 0)
			goto fail;
	} else
		for (n = 0; n < j->ncols; n++)
			names[n] = j->cols[n];
	if (n == 0) {
		free(names);
		free(out);
		return strdup("");
	}
	for (i = 0; i < n && out != NULL; i++) {
		q = PQescapeIdentifier(c, names[i], strlen(names[i]));
		if (q == NULL || asprintf(&next, "%s%s%s", out, i ? ", " : "", q) < 0)
			next = NULL;
		PQfreemem(q);
		free(out);
		out = next;
	}
	if (out != NULL && asprintf(&next, "%s)", out) >= 0) {
		free(out);
		out = next;
	} else {
		free(out);
		out = NULL;
	}
	free(names);
	return out;
 fail:
	free(names);
	free(out);
	return NULL;
}

static int
sha_differs(const struct job *j, char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: sha256 differs from the base "
	    "manifest (replaced object)", j->chunk.key);
}

/*
 * COPY one chunk (fd) and record it, in one transaction; check_sha: the
 * chunk was not verified first, so its sha256 is checked against the
 * manifest's before the COPY ends, and a difference aborts it.
 */
static int
copy_chunk(PGconn *c, const struct baseload_opts *o, const struct job *j,
    int fd, bool check_sha, char **errmsg)
{
	struct sink k = { c, o, j, NULL, 0, 0, NULL };
	const uint8_t *key = o->key;
	const char *params[1] = { j->chunk.key };
	char *qt = target_qualify(c, j->schema, j->name), *sql = NULL;
	char *list = column_list(c, o, j);
	char what[1024], why[1024];
	uint8_t sha[32];
	PGresult *res;
	int r;

	snprintf(what, sizeof(what), "COPY into %s.%s (base chunk %s)", j->schema,
	    j->name, j->chunk.key);
	if (qt == NULL || list == NULL || asprintf(&sql, "COPY %s %s FROM STDIN",
	    qt, list) < 0)
		sql = NULL;
	PQfreemem(qt);
	free(list);
	if (sql == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	r = target_exec(c, "BEGIN", errmsg);
	res = r == 0 ? PQexec(c, sql) : NULL;
	free(sql);
	if (r == 0 && PQresultStatus(res) != PGRES_COPY_IN)
		r = target_error(c, res, errmsg, what);
	PQclear(res);
	if (r == 0)
		r = blob_read_fd(fd, j->chunk.key, key, "copy", send_copy, &k,
		    check_sha ? sha : NULL, errmsg);
	if (r == 0 && check_sha && memcmp(sha, j->chunk.sha256, 32) != 0)
		r = sha_differs(j, errmsg);	/* the COPY is aborted below */
	if (r == 0 && k.plen > 0)	/* a last line without its newline */
		r = put_line(&k, k.pend, k.plen);
	if (r != 0 && k.err != NULL) {
		free(*errmsg);
		*errmsg = k.err;
		k.err = NULL;
	}
	free(k.pend);
	free(k.err);
	if (r != 0) {
		/* the target's log says why the COPY was aborted */
		snprintf(why, sizeof(why), "logship: %s", *errmsg != NULL ?
		    *errmsg : "the chunk could not be read");
		why[strcspn(why, "\n")] = '\0';
		PQputCopyEnd(c, why);
	} else
		PQputCopyEnd(c, NULL);
	res = PQgetResult(c);
	if (r == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
		r = target_error(c, res, errmsg, what);
	PQclear(res);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	if (r == 0) {
		res = PQexecParams(c, "INSERT INTO logship.base_chunks (key) "
		    "VALUES ($1)", 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			r = target_error(c, res, errmsg, "recording a chunk");
		PQclear(res);
	}
	if (r == 0)
		return target_exec(c, "COMMIT", errmsg);
	PQclear(PQexec(c, "ROLLBACK"));
	return r;
}

static int
chunk_recorded(PGconn *c, const char *key, int *yes, char **errmsg)
{
	const char *params[1] = { key };
	PGresult *res = PQexecParams(c, "SELECT 1 FROM logship.base_chunks WHERE "
	    "key = $1", 1, NULL, params, NULL, NULL, 0);
	int r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		r = target_error(c, res, errmsg, "base progress");
	else
		*yes = PQntuples(res) > 0;
	PQclear(res);
	return r;
}

/*
 * One chunk: skip if the target has it; else fetch, verify, load.  A
 * chunk of an unencrypted store loaded as it is (no filters, no ID map) is
 * checked against the manifest's sha256 while it streams into the COPY,
 * which is aborted (nothing committed) when it differs: one pass, so the
 * target does not wait while the restore reads the chunk twice.  An
 * encrypted chunk is authenticated whole before any of it reaches the
 * target (blob.h: its data is not authenticated until the end), and a
 * transformed one before the transform sees it.
 */
static int
load_one(struct loader *l, PGconn *c, const struct job *j, char **errmsg)
{
	const struct baseload_opts *o = l->o;
	uint8_t sha[32];
	int fd = -1, r, done = 0;
	bool one_pass = o->key == NULL && o->transform == NULL;

	if ((r = chunk_recorded(c, j->chunk.key, &done, errmsg)) != 0)
		return r;
	if (done) {	/* the target is authoritative: LMDB follows */
		pthread_mutex_lock(&l->lock);
		l->stats.skipped++;
		pthread_mutex_unlock(&l->lock);
		return state_base_mark(o->state, j->chunk.key, errmsg);
	}
	if ((r = catalog_fetch(o->store, j->chunk.key, &fd, errmsg)) != 0)
		return r;
	if (!one_pass && (r = blob_read_fd(fd, j->chunk.key, o->key, "copy",
	    NULL, NULL, sha, errmsg)) == 0 &&
	    memcmp(sha, j->chunk.sha256, 32) != 0)
		r = sha_differs(j, errmsg);
	if (r == 0 && (r = copy_chunk(c, o, j, fd, one_pass, errmsg)) == 0)
		r = state_base_mark(o->state, j->chunk.key, errmsg);
	close(fd);
	if (r == 0) {
		pthread_mutex_lock(&l->lock);
		l->stats.chunks++;
		l->stats.rows += j->chunk.rows;
		l->stats.bytes += j->chunk.bytes;
		pthread_mutex_unlock(&l->lock);
		log_info("restore", "base: loaded %s.%s chunk %s rows=%" PRIu64,
		    j->schema, j->name, j->chunk.key, j->chunk.rows);
	}
	return r;
}

static struct job *
take(struct loader *l, const struct pool *pool)
{
	struct job *j = NULL;

	pthread_mutex_lock(&l->lock);
	while (!pool_stopping(pool) && l->next < l->njobs && !*l->o->stop) {
		j = &l->jobs[l->next++];
		if (l->o->include == NULL ||
		    l->o->include(l->o->transform_arg, j->schema, j->name))
			break;
		j = NULL;	/* a table the filters leave out */
		l->finished++;
	}
	pthread_mutex_unlock(&l->lock);
	return j;
}

/* A pool worker: load chunks on one target connection. */
static int
worker(const struct pool *pool, void *arg, char **errmsg)
{
	struct loader *l = arg;
	PGconn *c = NULL;
	struct job *j;
	int r;

	if ((r = target_connect(l->o->conninfo, &c, errmsg)) != 0 ||
	    (r = restore_session_setup(c, errmsg)) != 0)
		goto out;
	while ((j = take(l, pool)) != NULL) {
		if ((r = load_one(l, c, j, errmsg)) != 0)
			break;
		pthread_mutex_lock(&l->lock);
		l->finished++;
		pthread_mutex_unlock(&l->lock);
	}
 out:
	PQfinish(c);
	return r;
}

static int
set_columns(const struct base_manifest *m, size_t table, struct job *j)
{
	uint32_t type;
	size_t i;

	j->ncols = base_manifest_ncolumns(m, table);
	if ((j->cols = calloc(j->ncols + 1, sizeof(*j->cols))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < j->ncols; i++)
		base_manifest_columns(m, table, i, &j->cols[i], &type);
	return 0;
}

static int
plan_jobs(struct loader *l, char **errmsg)
{
	const struct base_manifest *m = l->o->manifest;
	struct base_table t;
	size_t i, k, n = base_manifest_nchunks(m);

	if ((l->jobs = calloc(n ? n : 1, sizeof(*l->jobs))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (i = 0; base_manifest_table(m, i, &t) == 0; i++)
		for (k = 0; k < t.nchunks && l->njobs < n; k++) {
			struct job *j = &l->jobs[l->njobs];
			if (base_manifest_chunk(m, i, k, &j->chunk) != 0)
				return ls_errf(errmsg, LS_ERR_CORRUPT, "base "
				    "manifest: bad chunk %zu of %s.%s", k,
				    t.schema, t.name);
			j->schema = t.schema;
			j->name = t.name;
			if (set_columns(m, i, j) != 0)
				return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			l->njobs++;
		}
	return 0;
}

int
baseload_run(const struct baseload_opts *o, struct baseload_stats *stats,
    char **errmsg)
{
	struct loader l = { .o = o };
	int n = o->jobs < 1 ? 1 : o->jobs > 64 ? 64 : o->jobs, r;
	size_t i;

	if (o->transform != NULL)
		n = 1;	/* the transform is not thread-safe */

	pthread_mutex_init(&l.lock, NULL);
	if ((r = plan_jobs(&l, errmsg)) != 0)
		goto out;
	if ((r = pool_run(n, worker, &l, errmsg)) != 0)
		ls_errprefix(errmsg, r, "base load");
	else if (*o->stop)
		r = ls_errf(errmsg, LS_ERR_END, "stopped during the base load");
	else if (l.finished != l.njobs)	/* never silently partial */
		r = ls_errf(errmsg, LS_ERR_INTERNAL, "base load: %zu of %zu "
		    "chunks were not loaded (no worker finished them)",
		    l.njobs - l.finished, l.njobs);
	*stats = l.stats;
 out:
	for (i = 0; l.jobs != NULL && i < l.njobs; i++)
		free(l.jobs[i].cols);
	free(l.jobs);
	pthread_mutex_destroy(&l.lock);
	return r;
}
