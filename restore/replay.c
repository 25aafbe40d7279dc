/*
 * replay.c: logship-restore's main job (design.md, "Restore protocol").
 *
 *	phase NEW	pre-data (pg_dump's schema) through psql, in one
 *			transaction with the marker's move to SCHEMA
 *	phase SCHEMA	base chunks by COPY, in parallel (baseload.c)
 *	phase DATA	post-data (indexes, constraints), with the move to STREAM
 *	phase STREAM	segments in order, many source transactions per target
 *			transaction while catching up, never splitting one
 *
 * The target is authoritative: its logship.applied row is written in the
 * same transaction as the data it covers; LMDB (--state-dir) is updated
 * after, and reconciled from the target at every start.  A lost target
 * connection is retried with back-off and the restore resumes exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "apply.h"
#include "baseload.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "format/blob.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "pg/pgtool.h"
#include "prefetch.h"
#include "replay.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "rewrite.h"
#include "state.h"
#include "store/http.h"
#include "store/store.h"
#include "target.h"

volatile sig_atomic_t restore_stop;


struct run {
	const struct replay_opts *o;
	struct store	*store;
	uint8_t		 key[32];
	const uint8_t	*keyp;
	struct state	*state;
	struct catalog_identity id;
	char		 store_id[160];
	char		 target_id[256];
	PGconn		*c;
	struct base_manifest *m;
	struct state_marker mk;
	struct applier	*ap;
	struct rewrite	*rw;		/* filters and ID map of this session */
	struct relcache	*seen;		/* every source relation of this session */
	bool		 bad_input;	/* the failure is the user's input */
	bool		 done;		/* reached the end or the until point */
	bool		 applied_any;
	bool		 progressed;	/* committed something this session */
	bool		 generation_end;	/* the store moved to a newer one */
	bool		 origin;	/* a replication origin tracks the source */
	bool		 connected;	/* reached the target at least once */
	uint64_t	 stop_before;	/* end LSN of a transaction not to apply */
	char		*stop_why;	/* and why (a schema mismatch) */
	uint64_t	 segs, txns, batch_txns, rows_total, missing_total;
	int64_t		 start_us, progress_us;
	int		 commits, crash_after;
	int		 map_commits, crash_map;
};

/* ---- setup ---- */

static volatile sig_atomic_t restore_hup;

static void
on_stop(int sig)
{
	(void)sig;
	restore_stop++;
}

static void
on_hup(int sig)
{
	(void)sig;
	restore_hup = 1;
}

static int
setup(struct run *r, char **errmsg)
{
	struct sigaction sa;
	const char *crash = getenv("LOGSHIP_TEST_CRASH_AFTER_TARGET_COMMIT");
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	r->crash_after = crash != NULL ? atoi(crash) : 0;
	crash = getenv("LOGSHIP_TEST_CRASH_AFTER_MAP_COMMIT");
	r->crash_map = crash != NULL ? atoi(crash) : 0;
	http_global_init();	/* before any thread */
	r->start_us = ls_now_us();
	if ((rc = log_init(r->o->log_format, r->o->log_file, r->o->verbose,
	    errmsg)) != 0 ||
	    (r->o->key_file != NULL && (rc = ls_key_load(r->o->key_file, r->key,
	    errmsg)) != 0) ||
	    (rc = store_open_opts(r->o->store_url, r->o->store_opts, &r->store,
	    errmsg)) != 0 ||
	    (rc = state_open(r->o->state_dir, &r->state, errmsg)) != 0)
		return rc;
	r->keyp = r->o->key_file != NULL ? r->key : NULL;
	rc = catalog_identity_read(r->store, &r->id, errmsg);
	if (rc == LS_ERR_NOTFOUND)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds no "
		    "logship.json: not a logship store, or the agent has not "
		    "started yet", store_url(r->store));
	if (rc != 0)
		return rc;
	snprintf(r->store_id, sizeof(r->store_id), "system %" PRIu64
	    " database %s created %" PRId64, r->id.system_id, r->id.database,
	    r->id.created);
	return 0;
}

/* ---- phases ---- */

static int
commit_marker(struct run *r, char **errmsg)
{
	char sql[512];
	int rc;

	if ((rc = target_marker_sql(r->c, &r->mk, sql, sizeof(sql))) != 0 ||
	    (rc = target_exec(r->c, sql, errmsg)) != 0)
		return rc;
	return state_put_marker(r->state, &r->mk, errmsg);
}

/* Which lines of a pg_dump section go to psql. */
enum section_mode {
	SECTION_ALL,
	SECTION_NO_REFRESH,	/* post-data before the data: no REFRESH yet */
	SECTION_REFRESH,	/* only the REFRESH MATERIALIZED VIEW lines */
	SECTION_NO_TXN,		/* large objects: one transaction, not many */
};

/* Bytes in, whole lines out: a line cut between two reads waits. */
struct lines {
	char	*pend;
	size_t	 plen, pcap;
};

struct section_out {
	int	 fd;
	bool	 fk_not_valid;	/* filters: references may dangle */
	enum section_mode mode;
	struct lines lines;
};

/* Each complete line of what is pending and buf, to fn. */
static int
lines_feed(struct lines *l, const void *buf, size_t len,
    int (*fn)(void *, const char *, size_t), void *arg)
{
	char *bigger, *p, *nl;
	int rc;

	if (l->plen + len + 1 > l->pcap) {
		l->pcap = (l->plen + len + 1) * 2;
		if ((bigger = realloc(l->pend, l->pcap)) == NULL)
			return LS_ERR_NOMEM;
		l->pend = bigger;
	}
	memcpy(l->pend + l->plen, buf, len);
	l->plen += len;
	for (p = l->pend;
	    (nl = memchr(p, '\n', l->plen - (size_t)(p - l->pend))) != NULL;
	    p = nl + 1)
		if ((rc = fn(arg, p, (size_t)(nl - p + 1))) != 0)
			return rc;
	l->plen -= (size_t)(p - l->pend);
	memmove(l->pend, p, l->plen);
	return 0;
}

