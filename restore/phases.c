/*
 * phases.c: the base phases of a restore (replay_int.h), each committing
 * the marker's move to the next in the target and in LMDB:
 *
 *	phase NEW	pre-data (pg_dump's schema) through psql, in one
 *			transaction with the marker's move to SCHEMA
 *	phase SCHEMA	base chunks by COPY, in parallel (baseload.c); when
 *			keys are remapped, post-data first (keys and foreign
 *			keys must exist) and every remapped key into the map
 *	phase DATA	large objects, then post-data (indexes, constraints,
 *			materialized views), with the move to STREAM
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "baseload.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "format/blob.h"
#include "pg/pgtool.h"
#include "replay_int.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "rewrite.h"
#include "state.h"
#include "target.h"

/* The marker as it is in r->mk: to the target, then to LMDB. */
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

/* Bytes in, whole lines out: a line cut between two reads waits. */
struct lines {
	char	*pend;
	size_t	 plen, pcap;
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

/* ---- pg_dump's sections: pre-data, post-data, large objects ---- */

/* Which lines of a pg_dump section go to psql. */
enum section_mode {
	SECTION_ALL,
	SECTION_NO_REFRESH,	/* post-data before the data: no REFRESH yet */
	SECTION_REFRESH,	/* only the REFRESH MATERIALIZED VIEW lines */
	SECTION_NO_TXN,		/* large objects: one transaction, not many */
};

struct section_out {
	int	 fd;
	bool	 fk_not_valid;	/* filters: references may dangle */
	enum section_mode mode;
	struct lines lines;
};

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

/* ---- first contact ---- */

/*
 * "schema", "name" pairs of the manifest's tables the filters keep (the
 * target need not have the others); *n pairs.
 */
static const char **
manifest_tables(const struct run *r, size_t *n)
{
	struct base_table t;
	const char **v = calloc(2 * base_manifest_ntables(r->m) + 2,
	    sizeof(*v));
	size_t i;

	for (i = 0, *n = 0; v != NULL && base_manifest_table(r->m, i, &t) == 0;
	    i++) {
		if (!rewrite_includes(r->rw, t.schema, t.name))
			continue;
		v[2 * *n] = t.schema;
		v[2 * *n + 1] = t.name;
		(*n)++;
	}
	return v;
}

/* An empty target, or --truncate, or remap next to rows; then NEW. */
int
phases_start(struct run *r, char **errmsg)
{
	size_t n = 0;
	const char **tables = manifest_tables(r, &n);
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

/* ---- the base load ---- */

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

/* ---- from phase to phase ---- */

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

/* Each phase until STREAM; the marker says where to begin. */
int
phases_run(struct run *r, char **errmsg)
{
	int rc = 0;

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
	return rc;
}