static bool
line_is(const char *line, size_t len, const char *s)
{
	size_t n = strlen(s);

	return len >= n && memcmp(line, s, n) == 0;
}

/*
 * Under filters a kept row may reference one left out: foreign keys are
 * added NOT VALID (checked for new rows, not for the restored ones).
 * pg_dump ends such a statement with "REFERENCES ...;" on its own line.
 * pg_dump writes each REFRESH MATERIALIZED VIEW, BEGIN and COMMIT of these
 * sections on a line of its own.
 */
static int
write_line(void *arg, const char *line, size_t len)
{
	struct section_out *o = arg;
	bool refresh = line_is(line, len, "REFRESH MATERIALIZED VIEW ");

	if ((o->mode == SECTION_NO_REFRESH && refresh) ||
	    (o->mode == SECTION_REFRESH && !refresh) ||
	    (o->mode == SECTION_NO_TXN && (line_is(line, len, "BEGIN;\n") ||
	    line_is(line, len, "COMMIT;\n"))))
		return 0;
	if (o->fk_not_valid && len >= 2 && line[len - 2] == ';' &&
	    memmem(line, len, " REFERENCES ", 12) != NULL) {
		return ls_write_all(o->fd, line, len - 2) == 0 &&
		    ls_write_all(o->fd, " NOT VALID;\n", 12) == 0 ? 0 : LS_ERR_IO;
	}
	return ls_write_all(o->fd, line, len) == 0 ? 0 : LS_ERR_IO;
}

static int
write_fd(void *arg, const void *buf, size_t len)
{
	struct section_out *o = arg;

	return lines_feed(&o->lines, buf, len, write_line, o);
}

/* A pg_dump section as plain SQL in a temp file; path in out. */
static int
section_file(struct run *r, const char *section, enum section_mode mode,
    char *path, size_t len, char **errmsg)
{
	struct base_chunk c;
	struct section_out so = { -1, false, mode, { NULL, 0, 0 } };
	uint8_t sha[32];
	int in = -1, out, rc;
	const char *dir = getenv("TMPDIR");

	if ((rc = base_manifest_section(r->m, section, &c)) != 0)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "base manifest: no %s",
		    section);
	snprintf(path, len, "%s/logship-%s.XXXXXX", dir ? dir : "/tmp", section);
	if ((out = mkstemp(path)) < 0)
		return ls_errf(errmsg, LS_ERR_IO, "%s: %s", path, strerror(errno));
	if ((rc = catalog_fetch(r->store, c.key, &in, errmsg)) == 0 &&
	    (rc = blob_read_fd(in, c.key, r->keyp, "schema", NULL, NULL, sha,
	    errmsg)) == 0 && memcmp(sha, c.sha256, 32) != 0)
		rc = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: sha256 differs from the "
		    "base manifest (replaced object)", c.key);
	so.fd = out;
	so.fk_not_valid = rewrite_filtering(r->rw) &&
	    strcmp(section, "post_data") == 0;
	if (rc == 0)
		rc = blob_read_fd(in, c.key, r->keyp, "schema", write_fd, &so,
		    NULL, errmsg);
	if (rc == 0 && so.lines.plen > 0 &&
	    ls_write_all(out, so.lines.pend, so.lines.plen) != 0)
		rc = ls_errf(errmsg, LS_ERR_IO, "%s: %s", path, strerror(errno));
	free(so.lines.pend);
	if (so.fk_not_valid && mode != SECTION_REFRESH)
		log_info("restore", "filters in use: foreign keys are added NOT "
		    "VALID (restored rows may reference rows left out)");
	if (in >= 0)
		close(in);
	close(out);
	if (rc != 0)
		unlink(path);
	return rc;
}

/*
 * Run a section with psql in one transaction that also moves the marker to
 * phase next (flags included).  After post-data, the agent's own
 * publication is dropped: it is logship's, not the user's, and on the
 * target it would refuse UPDATE and DELETE on tables without a replica
 * identity.
 */
static int
run_section(struct run *r, const char *section, enum section_mode mode,
    int next_phase, char **errmsg)
{
	struct state_marker next = r->mk;
	const char *pub = base_manifest_publication(r->m);
	char path[4096], sql[512], drop[512] = "SELECT 1", *qpub;
	const char *args[] = { "-X", "-q", "-v", "ON_ERROR_STOP=1",
	    "--single-transaction", "-f", path, "-c", drop, "-c", sql, NULL };
	int rc;

	next.phase = next_phase;
	if (strcmp(section, "post_data") == 0 && mode != SECTION_REFRESH) {
		qpub = PQescapeIdentifier(r->c, pub ? pub : "logship",
		    strlen(pub ? pub : "logship"));
		if (qpub != NULL)
			snprintf(drop, sizeof(drop), "DROP PUBLICATION IF EXISTS %s",
			    qpub);
		PQfreemem(qpub);
	}
	if ((rc = target_marker_sql(r->c, &next, sql, sizeof(sql))) != 0 ||
	    (rc = section_file(r, section, mode, path, sizeof(path),
	    errmsg)) != 0)
		return rc;
	rc = pgtool_run("psql", NULL, r->o->target, args, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, strcmp(section, "pre_data") == 0 ? "psql pre-data" :
	    strcmp(section, "post_data") == 0 ? "psql post-data" :
	    "psql large objects", NULL, errmsg);
	unlink(path);
	if (rc != 0)
		return rc;
	r->mk.phase = next.phase;
	log_info("restore", "%s applied%s", section, mode == SECTION_REFRESH ?
	    " (materialized views refreshed)" : "");
	return state_put_marker(r->state, &r->mk, errmsg);
}

/* "schema", "name" pairs of the manifest's tables; *n pairs. */
static const char **
manifest_tables(const struct base_manifest *m, size_t *n)
{
	struct base_table t;
	const char **v = calloc(2 * base_manifest_ntables(m) + 2, sizeof(*v));
	size_t i;

	for (i = 0, *n = 0; v != NULL && base_manifest_table(m, i, &t) == 0; i++) {
		v[2 * i] = t.schema;
		v[2 * i + 1] = t.name;
		(*n)++;
	}
	return v;
}

/* First contact with this target: refuse rows unless --truncate. */
static int
init_target(struct run *r, char **errmsg)
{
	size_t n = 0;
	const char **tables = manifest_tables(r->m, &n);
	char *busy = NULL;
	size_t ntables = 0;
	int rc;

	if (tables == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	rc = target_existing(r->c, tables, n, &ntables, errmsg);
	if (rc == 0 && ntables > 0 && ntables < n) {
		r->bad_input = true;
		rc = ls_errf(errmsg, LS_ERR_INVALID, "the target has %zu of the "
		    "%zu restored tables: restore into an empty database, or "
		    "create all of them (pg_dump --schema-only) first", ntables, n);
	}
	if (rc == 0 && ntables > 0)
		rc = target_nonempty(r->c, tables, n, &busy, errmsg);
	if (rc == 0 && busy != NULL && r->o->remap && !r->o->truncate) {
		log_info("restore", "id-mode remap: restoring next to the rows "
		    "already in %s", busy);
		free(busy);
		busy = NULL;
	}
	if (rc == 0 && busy != NULL && !r->o->truncate) {
		r->bad_input = true;
		rc = ls_errf(errmsg, LS_ERR_INVALID, "the target is not empty: "
		    "%s already hold rows; restore into an empty database, or "
		    "pass --truncate to empty exactly the restored tables first",
		    busy);
	} else if (rc == 0 && busy != NULL)
		rc = target_truncate(r->c, tables, n, errmsg);
	if (rc == 0)
		rc = target_init(r->c, r->store_id, r->id.generation, errmsg);
	memset(&r->mk, 0, sizeof(r->mk));
	memcpy(r->mk.generation, r->id.generation, 17);
	/* a schema already there is kept: skip pre-data and post-data */
	r->mk.phase = ntables > 0 ? PHASE_SCHEMA | PHASE_SCHEMA_GIVEN : PHASE_NEW;
	if (rc == 0 && ntables > 0)
		log_info("restore", "the target already has the schema: loading "
		    "data into it (pre-data and post-data sections skipped)");
	free(busy);
	free(tables);
	return rc == 0 ? commit_marker(r, errmsg) : rc;
}

/* ---- ID remapping ---- */

struct assign_ctx {
	struct run		*r;
	struct state_txn	*txn;
	const char		*schema, *name;
	const char		**cols;
	size_t			 ncols;
	struct lines		 lines;
	char			**errmsg;
};

/* One base row: if the filters keep it, draw and map its new key. */
static int
assign_line(void *arg, const char *line, size_t len)
{
	struct assign_ctx *x = arg;

	return rewrite_base_key(x->r->rw, x->txn, x->schema, x->name, x->cols,
	    x->ncols, line, len, x->errmsg);
}

/* Lines of a remapped table's chunk: draw and map a new key for each. */
static int
assign_bytes(void *arg, const void *buf, size_t len)
{
	struct assign_ctx *x = arg;

	return lines_feed(&x->lines, buf, len, assign_line, x);
}

static int
assign_chunk(struct run *r, struct assign_ctx *x, const struct base_chunk *c,
    char **errmsg)
{
	char mark[512];
	bool done = false;
	int fd = -1, rc;

	snprintf(mark, sizeof(mark), "keys:%s", c->key);
	if ((rc = state_base_loaded(r->state, mark, &done, errmsg)) != 0 || done)
		return rc;
	if ((rc = catalog_fetch(r->store, c->key, &fd, errmsg)) != 0)
		return rc;
	x->lines.plen = 0;
	if ((rc = blob_read_fd(fd, c->key, r->keyp, "copy", NULL, NULL, NULL,
	    errmsg)) == 0 && (rc = state_txn_begin(r->state, &x->txn, errmsg)) == 0) {
		rc = blob_read_fd(fd, c->key, r->keyp, "copy", assign_bytes, x,
		    NULL, errmsg);
		rc = rc == 0 ? state_txn_commit(x->txn, errmsg) :
		    (state_txn_abort(x->txn), rc);
	}
	close(fd);
	return rc == 0 ? state_base_mark(r->state, mark, errmsg) : rc;
}

/* Phase one of a remapped base: every remapped table's keys into the map. */
static int
map_base_keys(struct run *r, char **errmsg)
{
	struct assign_ctx x = { .r = r, .errmsg = errmsg };
	struct base_table t;
	struct base_chunk c;
	uint32_t type;
	size_t i, k;
	int rc = 0;

	for (i = 0; rc == 0 && base_manifest_table(r->m, i, &t) == 0; i++) {
		if (!rewrite_maps_keys(r->rw, t.schema, t.name))
			continue;
		x.schema = t.schema;
		x.name = t.name;
		x.ncols = base_manifest_ncolumns(r->m, i);
		free(x.cols);
		x.cols = calloc(x.ncols + 1, sizeof(*x.cols));
		for (k = 0; x.cols != NULL && k < x.ncols; k++)
			base_manifest_columns(r->m, i, k, &x.cols[k], &type);
		for (k = 0; rc == 0 && k < t.nchunks; k++)
			if ((rc = base_manifest_chunk(r->m, i, k, &c)) == 0)
				rc = assign_chunk(r, &x, &c, errmsg);
	}
	free(x.cols);
	free(x.lines.pend);
	if (rc != 0)
		return rc;
	r->mk.phase |= PHASE_KEYS_MAPPED;
	return commit_marker(r, errmsg);
}

static int
load_base(struct run *r, char **errmsg)
{
	struct baseload_opts bo = { r->o->target, r->store, r->state, r->keyp,
	    r->m, r->o->jobs, &restore_stop, NULL, NULL, NULL, NULL };
	struct baseload_stats st;
	int64_t t0 = ls_now_us();
	int rc;

	if (rewrite_remapping(r->rw) &&
	    ((rc = rewrite_open_remap(r->rw, errmsg)) != 0 ||
	    (!(r->mk.phase & PHASE_KEYS_MAPPED) &&
	    (rc = map_base_keys(r, errmsg)) != 0)))
		return rc;
	rewrite_baseload(r->rw, &bo);
	if ((rc = baseload_run(&bo, &st, errmsg)) != 0)
		return rc;
	log_info("restore", "base: %" PRIu64 " chunks loaded (%" PRIu64
	    " already there), %" PRIu64 " rows, %.1f MB in %.1f s", st.chunks,
	    st.skipped, st.rows, (double)st.bytes / 1e6,
	    (double)(ls_now_us() - t0) / 1e6);
	r->mk.phase = PHASE_DATA | (r->mk.phase & ~PHASE_MASK);
	return commit_marker(r, errmsg);
}

/*
 * After the data: the large objects, then post-data (indexes, constraints,
 * and the REFRESH of each materialized view populated on the source, in
 * dependency order; when post-data ran early, only those refreshes).
 */
static int
finish_schema(struct run *r, char **errmsg)
{
	struct base_chunk c;
	int flags = r->mk.phase & ~PHASE_MASK;

	if (!(flags & PHASE_LOBS_DONE) &&
	    base_manifest_section(r->m, "large_objects", &c) == 0) {
		log_info("restore", "restoring %" PRIu64 " large object(s)",
		    c.rows);
		return run_section(r, "large_objects", SECTION_NO_TXN, PHASE_DATA |
		    flags | PHASE_LOBS_DONE, errmsg);
	}
	if (flags & PHASE_SCHEMA_GIVEN) {
		r->mk.phase = PHASE_STREAM | flags;
		return commit_marker(r, errmsg);
	}
	return run_section(r, "post_data", flags & PHASE_POST_EARLY ?
	    SECTION_REFRESH : SECTION_ALL, PHASE_STREAM | flags, errmsg);
}

/* ---- segments ---- */

static void
progress(struct run *r, bool final)
{
	int64_t now = ls_now_us();
	double secs = (double)(now - r->start_us) / 1e6;
	uint64_t rows = r->rows_total + (r->ap ? applier_rows(r->ap) : 0);
	char lag[32] = "-";

	if (!final && (!isatty(2) || now - r->progress_us < 1000000))
		return;
	r->progress_us = now;
	if (r->mk.commit_time > 0)
		snprintf(lag, sizeof(lag), "%.1fs",
		    (double)(now - r->mk.commit_time) / 1e6);
	if (final)
		log_info("restore", "summary: segments=%" PRIu64 " transactions=%"
		    PRIu64 " rows=%" PRIu64 " seconds=%.1f", r->segs, r->txns,
		    rows, secs);
	else
		fprintf(stderr, "\rsegments %" PRIu64 "  transactions %" PRIu64
		    "  rows %" PRIu64 "  %.0f rows/s  lag %s   ", r->segs,
		    r->txns, rows, secs > 0 ? (double)rows / secs : 0.0, lag);
}

static int
commit_batch(struct run *r, char **errmsg)
{
	char sql[512], origin[256], lsn[32];
	bool wrote;
	int rc;

	if (!applier_in_batch(r->ap))
		return applier_sync(r->ap, errmsg);	/* sequence samples */
	/* map entries first: a crash before the target commits leaves
	 * entries tagged beyond its marker, dropped at the next start */
	if ((rc = rewrite_map_commit(r->rw, &wrote, errmsg)) != 0) {
		applier_rollback(r->ap);
		return rc;
	}
	if (wrote && r->crash_map > 0 && ++r->map_commits == r->crash_map)
		raise(SIGKILL);		/* tests: between LMDB and target */
	ls_lsn_format(r->mk.end_lsn, lsn);
	snprintf(origin, sizeof(origin), "SELECT pg_replication_origin_xact_setup("
	    "'%s', 'epoch'::timestamptz + %" PRId64 " * interval '1 microsecond')",
	    lsn, r->mk.commit_time);
	if ((rc = target_marker_sql(r->c, &r->mk, sql, sizeof(sql))) != 0 ||
	    (rc = applier_commit(r->ap, sql, r->origin ? origin : NULL,
	    errmsg)) != 0)
		return rc;
	if (r->crash_after > 0 && ++r->commits == r->crash_after)
		raise(SIGKILL);		/* tests: between target and LMDB */
	r->batch_txns = 0;
	r->applied_any = true;
	r->progressed = true;
	return state_put_marker(r->state, &r->mk, errmsg);
}

/* Is this transaction beyond --until-lsn / --until-time? */
static bool
beyond_until(const struct run *r, const struct ls_txn *t)
{
	return (r->o->has_until_lsn && t->commit_lsn > r->o->until_lsn) ||
	    (r->o->has_until_time && t->commit_time > r->o->until_time);
}

struct seg_ctx {
	struct run		*r;
	const struct prefetch_item *it;
	bool			 skip;	/* current transaction already applied */
	uint64_t		 end_lsn;	/* of the current transaction */
	uint64_t		 commit_lsn;
	int64_t			 commit_time;
	uint32_t		 xid;
};

/* Source relation: remembered; the target sees its filtered shape. */
static int
on_relation(struct run *r, const struct ls_relation *rel, char **errmsg)
{
	if (relcache_put(r->seen, rel) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	return rewrite_relation(r->rw, r->ap, rel, errmsg);
}

/* Tables known to this restore: "schema", "name" pairs, without repeats. */
struct known {
	const char	**v;
	size_t		 n, cap;
	int		 oom;
};

static void
known_add(struct known *k, const char *schema, const char *name)
{
	const char **bigger;
	size_t i;

	for (i = 0; i < k->n; i++)
		if (strcmp(k->v[2 * i], schema) == 0 &&
		    strcmp(k->v[2 * i + 1], name) == 0)
			return;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		if ((bigger = realloc(k->v, 2 * k->cap * sizeof(*bigger))) == NULL) {
			k->oom = 1;
			return;
		}
		k->v = bigger;
	}
	k->v[2 * k->n] = schema;
	k->v[2 * k->n++ + 1] = name;
}

static void
known_rel(void *arg, const struct ls_relation *rel)
{
	known_add(arg, rel->schema, rel->name);
}

/* Is schema.name among the [schema, name] pairs of the JSON array? */
static bool
published(json_t *tables, const char *schema, const char *name)
{
	size_t i;
	json_t *t;

	json_array_foreach(tables, i, t)
		if (strcmp(json_string_value(json_array_get(t, 0)) ?
		    json_string_value(json_array_get(t, 0)) : "", schema) == 0 &&
		    strcmp(json_string_value(json_array_get(t, 1)) ?
		    json_string_value(json_array_get(t, 1)) : "", name) == 0)
			return true;
	return false;
}

/*
 * The agent's sample of the tables the source publishes (a message between
 * transactions, written when the set changes).  A table restored here that
 * the source no longer publishes (dropped, renamed, taken out of the
 * publication) while the target still has it stops the restore, with
 * everything before this point committed.
 */
static int
tables_check(struct seg_ctx *x, const struct ls_message *m, char **errmsg)
{
	struct run *r = x->r;
	struct known k = { NULL, 0, 0, 0 }, gone = { NULL, 0, 0, 0 };
	struct base_table t;
	json_error_t je;
	json_t *o = json_loadb(m->content, m->len, 0, &je), *tables;
	bool *present = NULL;
	char lsn[32], *list = NULL, *next;
	size_t i;
	int rc = 0;

	tables = json_object_get(o, "tables");
	if (!json_is_array(tables)) {
		json_decref(o);
		return ls_errf(errmsg, LS_ERR_CORRUPT, "segment %016" PRIx64 ": "
		    "%s message does not parse", x->it->segno, LS_TABLES_MESSAGE);
	}
	for (i = 0; base_manifest_table(r->m, i, &t) == 0; i++)
		known_add(&k, t.schema, t.name);
	relcache_each(r->seen, known_rel, &k);
	for (i = 0; i < k.n; i++)
		if (!published(tables, k.v[2 * i], k.v[2 * i + 1]) &&
		    rewrite_includes(r->rw, k.v[2 * i], k.v[2 * i + 1]) &&
		    strcmp(k.v[2 * i], "logship") != 0)
			known_add(&gone, k.v[2 * i], k.v[2 * i + 1]);
	if (k.oom || gone.oom || (gone.n > 0 &&
	    (present = calloc(gone.n, sizeof(*present))) == NULL))
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (rc == 0 && gone.n > 0 && (rc = commit_batch(r, errmsg)) == 0)
		rc = applier_tables_present(r->ap, gone.v, gone.n, present, errmsg);
	for (i = 0; rc == 0 && i < gone.n; i++) {
		if (!present[i])
			continue;
		if (asprintf(&next, "%s%s%s.%s", list ? list : "", list ? ", " :
		    "", gone.v[2 * i], gone.v[2 * i + 1]) < 0)
			next = NULL;
		free(list);
		list = next;
	}
	if (rc == 0 && list != NULL) {
		ls_lsn_format(m->lsn, lsn);
		rc = ls_errf(errmsg, LS_ERR_SCHEMA, "segment %016" PRIx64 ", "
		    "source LSN %s: the source no longer publishes table(s) %s "
		    "(dropped, renamed, or taken out of its publication); the "
		    "target still has them, so it would silently keep data the "
		    "source no longer has: drop (or rename) them on the target, "
		    "or leave them out with --filter; then rerun logship-restore "
		    "(everything before this point is committed)", x->it->segno,
		    lsn, list);
	}
	free(list);
	free(present);
	free(k.v);
	free(gone.v);
	json_decref(o);
	return rc;
}

/*
 * The source's table no longer matches the target's: name the place, and
 * arrange for the next session to commit everything before this
 * transaction and stop there (replay_main).
 */
static int
schema_stop(struct seg_ctx *x, char **errmsg)
{
	struct run *r = x->r;
	char lsn[32], when[64];

	ls_lsn_format(x->commit_lsn, lsn);
	ls_format_time(x->commit_time, when, sizeof(when));
	ls_errprefix(errmsg, LS_ERR_SCHEMA, "segment %016" PRIx64 ", source "
	    "transaction %u committed at %s (%s)", x->it->segno, x->xid, lsn,
	    when);
	r->stop_before = x->end_lsn;
	free(r->stop_why);
	r->stop_why = *errmsg != NULL ? strdup(*errmsg) : NULL;
	return LS_ERR_SCHEMA;
}

static int
on_record(struct seg_ctx *x, const struct ls_record *rec, char **errmsg)
{
	struct run *r = x->r;
	int rc;

	if (r->done)	/* past the until point: only sequences, never behind */
		return rec->kind == LS_REC_SEQUENCE ?
		    applier_sequence(r->ap, &rec->u.seq, errmsg) : 0;
	switch (rec->kind) {
	case LS_REC_RELATION:
		return on_relation(r, &rec->u.rel, errmsg);
	case LS_REC_SEQUENCE:
		return rewrite_sequence(r->rw, r->ap, &rec->u.seq, errmsg);
	case LS_REC_BEGIN:
		x->end_lsn = rec->u.txn.end_lsn;
		x->commit_lsn = rec->u.txn.commit_lsn;
		x->commit_time = rec->u.txn.commit_time;
		x->xid = rec->u.txn.xid;
		if ((x->skip = rec->u.txn.end_lsn <= r->mk.end_lsn))
			return 0;
		if (beyond_until(r, &rec->u.txn) || (r->stop_before != 0 &&
		    rec->u.txn.end_lsn >= r->stop_before)) {
			r->done = true;
			return 0;
		}
		applier_context(r->ap, x->it->segno, x->commit_lsn, x->xid);
		return applier_in_batch(r->ap) ? 0 : applier_begin(r->ap, errmsg);
	case LS_REC_CHANGE:
		if (x->skip)
			return 0;
		rc = rewrite_change(r->rw, r->ap, &rec->u.change, x->end_lsn,
		    x->xid, errmsg);
		if (rc == LS_ERR_SCHEMA)
			return schema_stop(x, errmsg);
		return rc;
	case LS_REC_COMMIT:
		if (x->skip)
			return 0;
		r->mk.segno = x->it->segno;
		r->mk.end_lsn = rec->u.txn.end_lsn;
		memcpy(r->mk.seg_sha, x->it->sha, 32);
		r->mk.txns++;
		r->txns++;
		if (++r->batch_txns >= (uint64_t)r->o->batch_txns &&
		    (rc = commit_batch(r, errmsg)) != 0)
			return rc;
		return restore_stop ? LS_ERR_END : 0;
	case LS_REC_MESSAGE:
		if (!rec->u.msg.transactional &&
		    strcmp(rec->u.msg.prefix, LS_TABLES_MESSAGE) == 0)
			return tables_check(x, &rec->u.msg, errmsg);
		return 0;	/* other logical messages are not applied */
	default:
		return 0;
	}
}

/* Begin records carry the commit time; keep it for the marker. */
static int
apply_segment(struct run *r, const struct prefetch_item *it, char **errmsg)
{
	struct seg_ctx x = { r, it, false, 0, 0, 0, 0 };
	struct segment_reader *rd = NULL;
	struct ls_record rec;
	char name[64];
	int64_t commit_time = 0;
	int rc;

	snprintf(name, sizeof(name), "segment %016" PRIx64, it->segno);
	if ((rc = segment_reader_open(it->fd, name, r->keyp, &rd, errmsg)) != 0)
		return rc;
	if (restore_hup) {
		restore_hup = 0;
		log_reopen();
	}
	while ((rc = segment_reader_next(rd, &rec, errmsg)) == 1) {
		if (rec.kind == LS_REC_BEGIN)
			commit_time = rec.u.txn.commit_time;
		if (rec.kind == LS_REC_COMMIT && !x.skip)
			r->mk.commit_time = commit_time;
		if ((rc = on_record(&x, &rec, errmsg)) != 0)
			break;
		progress(r, false);
	}
	segment_reader_free(rd);
	if (rc == 0)
		r->segs++;
	return rc == 0 && r->done ? LS_ERR_END : rc;
}

/* The segment we resume in must be the one we applied from. */
static int
check_item(struct run *r, const struct prefetch_item *it,
    struct segment_header *prev, uint8_t prev_sha[32], bool have_prev,
    char **errmsg)
{
	char have[65], want[65];

	if (it->rc != 0) {
		*errmsg = it->errmsg ? strdup(it->errmsg) : NULL;
		return it->rc;
	}
	if (have_prev)
		return segment_check_chain(prev, prev_sha, &it->h, errmsg);
	if (r->mk.segno == it->segno && memcmp(r->mk.seg_sha, it->sha, 32) != 0) {
		ls_hex(r->mk.seg_sha, 32, want);
		ls_hex(it->sha, 32, have);
		return ls_errf(errmsg, LS_ERR_CHAIN, "segment %016" PRIx64 " was "
		    "replaced since it was applied (sha256 %.16s…, applied "
		    "%.16s…); the restore stops", it->segno, have, want);
	}
	return 0;
}

/*
 * A replication origin named after the generation, when the role may
 * (superuser): it records the source position and commit times of what is
 * applied, as PostgreSQL's own subscriptions do.
 */
static void
setup_origin(struct run *r)
{
	char name[64];
	const char *params[1] = { name };
	PGresult *res;

	/* origins are cluster-wide: one per target database and generation */
	snprintf(name, sizeof(name), "%s", r->mk.generation);
	res = PQexecParams(r->c, "SELECT pg_replication_origin_session_setup(n) "
	    "FROM (SELECT n, CASE WHEN pg_replication_origin_oid(n) IS NULL THEN "
	    "pg_replication_origin_create(n) END FROM (SELECT 'logship_' || "
	    "d.oid || '_' || $1 AS n FROM pg_database d WHERE d.datname = "
	    "current_database()) s) c", 1, NULL, params, NULL, NULL, 0);
	r->origin = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!r->origin)
		log_info("restore", "no replication origin (%.*s): positions are "
		    "kept in logship.applied only",
		    (int)strcspn(PQresultErrorMessage(res), "\n"),
		    PQresultErrorMessage(res));
	PQclear(res);
}

static int
replay_segments(struct run *r, char **errmsg)
{
	struct prefetch *pf = NULL;
	struct prefetch_item it;
	struct segment_header prev;
	uint8_t prev_sha[32];
	bool have_prev = false;
	int rc;

	setup_origin(r);
	if ((rc = rewrite_open_remap(r->rw, errmsg)) != 0)
		return rc;
	if (r->seen == NULL && (r->seen = relcache_new()) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = applier_new(r->c, &r->ap, errmsg)) != 0 ||
	    (rc = prefetch_start(r->store, r->mk.generation, r->keyp,
	    r->mk.segno ? r->mk.segno : 1, r->o->follow, &restore_stop, &pf,
	    errmsg)) != 0)
		return rc;
	while (rc == 0 && !restore_stop && prefetch_next(pf, &it)) {
		rc = check_item(r, &it, &prev, prev_sha, have_prev, errmsg);
		if (rc != 0) {
			/* nothing of this segment was applied: keep the rest */
			int crc = commit_batch(r, NULL);
			r->generation_end = rc == LS_ERR_END;
			if (crc != 0)
				rc = crc;
			if (it.fd >= 0)
				close(it.fd);
			free(it.errmsg);
			break;
		}
		rc = apply_segment(r, &it, errmsg);
		if (rc == 0 || rc == LS_ERR_END) {
			prev = it.h;
			memcpy(prev_sha, it.sha, 32);
			have_prev = true;
		}
		if (it.fd >= 0)
			close(it.fd);
		free(it.errmsg);
		/* caught up (or stopping): make what we have durable */
		if ((rc == 0 && !prefetch_ready(pf)) || rc == LS_ERR_END) {
			int crc = commit_batch(r, errmsg);
			if (crc != 0)
				rc = crc;
		}
	}
	prefetch_stop(pf);
	if ((rc == 0 || rc == LS_ERR_END) && !r->generation_end) {
		int crc = commit_batch(r, errmsg);
		if (crc != 0)
			rc = crc;
	} else if (applier_in_batch(r->ap))
		applier_rollback(r->ap);	/* an error inside a transaction */
	rewrite_map_abort(r->rw);	/* entries of a batch never committed */
	return rc;
}

/* ---- a session: one target connection ---- */

/* One restore per target: a session-level advisory lock on the target. */
static int
lock_target(struct run *r, char **errmsg)
{
	PGresult *res = PQexec(r->c, "SELECT pg_try_advisory_lock("
	    "hashtext('logship-restore'))");
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = target_error(r->c, res, errmsg, "advisory lock");
	else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		r->bad_input = true;
		rc = ls_errf(errmsg, LS_ERR_INVALID, "another logship-restore is "
		    "restoring into this target; stop it first (one restore per "
		    "target)");
	}
	PQclear(res);
	return rc;
}

static int
read_manifest(struct run *r, const char *gen, char **errmsg)
{
	int rc = base_manifest_read(r->store, gen, r->keyp, &r->m, errmsg);

	if (rc == LS_ERR_NOTFOUND)
		return ls_errf(errmsg, LS_ERR_NOTFOUND, "generation %s of store %s "
		    "has no complete base snapshot yet; wait for logship-agent to "
		    "finish it", gen, store_url(r->store));
	if (rc == LS_ERR_AUTH || rc == LS_ERR_VERSION)
		r->bad_input = true;
	return rc;
}

/* ID map entries of batches the target never committed are dropped. */
static int
reconcile_map(struct run *r, char **errmsg)
{
	uint64_t dropped = 0;
	int rc = state_map_reconcile(r->state, r->mk.end_lsn, &dropped, errmsg);

	if (rc == 0 && dropped > 0)
		log_info("restore", "id map: %" PRIu64 " entries of uncommitted "
		    "batches dropped", dropped);
	return rc;
}

/* --filter: loaded and validated against the base before anything else. */
static int
load_filters(struct run *r, char **errmsg)
{
	int rc;

	if (r->rw == NULL && (r->rw = rewrite_new(r->o, r->state)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = rewrite_load_filters(r->rw, r->m, errmsg)) != 0)
		r->bad_input = true;
	return rc;
}

/* Adopt the target's marker (it is authoritative), or start one. */
static int
reconcile(struct run *r, char **errmsg)
{
	struct state_marker tm;
	char tstore[256];
	int rc;

	rc = target_get_marker(r->c, &tm, tstore, sizeof(tstore), errmsg);
	if (rc != 0 && rc != LS_ERR_NOTFOUND)
		return rc;
	if ((rc == 0 && (r->bad_input = strcmp(tstore, r->store_id) != 0)))
		return ls_errf(errmsg, LS_ERR_INVALID, "the target was restored "
		    "from another store (%s), not %s (%s)", tstore,
		    store_url(r->store), r->store_id);
	if ((rc = read_manifest(r, rc == 0 ? tm.generation : r->id.generation,
	    errmsg)) != 0 || (rc = load_filters(r, errmsg)) != 0)
		return rc;
	if (target_get_marker(r->c, &tm, tstore, sizeof(tstore), NULL) != 0)
		return init_target(r, errmsg);
	r->mk = tm;
	if ((rc = state_put_marker(r->state, &r->mk, errmsg)) != 0)
		return rc;
	return reconcile_map(r, errmsg);
}

static int
session(struct run *r, char **errmsg)
{
	int rc;

	if ((rc = target_connect(r->o->target, &r->c, errmsg)) != 0 ||
	    (rc = restore_session_setup(r->c, errmsg)) != 0 ||
	    (rc = target_identity(r->c, r->target_id, sizeof(r->target_id),
	    errmsg)) != 0)
		return rc;
	r->connected = true;
	if ((rc = lock_target(r, errmsg)) != 0)
		return rc;
	if ((rc = state_bind(r->state, r->store_id, r->target_id, errmsg)) != 0) {
		r->bad_input = true;
		return rc;
	}
	if ((rc = reconcile(r, errmsg)) != 0)
		return rc;
	while (rc == 0 && (r->mk.phase & PHASE_MASK) != PHASE_STREAM &&
	    !restore_stop) {
		switch (r->mk.phase & PHASE_MASK) {
		case PHASE_NEW:
			rc = run_section(r, "pre_data", SECTION_ALL, PHASE_SCHEMA |
			    (r->mk.phase & ~PHASE_MASK), errmsg);
			break;
		case PHASE_SCHEMA:
			if (rewrite_remapping(r->rw) && !(r->mk.phase &
			    (PHASE_SCHEMA_GIVEN | PHASE_POST_EARLY))) {
				/* keys and foreign keys must exist to remap */
				r->mk.phase |= PHASE_POST_EARLY;
				rc = run_section(r, "post_data",
				    SECTION_NO_REFRESH, PHASE_SCHEMA |
				    (r->mk.phase & ~PHASE_MASK), errmsg);
				break;
			}
			rc = load_base(r, errmsg);
			break;
		default:
			rc = finish_schema(r, errmsg);
		}
	}
	if (rc == 0 && !restore_stop)
		rc = replay_segments(r, errmsg);
	return rc == LS_ERR_END && !r->generation_end ? 0 : rc;
}

static void
end_session(struct run *r)
{
	rewrite_free(r->rw);
	r->rw = NULL;
	relcache_free(r->seen);
	r->seen = NULL;
	if (r->ap != NULL) {
		r->rows_total += applier_rows(r->ap);
		r->missing_total += applier_missing(r->ap);
	}
	applier_free(r->ap);
	r->ap = NULL;
	base_manifest_free(r->m);
	r->m = NULL;
	PQfinish(r->c);
	r->c = NULL;
}

static void
nap(int64_t us)
{
	struct timespec ts = { 0, 100000000 };

	while (us > 0 && !restore_stop) {
		nanosleep(&ts, NULL);
		us -= 100000;
	}
}

int
replay_main(const struct replay_opts *o)
{
	struct run r = { .o = o };
	char *err = NULL;
	int rc, attempt = 0, status;

	if ((rc = setup(&r, &err)) != 0) {
		fprintf(stderr, "logship-restore: %s\n", err);
		status = LS_EXIT_USAGE;
		goto out;
	}
	for (;;) {
		rc = session(&r, &err);
		end_session(&r);
		if (rc == LS_ERR_SCHEMA && r.stop_before != 0 && !r.done &&
		    !restore_stop) {
			/* again, committing all before the mismatch */
			log_info("restore", "schema mismatch: committing what "
			    "precedes it, then stopping");
			free(err);
			err = NULL;
			r.bad_input = false;
			continue;
		}
		if (rc == 0 || rc == LS_ERR_END || r.bad_input ||
		    rc != LS_ERR_TRANSIENT || !r.connected || restore_stop)
			break;
		log_warn("restore", "%s; reconnecting (try %d)", err, attempt + 1);
		free(err);
		err = NULL;
		if (r.progressed)	/* that session got somewhere: start over */
			attempt = 0;
		r.progressed = false;
		nap(ls_backoff_us(attempt++));
	}
	if ((rc == LS_ERR_TRANSIENT || rc == LS_ERR_END) && restore_stop &&
	    !r.bad_input) {
		log_info("restore", "stopped while %s", err ? err : "waiting");
		rc = 0;		/* asked to stop: the last commit stands */
	}
	if (rc == 0 && r.stop_why != NULL) {
		progress(&r, true);
		rc = LS_ERR_SCHEMA;	/* stopped before the mismatch, as planned */
		free(err);
		err = r.stop_why;
		r.stop_why = NULL;
	} else if (rc == 0)
		progress(&r, true);
	if (rc != 0)
		log_error("restore", "%s", err ? err : ls_strerror(rc));
	status = rc == 0 ? 0 : r.bad_input ? LS_EXIT_USAGE : 1;
	if (rc == 0 && r.missing_total > 0)
		log_warn("restore", "%" PRIu64 " UPDATE/DELETE found no row on "
		    "the target: it has diverged from the source", r.missing_total);
 out:
	state_close(r.state);
	store_free(r.store);
	free(r.stop_why);
	free(err);
	return status;
}
