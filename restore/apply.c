/*
 * apply.c: changes to SQL (see apply.h).  Statements are prepared once per
 * shape — relation version, kind, which columns are set, which identify the
 * row — and kept in a small hash map; everything is sent in pipeline mode
 * and the results are drained at sync points.
 *
 * The connection is non-blocking: what is sent waits in libpq's buffer and
 * goes to the socket as the target reads it, while the restore decodes
 * what follows, so the two work at once; the restore waits only when more
 * than UNSENT_MAX is queued.  A long run of inserts streams into one open
 * COPY for the same reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "common/error.h"
#include "common/util.h"
#include "fold.h"
#include "format/relcache.h"
#include "target.h"

#define SYNC_EVERY	256
#define MAX_PARAMS	(2 * 1664)
#define RUN_COPY_MIN	64		/* inserts in a row before COPY pays */
#define COPY_CHUNK	(256u << 10)	/* COPY data handed to libpq at once */
#define UNSENT_MAX	(16u << 20)	/* queued output before waiting */
#define PUSH_EVERY	64		/* changes between two flushes */
#define FOLD_MAX_ROWS	100000		/* updates held for their net change */
#define FOLD_MAX_BYTES	(64u << 20)

struct sqlbuf {
	char	*p;
	size_t	 len, cap;
	int	 oom;
};

struct stmt {
	char		*key;		/* shape */
	char		 name[24];	/* prepared statement name */
};

/*
 * What the applier knows of a source relation: its version (a new
 * definition means new statement shapes) and, once a change needs it, the
 * target table's column types matched by name.
 */
struct relinfo {
	uint32_t	 oid;
	uint32_t	 version;
	bool		 resolved;	/* checked against the target */
	uint32_t	*types;		/* target type per record column */
	bool		*textcmp;	/* no equality: compare as text */
	bool		*always;	/* GENERATED ALWAYS AS IDENTITY */
	char		**tnames;	/* target type name, with its modifier */
	size_t		 ntnames;
	bool		 partitioned;	/* the target's table routes to partitions */
	bool		 foldable;	/* its updates may fold (fold_sql) */
	int		 par;		/* APPLY_PAR_* (par_sql) */
	char		**elided;	/* source columns the filters drop */
	size_t		 nelided;
};

/* Where a queued command came from, for its error message. */
struct cmdctx {
	uint32_t	 relid;		/* 0: not a change */
	uint64_t	 segno;
	uint64_t	 lsn;
	uint32_t	 xid;
	bool		 if_present;	/* no row found is fine */
	uint32_t	 expect;	/* rows an UPDATE by set should find */
};

/* A buffered insert of a run: its values, copied. */
struct run_row {
	uint16_t	 ncols;
	struct ls_value	*vals;		/* data points into the run's arena */
	struct cmdctx	 ctx;		/* the source transaction it came from */
};

/* From this line of an open COPY on, its rows came from this transaction. */
struct copy_from {
	uint64_t	 line;
	struct cmdctx	 ctx;
};

/*
 * Folded updates of one relation and one set of columns, gathered as one
 * text array per column (key columns first): sent as one UPDATE ... FROM
 * unnest(...), which costs the target far less per row than a statement
 * per row.
 */
struct setrun {
	uint32_t	 relid;		/* 0: empty */
	char		 mask[1664];	/* the columns SET */
	struct sqlbuf	*arr;		/* per column of the relation */
	uint16_t	 ncols;
	uint32_t	 rows;
	size_t		 bytes;
	struct fold_ctx	 ctx;		/* the last row's, for errors */
};

struct applier {
	PGconn		*c;
	struct relcache	*rels;
	struct relinfo	*ri;
	size_t		 nri;
	uint32_t	 version_seq;
	struct cmdctx	 ctx;		/* of the source transaction being sent */
	struct cmdctx	*sentctx;	/* per command since the last sync */
	size_t		 sentcap;
	struct stmt	*stmts;		/* open addressing */
	size_t		 cap, n;
	unsigned	 next_name;
	int		 queued;	/* commands sent since the last sync */
	int		 in_batch;
	int		 failed;	/* an error is pending in the pipeline */
	bool		 create_missing;	/* see applier_create_missing */
	uint64_t	 rows, missing, folded;
	struct fold	*fold;		/* updates held for their net change */
	/* consecutive inserts into one relation, sent as COPY when long */
	uint32_t	 run_relid;
	struct run_row	*run;
	size_t		 nrun, runcap;
	bool		 copying;	/* a COPY into run_relid is open */
	struct sqlbuf	 copybuf;	/* its data not yet handed to libpq */
	uint64_t	 copy_rows;
	struct copy_from *copy_from;	/* where each line came from */
	size_t		 ncopy_from, copy_from_cap;
	size_t		 unsent;	/* queued output, an upper bound */
	unsigned	 tick;
	const char	*values[MAX_PARAMS];
	int		 lengths[MAX_PARAMS];
	int		 formats[MAX_PARAMS];
	struct setrun	 set;		/* folded updates of one shape, as arrays */
};

static int flush_run(struct applier *, char **);
static int fold_send(struct applier *, uint32_t relid, char **);
static void discard_run(struct applier *);
static void set_reset(struct setrun *);
static void set_free(struct setrun *);
static void relinfo_clear(struct relinfo *);
static int resolve(struct applier *, const struct ls_relation *, char **);

int
applier_new(PGconn *c, struct applier **out, char **errmsg)
{
	struct applier *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->rels = relcache_new()) == NULL) {
		free(a);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	a->c = c;
	if ((a->fold = fold_new()) == NULL) {
		applier_free(a);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	if (PQsetnonblocking(c, 1) != 0 || PQenterPipelineMode(c) != 1) {
		applier_free(a);
		return ls_errf(errmsg, LS_ERR_PG, "target: cannot enter pipeline "
		    "mode: %s", PQerrorMessage(c));
	}
	*out = a;
	return 0;
}

void
applier_free(struct applier *a)
{
	size_t i;

	if (a == NULL)
		return;
	discard_run(a);
	(void)PQsetnonblocking(a->c, 0);	/* the caller's PQexec as before */
	fold_free(a->fold);
	set_free(&a->set);
	free(a->run);
	free(a->copybuf.p);
	free(a->copy_from);
	for (i = 0; i < a->cap; i++)
		free(a->stmts[i].key);
	free(a->stmts);
	for (i = 0; i < a->nri; i++)
		relinfo_clear(&a->ri[i]);
	free(a->ri);
	free(a->sentctx);
	relcache_free(a->rels);
	free(a);
}

uint64_t applier_rows(const struct applier *a) { return a->rows; }
uint64_t applier_missing(const struct applier *a) { return a->missing; }
uint64_t applier_folded(const struct applier *a) { return a->folded; }
int applier_in_batch(const struct applier *a) { return a->in_batch; }

/* What was read from the target's table: read it again when needed. */
static void
relinfo_unresolve(struct relinfo *ri)
{
	size_t i;

	free(ri->types);
	free(ri->textcmp);
	free(ri->always);
	for (i = 0; ri->tnames != NULL && i < ri->ntnames; i++)
		free(ri->tnames[i]);
	free(ri->tnames);
	ri->tnames = NULL;
	ri->ntnames = 0;
	ri->types = NULL;
	ri->textcmp = NULL;
	ri->always = NULL;
	ri->foldable = false;
	ri->par = APPLY_PAR_NO;
	ri->resolved = false;
}

static void
relinfo_clear(struct relinfo *ri)
{
	size_t i;

	for (i = 0; i < ri->nelided; i++)
		free(ri->elided[i]);
	free(ri->elided);
	ri->elided = NULL;
	ri->nelided = 0;
	relinfo_unresolve(ri);
}

static struct relinfo *
relinfo_get(const struct applier *a, uint32_t oid)
{
	size_t i;

	for (i = 0; i < a->nri; i++)
		if (a->ri[i].oid == oid)
			return &a->ri[i];
	return NULL;
}

static uint32_t
relation_version(const struct applier *a, uint32_t oid)
{
	const struct relinfo *ri = relinfo_get(a, oid);

	return ri != NULL ? ri->version : 0;
}

/* Same definition: name, replica identity, columns and their types. */
static bool
same_relation(const struct ls_relation *x, const struct ls_relation *y)
{
	uint16_t i;

	if (x->ncols != y->ncols || x->replident != y->replident ||
	    strcmp(x->schema, y->schema) != 0 || strcmp(x->name, y->name) != 0)
		return false;
	for (i = 0; i < x->ncols; i++)
		if (strcmp(x->cols[i].name, y->cols[i].name) != 0 ||
		    x->cols[i].type_oid != y->cols[i].type_oid ||
		    x->cols[i].typmod != y->cols[i].typmod ||
		    x->cols[i].flags != y->cols[i].flags)
			return false;
	return true;
}

static bool
has_column(const struct ls_relation *rel, const char *name)
{
	uint16_t i;

	for (i = 0; i < rel->ncols; i++)
		if (strcmp(rel->cols[i].name, name) == 0)
			return true;
	return false;
}

/* Remember which of the source's columns the filters leave out. */
static int
note_elided(struct relinfo *ri, const struct ls_relation *rel,
    const struct ls_relation *source)
{
	uint16_t i;

	if (source == NULL || source == rel)
		return 0;
	if ((ri->elided = calloc(source->ncols + 1, sizeof(*ri->elided))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < source->ncols; i++)
		if (!has_column(rel, source->cols[i].name) &&
		    (ri->elided[ri->nelided++] = strdup(source->cols[i].name)) == NULL)
			return LS_ERR_NOMEM;
	return 0;
}

int
applier_relation(struct applier *a, const struct ls_relation *rel,
    const struct ls_relation *source, char **errmsg)
{
	const struct ls_relation *old = relcache_get(a->rels, rel->oid);
	struct relinfo *ri = relinfo_get(a, rel->oid), *bigger;
	int r;

	/* every segment repeats its relations: keep what is known of one */
	if (old != NULL && ri != NULL && same_relation(old, rel))
		return 0;
	if ((a->nrun > 0 || a->copying) && a->run_relid == rel->oid &&
	    (r = flush_run(a, errmsg)) != 0)
		return r;
	if (fold_has(a->fold, rel->oid) && (r = fold_send(a, rel->oid,
	    errmsg)) != 0)
		return r;
	if (relcache_put(a->rels, rel) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (ri == NULL) {
		if ((bigger = realloc(a->ri, (a->nri + 1) * sizeof(*bigger))) == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		a->ri = bigger;
		ri = &a->ri[a->nri++];
		memset(ri, 0, sizeof(*ri));
		ri->oid = rel->oid;
	}
	relinfo_clear(ri);
	ri->version = ++a->version_seq;		/* new shape */
	if (note_elided(ri, rel, source) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	return 0;
}

void
applier_context(struct applier *a, uint64_t segno, uint64_t commit_lsn,
    uint32_t xid)
{
	a->ctx.segno = segno;
	a->ctx.lsn = commit_lsn;
	a->ctx.xid = xid;
}

void
applier_if_present(struct applier *a, bool on)
{
	a->ctx.if_present = on;
}

const struct ls_relation *
applier_get_relation(const struct applier *a, uint32_t oid)
{
	return relcache_get(a->rels, oid);
}

/* ---- the statement map ---- */

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
	return h;
}

static struct stmt *
stmt_slot(struct applier *a, const char *key)
{
	size_t i = hash(key) & (a->cap - 1);

	while (a->stmts[i].key != NULL && strcmp(a->stmts[i].key, key) != 0)
		i = (i + 1) & (a->cap - 1);
	return &a->stmts[i];
}

static int
stmt_grow(struct applier *a)
{
	struct stmt *old = a->stmts, *s;
	size_t oldcap = a->cap, i;

	a->cap = a->cap ? a->cap * 2 : 64;
	if ((a->stmts = calloc(a->cap, sizeof(*a->stmts))) == NULL) {
		a->stmts = old;
		a->cap = oldcap;
		return LS_ERR_NOMEM;
	}
	for (i = 0; i < oldcap; i++)
		if (old[i].key != NULL) {
			s = stmt_slot(a, old[i].key);
			*s = old[i];
		}
	free(old);
	return 0;
}

/* ---- pipeline plumbing ---- */

/*
 * Hand what libpq has queued to the socket, as much as the target takes
 * now; wait for it only while more than UNSENT_MAX may be queued.  Reading
 * its results meanwhile keeps it from blocking on them.
 */
static int
push(struct applier *a, char **errmsg)
{
	struct pollfd p;
	int r;

	while ((r = PQflush(a->c)) == 1 && a->unsent > UNSENT_MAX) {
		p.fd = PQsocket(a->c);
		p.events = POLLIN | POLLOUT;
		p.revents = 0;
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return ls_errf(errmsg, LS_ERR_TRANSIENT, "target: poll: %s",
			    strerror(errno));
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) &&
		    PQconsumeInput(a->c) != 1) {
			r = -1;
			break;
		}
	}
	if (r < 0)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "target: connection "
		    "lost: %s", PQerrorMessage(a->c));
	if (r == 0)
		a->unsent = 0;
	return 0;
}

/* A command was sent (ok == 1) for relation relid (0: none). */
static int
sent(struct applier *a, int ok, uint32_t relid, char **errmsg)
{
	struct cmdctx *bigger;
	size_t cap;

	if (ok != 1)
		return ls_errf(errmsg, PQstatus(a->c) == CONNECTION_OK ?
		    LS_ERR_PG : LS_ERR_TRANSIENT, "target: %s",
		    PQerrorMessage(a->c));
	if ((size_t)a->queued >= a->sentcap) {
		cap = a->sentcap ? a->sentcap * 2 : 2 * SYNC_EVERY;
		if ((bigger = realloc(a->sentctx, cap * sizeof(*bigger))) == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		a->sentctx = bigger;
		a->sentcap = cap;
	}
	a->sentctx[a->queued] = a->ctx;
	a->sentctx[a->queued].relid = relid;
	a->queued++;
	return a->unsent > UNSENT_MAX ? push(a, errmsg) : 0;
}

static int
send_simple(struct applier *a, const char *sql, char **errmsg)
{
	return sent(a, PQsendQueryParams(a->c, sql, 0, NULL, NULL, NULL, NULL, 0),
	    0, errmsg);
}

/* " (table s.t, segment N, source transaction xid X committed at LSN L)" */
static void
where_from(const struct applier *a, const struct cmdctx *x, char *buf,
    size_t len)
{
	const struct ls_relation *rel = x->relid ?
	    relcache_get(a->rels, x->relid) : NULL;
	char lsn[32];
	int n = 0;

	*buf = '\0';
	if (rel != NULL)
		n = snprintf(buf, len, " (table %s.%s", rel->schema, rel->name);
	if (x->segno == 0 || n < 0 || (size_t)n >= len) {
		if (n > 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, ")");
		return;
	}
	ls_lsn_format(x->lsn, lsn);
	snprintf(buf + n, len - (size_t)n, "%ssegment %016" PRIx64 ", source "
	    "transaction %u committed at %s)", n ? ", " : " (", x->segno, x->xid,
	    lsn);
}

/* Remember the first error of a drained result (the idx-th command). */
static void
note_result(struct applier *a, PGresult *res, size_t idx, char **errmsg)
{
	ExecStatusType st = PQresultStatus(res);
	const char *tuples;
	char from[512] = "";

	if (st == PGRES_FATAL_ERROR && !a->failed) {
		char *m = strdup(PQresultErrorMessage(res)), *nl;
		if (m != NULL && (nl = strchr(m, '\n')) != NULL)
			*nl = '\0';
		if (idx < (size_t)a->queued)
			where_from(a, &a->sentctx[idx], from, sizeof(from));
		a->failed = target_classify(a->c, res) == LS_ERR_TRANSIENT ? 2 : 1;
		ls_errf(errmsg, LS_ERR_PG, "target: %s%s", m ? m : "error", from);
		free(m);
	} else if (st == PGRES_COMMAND_OK) {
		const struct cmdctx *x = idx < (size_t)a->queued ?
		    &a->sentctx[idx] : NULL;
		unsigned long want = x != NULL && x->expect > 0 ? x->expect : 1;
		unsigned long got;

		tuples = PQcmdTuples(res);
		got = strtoul(tuples, NULL, 10);
		if ((strncmp(PQcmdStatus(res), "UPDATE", 6) == 0 ||
		    strncmp(PQcmdStatus(res), "DELETE", 6) == 0) &&
		    got < want && !(x != NULL && x->if_present))
			a->missing += want - got;	/* rows not there */
	}
}

/* Sync and read every result up to the sync point. */
static int
drain(struct applier *a, char **errmsg)
{
	PGresult *res;
	size_t idx = 0;
	bool ended = false;	/* the last PQgetResult ended a query's results */

	if (PQpipelineSync(a->c) != 1)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "target: %s",
		    PQerrorMessage(a->c));
	for (;;) {
		res = PQgetResult(a->c);
		/*
		 * A NULL ends one query's results; the next call waits for the
		 * next query's.  Two in a row mean libpq has nothing queued but
		 * never gave the sync point: seen once after the target was
		 * restarted -m immediate, when PQgetResult then returned NULL at
		 * once, forever, on a connection it still called OK.  Reconnect.
		 */
		if (res == NULL) {
			if (PQstatus(a->c) != CONNECTION_OK || ended)
				return ls_errf(errmsg, LS_ERR_TRANSIENT, "target: "
				    "connection lost: %s", PQstatus(a->c) !=
				    CONNECTION_OK ? PQerrorMessage(a->c) :
				    "the pipeline ended before its sync point");
			ended = true;
			continue;
		}
		ended = false;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		note_result(a, res, idx++, errmsg);
		PQclear(res);
	}
	a->queued = 0;
	a->unsent = 0;	/* PQgetResult sent it all */
	return a->failed == 2 ? LS_ERR_TRANSIENT : a->failed ? LS_ERR_PG : 0;
}

static int
maybe_drain(struct applier *a, char **errmsg)
{
	return a->queued >= SYNC_EVERY ? drain(a, errmsg) : 0;
}

int
applier_begin(struct applier *a, char **errmsg)
{
	a->in_batch = 1;
	a->failed = 0;
	return send_simple(a, "BEGIN", errmsg);
}

int
applier_ddl(struct applier *a, char *const *sql, size_t n, char **errmsg)
{
	size_t i;
	int r;

	if ((r = fold_send(a, 0, errmsg)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if ((r = send_simple(a, sql[i], errmsg)) != 0)
			return r;
		if ((r = drain(a, errmsg)) != 0)
			return ls_errprefix(errmsg, r, "%s", sql[i]);
	}
	for (i = 0; i < a->nri; i++) {	/* definitions may have changed */
		relinfo_unresolve(&a->ri[i]);
		a->ri[i].version = ++a->version_seq;	/* prepare anew */
	}
	return 0;
}

int
applier_commit(struct applier *a, const char *extra1, const char *extra2,
    char **errmsg)
{
	int r;

	if ((r = fold_send(a, 0, errmsg)) != 0 ||
	    (extra1 != NULL && (r = send_simple(a, extra1, errmsg)) != 0) ||
	    (extra2 != NULL && (r = send_simple(a, extra2, errmsg)) != 0) ||
	    (r = send_simple(a, "COMMIT", errmsg)) != 0 ||
	    (r = drain(a, errmsg)) != 0) {
		applier_rollback(a);
		return r;
	}
	a->in_batch = 0;
	return 0;
}

int
applier_sync(struct applier *a, char **errmsg)
{
	int r;

	if (a->in_batch)
		return 0;
	if ((r = flush_run(a, errmsg)) != 0)
		return r;
	return a->queued > 0 ? drain(a, errmsg) : 0;
}

void
applier_rollback(struct applier *a)
{
	char *ignore = NULL;

	discard_run(a);
	fold_discard(a->fold);
	set_reset(&a->set);
	if (PQstatus(a->c) == CONNECTION_OK &&
	    send_simple(a, "ROLLBACK", &ignore) == 0)
		(void)drain(a, &ignore);
	free(ignore);
	a->in_batch = 0;
	a->failed = 0;
}

/* ---- SQL for each change shape ---- */


/* Append n bytes (the buffer stays NUL-terminated). */
static void
sb_addn(struct sqlbuf *b, const char *s, size_t n)
{
	char *bigger;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if ((bigger = realloc(b->p, b->cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = bigger;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_add(struct sqlbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void
sb_ident(struct sqlbuf *b, PGconn *c, const char *s)
{
	char *q = PQescapeIdentifier(c, s, strlen(s));

	if (q == NULL)
		b->oom = 1;
	else
		sb_add(b, q);
	PQfreemem(q);
}

static void
sb_param(struct sqlbuf *b, int n)
{
	char num[16];

	snprintf(num, sizeof(num), "$%d", n);
	sb_add(b, num);
}

static void
sb_table(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel)
{
	sb_ident(b, c, rel->schema);
	sb_add(b, ".");
	sb_ident(b, c, rel->name);
}

/* ---- the target's definition of a table ---- */

/*
 * The target table's columns: name, type, generated, type name, and
 * whether the type (through domains, arrays, composites and ranges) has a
 * base type without a default equality operator class.  No row: no table.
 */
static const char columns_sql[] =
    "WITH RECURSIVE cols AS (SELECT a.attnum, a.attname, a.atttypid, "
    "a.attgenerated <> '' AS gen, format_type(a.atttypid, a.atttypmod) AS "
    "tname, a.atttypmod, a.attidentity, (SELECT relkind FROM pg_class "
    "WHERE oid = t.r) AS relkind FROM (SELECT to_regclass(format('%I.%I', $1::text, "
    "$2::text)) AS r) t LEFT JOIN pg_attribute a ON a.attrelid = t.r AND "
    "a.attnum > 0 AND NOT a.attisdropped WHERE t.r IS NOT NULL), "
    "parts(attnum, t, depth) AS (SELECT attnum, atttypid, 0 FROM cols "
    "WHERE attnum IS NOT NULL UNION ALL SELECT p.attnum, s.sub, p.depth + 1 "
    "FROM parts p JOIN pg_type ty ON ty.oid = p.t CROSS JOIN LATERAL ("
    "SELECT ty.typbasetype WHERE ty.typtype = 'd' UNION ALL SELECT "
    "ty.typelem WHERE ty.typcategory = 'A' AND ty.typelem <> 0 UNION ALL "
    "SELECT ca.atttypid FROM pg_attribute ca WHERE ty.typtype = 'c' AND "
    "ca.attrelid = ty.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped "
    "UNION ALL SELECT rg.rngsubtype FROM pg_range rg WHERE rg.rngtypid = "
    "ty.oid) s(sub) WHERE p.depth < 8) "
    "SELECT c.attname, c.atttypid, c.gen, c.tname, EXISTS (SELECT 1 FROM "
    "parts p JOIN pg_type ty ON ty.oid = p.t WHERE p.attnum = c.attnum AND "
    "ty.typtype = 'b' AND ty.typcategory <> 'A' AND NOT EXISTS (SELECT 1 "
    "FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod WHERE "
    "oc.opcdefault AND am.amname IN ('btree', 'hash') AND (oc.opcintype = "
    "ty.oid OR EXISTS (SELECT 1 FROM pg_cast k WHERE k.castsource = ty.oid "
    "AND k.casttarget = oc.opcintype AND k.castmethod = 'b' AND "
    "k.castcontext = 'i')))), c.atttypmod, c.attidentity, c.relkind FROM cols c "
    "ORDER BY c.attnum";

#define FIRST_USER_OID	16384	/* FirstNormalObjectId: same in every cluster */

struct diff {
	struct sqlbuf	what;		/* "column x added on the source, ..." */
	struct sqlbuf	fix;		/* "ADD COLUMN x text, ..." */
};

/* s quoted as the target's quote_ident() would (only when needed). */
static void
sb_quoted(struct sqlbuf *b, PGconn *c, const char *s)
{
	const char *params[1] = { s };
	PGresult *res = PQexecParams(c, "SELECT quote_ident($1)", 1, NULL,
	    params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		sb_add(b, PQgetvalue(res, 0, 0));
	else
		sb_ident(b, c, s);
	PQclear(res);
}

static void
diff_add(struct diff *d, PGconn *c, const char *what, const char *col,
    const char *fix1, const char *fix2)
{
	sb_add(&d->what, d->what.len ? ", column " : "column ");
	sb_add(&d->what, col);
	sb_add(&d->what, what);
	sb_add(&d->fix, d->fix.len ? ", " : "");
	sb_add(&d->fix, fix1);
	sb_quoted(&d->fix, c, col);
	sb_add(&d->fix, fix2);
}

/* A source type's name as the target spells it (built-in types only). */
static void
source_type(PGconn *c, const struct ls_column *col, char *buf, size_t len)
{
	char oid[16], mod[16];
	const char *params[2] = { oid, mod };
	PGresult *res;

	snprintf(buf, len, "<type %u on the source>", col->type_oid);
	if (col->type_oid >= FIRST_USER_OID)
		return;
	snprintf(oid, sizeof(oid), "%u", col->type_oid);
	snprintf(mod, sizeof(mod), "%d", (int)col->typmod);
	res = PQexecParams(c, "SELECT format_type($1::oid, $2::int)", 2, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

static bool
is_elided(const struct relinfo *ri, const char *name)
{
	size_t i;

	for (i = 0; i < ri->nelided; i++)
		if (strcmp(ri->elided[i], name) == 0)
			return true;
	return false;
}

/* Compare the relation record with the target's table (res); fill ri. */
static void
compare(struct applier *a, const struct ls_relation *rel, struct relinfo *ri,
    const PGresult *res, struct diff *d)
{
	char tname[256], sp[300];
	int row, nrows = PQntuples(res);
	uint16_t i;
	bool found;

	for (i = 0; i < rel->ncols; i++) {
		const struct ls_column *col = &rel->cols[i];
		for (row = 0, found = false; row < nrows && !found; row++) {
			if (PQgetisnull(res, row, 0) ||
			    strcmp(PQgetvalue(res, row, 0), col->name) != 0)
				continue;
			found = true;
			ri->types[i] = (uint32_t)strtoul(PQgetvalue(res, row, 1),
			    NULL, 10);
			ri->textcmp[i] = *PQgetvalue(res, row, 4) == 't';
			ri->always[i] = *PQgetvalue(res, row, 6) == 'a';
			free(ri->tnames[i]);
			ri->tnames[i] = strdup(PQgetvalue(res, row, 3));
			if (col->type_oid < FIRST_USER_OID &&
			    (ri->types[i] != col->type_oid || (col->typmod != -1 &&
			    atoi(PQgetvalue(res, row, 5)) != col->typmod))) {
				source_type(a->c, col, tname, sizeof(tname));
				snprintf(sp, sizeof(sp), " TYPE %s", tname);
				sb_add(&d->what, d->what.len ? ", column " : "column ");
				sb_add(&d->what, col->name);
				sb_add(&d->what, " is ");
				sb_add(&d->what, PQgetvalue(res, row, 3));
				sb_add(&d->what, " on the target but ");
				sb_add(&d->what, tname);
				sb_add(&d->what, " on the source");
				sb_add(&d->fix, d->fix.len ? ", " : "");
				sb_add(&d->fix, "ALTER COLUMN ");
				sb_quoted(&d->fix, a->c, col->name);
				sb_add(&d->fix, sp);
			}
		}
		if (!found) {
			source_type(a->c, col, tname, sizeof(tname));
			snprintf(sp, sizeof(sp), " %s", tname);
			diff_add(d, a->c, " added on the source", col->name,
			    "ADD COLUMN ", sp);
		}
	}
	for (row = 0; row < nrows; row++) {
		const char *name = PQgetvalue(res, row, 0);
		if (PQgetisnull(res, row, 0) || *PQgetvalue(res, row, 2) == 't' ||
		    has_column(rel, name) || is_elided(ri, name))
			continue;	/* generated columns are never sent */
		diff_add(d, a->c, " dropped on the source", name, "DROP COLUMN ",
		    "");
	}
}

void
applier_create_missing(struct applier *a, bool on)
{
	a->create_missing = on;
}

/*
 * A table the target lacks, from the relation's columns (built-in types
 * only): CREATE TABLE AS sends its rows before its captured DDL.
 */
static int
create_bare(struct applier *a, const struct ls_relation *rel, char **errmsg)
{
	struct sqlbuf sql = { 0 };
	PGresult *res = NULL;
	char type[256];
	uint16_t i;
	int r = 0;

	sb_add(&sql, "CREATE TABLE ");
	sb_table(&sql, a->c, rel);
	sb_add(&sql, " (");
	for (i = 0; i < rel->ncols; i++) {
		if (rel->cols[i].type_oid >= FIRST_USER_OID) {
			free(sql.p);
			return ls_errf(errmsg, LS_ERR_SCHEMA, "table %s.%s does "
			    "not exist on the target and its column %s has a "
			    "type of the source's own; create the table there "
			    "and rerun", rel->schema, rel->name,
			    rel->cols[i].name);
		}
		source_type(a->c, &rel->cols[i], type, sizeof(type));
		sb_add(&sql, i ? ", " : "");
		sb_ident(&sql, a->c, rel->cols[i].name);
		sb_add(&sql, " ");
		sb_add(&sql, type);
	}
	sb_add(&sql, ")");
	if (sql.oom)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if (PQresultStatus(res = PQexec(a->c, sql.p)) != PGRES_COMMAND_OK)
		r = target_error(a->c, res, errmsg, "creating a table");
	PQclear(res);
	free(sql.p);
	return r;
}

/*
 * May the table's updates fold into their net change (fold.h)?  Only where
 * the order of updates to different rows cannot matter and no one watches
 * each one: a plain table whose one unique index (immediate) is its
 * replica identity, on exactly the source's key columns ($3), with no
 * foreign key of its own, no user trigger and no rule.
 */
static const char fold_sql[] =
    "SELECT c.relkind = 'r' AND NOT c.relhassubclass AND (SELECT count(*) "
    "FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisunique OR "
    "i.indisexclusion)) = 1 AND EXISTS (SELECT FROM pg_index i WHERE "
    "i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND "
    "i.indexprs IS NULL AND i.indpred IS NULL AND ((c.relreplident = 'd' "
    "AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident)) "
    "AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM "
    "pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey)) "
    "= (SELECT array_agg(k ORDER BY k) FROM unnest($3::text[]) k)) AND NOT "
    "EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND "
    "k.contype = 'f') AND NOT EXISTS (SELECT FROM pg_trigger t WHERE "
    "t.tgrelid = c.oid AND NOT t.tgisinternal) AND NOT EXISTS (SELECT FROM "
    "pg_rewrite w WHERE w.ev_class = c.oid) FROM pg_class c WHERE c.oid = "
    "to_regclass(format('%I.%I', $1::text, $2::text))";

/* The source's key column names as a text[] literal. */
static char *
key_array(const struct ls_relation *rel)
{
	struct sqlbuf b = { 0 };
	const char *p;
	uint16_t i;
	int n = 0;

	sb_add(&b, "{");
	for (i = 0; i < rel->ncols; i++) {
		if (!(rel->cols[i].flags & LS_COL_KEY))
			continue;
		sb_add(&b, n++ ? ",\"" : "\"");
		for (p = rel->cols[i].name; *p != '\0'; p++) {
			char ch[3] = { '\\', *p, '\0' };
			sb_add(&b, *p == '"' || *p == '\\' ? ch : ch + 1);
		}
		sb_add(&b, "\"");
	}
	sb_add(&b, "}");
	if (b.oom || n == 0) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static void
fold_check(struct applier *a, const struct ls_relation *rel,
    struct relinfo *ri)
{
	char *keys = key_array(rel);
	const char *params[3] = { rel->schema, rel->name, keys };
	PGresult *res;

	ri->foldable = false;
	if (keys == NULL || rel->replident == 'f')
		goto out;
	res = PQexecParams(a->c, fold_sql, 3, NULL, params, NULL, NULL, 0);
	ri->foldable = PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
 out:
	free(keys);
}

/*
 * May the chunks of parallel apply (parallel.h) send this table's changes
 * early: no triggers or rules, a plain table; and no foreign key either
 * way unless their checks are off (session_replication_role replica).
 * With one unique index, the replica identity key (foldable), rows of
 * different keys are independent; with none, inserts are.
 */
static const char par_sql[] =
    "SELECT c.relkind = 'r' AND NOT c.relhassubclass AND NOT EXISTS (SELECT "
    "FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AND "
    "NOT EXISTS (SELECT FROM pg_rewrite w WHERE w.ev_class = c.oid) AND "
    "(current_setting('session_replication_role') = 'replica' OR NOT EXISTS "
    "(SELECT FROM pg_constraint k WHERE k.contype = 'f' AND (k.conrelid = "
    "c.oid OR k.confrelid = c.oid))), (SELECT count(*) FROM pg_index i WHERE "
    "i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion)) FROM "
    "pg_class c WHERE c.oid = to_regclass(format('%I.%I', $1::text, "
    "$2::text))";

static void
par_check(struct applier *a, const struct ls_relation *rel,
    struct relinfo *ri)
{
	const char *params[2] = { rel->schema, rel->name };
	PGresult *res = PQexecParams(a->c, par_sql, 2, NULL, params, NULL, NULL,
	    0);

	ri->par = APPLY_PAR_NO;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		if (ri->foldable)
			ri->par = APPLY_PAR_KEYED;
		else if (strcmp(PQgetvalue(res, 0, 1), "0") == 0)
			ri->par = APPLY_PAR_INSERTS;
	}
	PQclear(res);
}

/* The target's columns of rel (columns_sql); *res NULL on error. */
static int
target_columns(struct applier *a, const struct ls_relation *rel,
    PGresult **res, char **errmsg)
{
	const char *params[2] = { rel->schema, rel->name };
	int r;

	*res = PQexecParams(a->c, columns_sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(*res) != PGRES_TUPLES_OK || PQntuples(*res) > 0 ||
	    !a->create_missing)
		return 0;
	PQclear(*res);
	*res = NULL;
	if ((r = create_bare(a, rel, errmsg)) != 0)
		return r;
	*res = PQexecParams(a->c, columns_sql, 2, NULL, params, NULL, NULL, 0);
	return 0;
}

/*
 * Before the first change through a relation definition: read the target's
 * table.  A table that differs (columns added, dropped or retyped on the
 * source since the target was made) stops the restore with LS_ERR_SCHEMA
 * and the ALTER TABLE that would fix it, before anything is sent for it.
 */
static int
resolve(struct applier *a, const struct ls_relation *rel, char **errmsg)
{
	struct relinfo *ri = relinfo_get(a, rel->oid);
	struct diff d = { { 0 }, { 0 } };
	PGresult *res = NULL;
	int r = 0;

	if (ri == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", rel->oid);
	if (ri->resolved)
		return 0;
	if ((a->copying && (r = flush_run(a, errmsg)) != 0) ||
	    (a->queued > 0 && (r = drain(a, errmsg)) != 0))
		return r;
	if (PQexitPipelineMode(a->c) != 1)
		return ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	if ((r = target_columns(a, rel, &res, errmsg)) == 0 &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		r = target_error(a->c, res, errmsg, "reading a table's columns");
	else if (r == 0 && PQntuples(res) == 0)
		r = ls_errf(errmsg, LS_ERR_SCHEMA, "table %s.%s does not exist on "
		    "the target; create it there (pg_dump --schema-only --table "
		    "on the source, then psql on the target) and rerun",
		    rel->schema, rel->name);
	else if (r == 0 && ((ri->types = calloc(rel->ncols + 1,
	    sizeof(*ri->types))) == NULL ||
	    (ri->textcmp = calloc(rel->ncols + 1, sizeof(*ri->textcmp))) == NULL ||
	    (ri->always = calloc(rel->ncols + 1, sizeof(*ri->always))) == NULL ||
	    (ri->tnames = calloc(rel->ncols + 1, sizeof(*ri->tnames))) == NULL))
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if (r == 0) {
		ri->ntnames = rel->ncols;
		ri->partitioned = *PQgetvalue(res, 0, 7) == 'p';
		compare(a, rel, ri, res, &d);
		fold_check(a, rel, ri);
		par_check(a, rel, ri);
	}
	PQclear(res);
	if (r == 0 && (d.what.oom || d.fix.oom))
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if (r == 0 && d.what.len > 0) {
		struct sqlbuf qt = { 0 };
		sb_quoted(&qt, a->c, rel->schema);
		sb_add(&qt, ".");
		sb_quoted(&qt, a->c, rel->name);
		r = ls_errf(errmsg, LS_ERR_SCHEMA, "table %s.%s differs from the "
		    "target: %s; the source's schema changed and its DDL is not "
		    "in the stream (logship-agent --ddl carries it): run on the "
		    "target ALTER TABLE %s %s; then rerun logship-restore",
		    rel->schema, rel->name, d.what.p,
		    qt.p ? qt.p : rel->name, d.fix.p);
		free(qt.p);
	}
	if (PQenterPipelineMode(a->c) != 1 && r == 0)
		r = ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	free(d.what.p);
	free(d.fix.p);
	if (r == 0)
		ri->resolved = true;
	return r;
}

int
applier_parallel_class(struct applier *a, uint32_t relid, int *cls,
    char **errmsg)
{
	const struct ls_relation *rel = relcache_get(a->rels, relid);
	int r;

	*cls = APPLY_PAR_NO;
	if (rel == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", relid);
	if ((r = resolve(a, rel, errmsg)) != 0)
		return r;
	*cls = relinfo_get(a, relid)->par;
	return 0;
}

int
applier_flush(struct applier *a, char **errmsg)
{
	int r;

	if ((r = fold_send(a, 0, errmsg)) != 0)
		return r;
	return a->queued > 0 ? drain(a, errmsg) : 0;
}

int
applier_tables_present(struct applier *a, const char *const *pairs, size_t n,
    bool *present, char **errmsg)
{
	return applier_present(a, 'r', pairs, n, present, errmsg);
}

int
applier_present(struct applier *a, char kind, const char *const *pairs,
    size_t n, bool *present, char **errmsg)
{
	PGresult *res;
	size_t i;
	int r = 0;

	if ((r = fold_send(a, 0, errmsg)) != 0 ||
	    (a->queued > 0 && (r = drain(a, errmsg)) != 0))
		return r;
	if (PQexitPipelineMode(a->c) != 1)
		return ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	for (i = 0; r == 0 && i < n; i++) {
		const char *p2[2] = { pairs[2 * i], pairs[2 * i + 1] };
		res = PQexecParams(a->c, kind == 't' ? "SELECT to_regtype("
		    "format('%I.%I', $1::text, $2::text)) IS NOT NULL" :
		    "SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS "
		    "NOT NULL", 2, NULL, p2, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r = target_error(a->c, res, errmsg, "looking up a table");
		else
			present[i] = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
	}
	if (PQenterPipelineMode(a->c) != 1 && r == 0)
		r = ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	return r;
}

int
applier_query(struct applier *a, const char *sql, int nparams,
    const char *const *params, PGresult **res, char **errmsg)
{
	int r = 0;

	*res = NULL;
	if ((r = fold_send(a, 0, errmsg)) != 0 ||
	    (a->queued > 0 && (r = drain(a, errmsg)) != 0))
		return r;
	if (PQexitPipelineMode(a->c) != 1)
		return ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	*res = PQexecParams(a->c, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(*res) != PGRES_TUPLES_OK) {
		r = target_error(a->c, *res, errmsg, "reading the catalog");
		PQclear(*res);
		*res = NULL;
	}
	if (PQenterPipelineMode(a->c) != 1 && r == 0) {
		PQclear(*res);
		*res = NULL;
		r = ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	}
	return r;
}

/*
 * Which columns identify the row: the key columns of the old tuple (or of
 * the new one when the key did not change); with a full old tuple, every
 * column that was sent.  mask[i] = 1 for those; returns how many.
 */
static int
where_columns(const struct ls_relation *rel, const struct ls_change *ch,
    const struct ls_tuple **t, char *mask)
{
	int i, n = 0;

	*t = ch->old_kind != LS_OLD_NONE ? &ch->old : &ch->new;
	for (i = 0; i < rel->ncols; i++) {
		if (ch->old_kind == LS_OLD_FULL)
			mask[i] = (*t)->vals[i].kind != LS_VAL_UNCHANGED;
		else
			mask[i] = (rel->cols[i].flags & LS_COL_KEY) != 0;
		n += mask[i];
	}
	return n;
}

/*
 * The table of an UPDATE or DELETE: ONLY, since the source sends each
 * table's own changes and an inheritance parent's rows are not its
 * children's; but a partitioned table (publish_via_partition_root) routes.
 */
static void
sb_only(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel,
    const struct relinfo *ri)
{
	if (!ri->partitioned)
		sb_add(b, "ONLY ");
	sb_table(b, c, rel);
}

/*
 * WHERE clause over mask, parameters from $first on.  With a full old
 * tuple, exactly one row (duplicates may exist), and the very row: values
 * a type's = calls equal need not be the same (1.0 and 1.00, 0 and -0,
 * citext's 'A' and 'a'), so every column also compares by its text form,
 * both produced by the target; a column whose type has no equality (json,
 * xml, geometric types, composites of them) by its text form only.
 */
static void
sb_where(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel,
    const struct relinfo *ri, const char *mask, bool full, int first)
{
	int i, n = first, any = 0;
	bool text;

	if (full) {	/* partitions may share ctids: tableoid too */
		sb_add(b, ri->partitioned ? " WHERE (tableoid, ctid) = (SELECT "
		    "tableoid, ctid FROM " : " WHERE ctid = (SELECT ctid FROM ");
		sb_only(b, c, rel, ri);
	}
	for (i = 0; i < rel->ncols; i++) {
		if (!mask[i])
			continue;
		text = full && ri->textcmp != NULL && ri->textcmp[i];
		sb_add(b, any++ ? " AND " : " WHERE ");
		if (!text) {
			sb_ident(b, c, rel->cols[i].name);
			sb_add(b, full ? " IS NOT DISTINCT FROM " : " = ");
			sb_param(b, n);
		}
		if (full) {
			sb_add(b, text ? "" : " AND ");
			sb_ident(b, c, rel->cols[i].name);
			sb_add(b, "::text IS NOT DISTINCT FROM ");
			sb_param(b, n);
			sb_add(b, "::text");
		}
		n++;
	}
	if (full)
		sb_add(b, " LIMIT 1)");
}

/* A table without columns takes DEFAULT VALUES. */
static void
sql_insert(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel)
{
	int i;

	sb_add(b, "INSERT INTO ");
	sb_table(b, c, rel);
	if (rel->ncols == 0) {
		sb_add(b, " DEFAULT VALUES");
		return;
	}
	sb_add(b, " (");
	for (i = 0; i < rel->ncols; i++) {
		sb_add(b, i ? ", " : "");
		sb_ident(b, c, rel->cols[i].name);
	}
	sb_add(b, ") OVERRIDING SYSTEM VALUE VALUES (");
	for (i = 0; i < rel->ncols; i++) {
		sb_add(b, i ? ", " : "");
		sb_param(b, i + 1);
	}
	sb_add(b, ")");
}

static int
sql_update(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel,
    const struct relinfo *ri, const char *setmask, const char *wmask,
    bool full)
{
	int i, n = 1;

	sb_add(b, "UPDATE ");
	sb_only(b, c, rel, ri);
	sb_add(b, " SET ");
	for (i = 0; i < rel->ncols; i++) {
		if (!setmask[i])
			continue;
		sb_add(b, n > 1 ? ", " : "");
		sb_ident(b, c, rel->cols[i].name);
		sb_add(b, " = ");
		sb_param(b, n++);
	}
	sb_where(b, c, rel, ri, wmask, full, n);
	return n - 1;
}

static void
sql_delete(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel,
    const struct relinfo *ri, const char *wmask, bool full)
{
	sb_add(b, "DELETE FROM ");
	sb_only(b, c, rel, ri);
	sb_where(b, c, rel, ri, wmask, full, 1);
}

/* Shape key: kind, relation version, set mask, where mask, full flag. */
static char *
shape_key(char kind, uint32_t oid, uint32_t ver, const char *set,
    const char *where, int ncols, bool full)
{
	char *k = malloc(48 + 2 * (size_t)ncols);
	int n, i;

	if (k == NULL)
		return NULL;
	n = sprintf(k, "%c%u.%u%c|", kind, oid, ver, full ? 'F' : 'K');
	for (i = 0; i < ncols; i++)
		k[n++] = set != NULL && set[i] ? '1' : '0';
	k[n++] = '|';
	for (i = 0; i < ncols; i++)
		k[n++] = where != NULL && where[i] ? '1' : '0';
	k[n] = '\0';
	return k;
}

/* Find or prepare the statement for this shape; *name is its name. */
static int
statement(struct applier *a, char *key, struct sqlbuf *sql, uint32_t relid,
    int ntypes, const Oid *types, const char **name, char **errmsg)
{
	struct stmt *s;
	int r;

	if ((a->n + 1) * 2 > a->cap && stmt_grow(a) != 0) {
		free(key);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	s = stmt_slot(a, key);
	if (s->key != NULL) {
		free(key);
		*name = s->name;
		return 0;
	}
	s->key = key;
	snprintf(s->name, sizeof(s->name), "ls%u", a->next_name++);
	a->n++;
	if ((r = sent(a, PQsendPrepare(a->c, s->name, sql->p, ntypes, types),
	    relid, errmsg)) != 0)
		return r;
	*name = s->name;
	return 0;
}

static void
bind(struct applier *a, int at, const struct ls_value *v)
{
	a->values[at] = v->kind == LS_VAL_NULL ? NULL : v->data;
	a->lengths[at] = (int)v->len;
	a->formats[at] = v->kind == LS_VAL_BINARY ? 1 : 0;
	a->unsent += v->len + 4;
}

/*
 * Parameters: new values under setmask, then old/new under wmask; their
 * types are the target columns' (so that composites, domains and arrays of
 * composites are read as what they are).
 */
static int
bind_all(struct applier *a, const struct relinfo *ri, Oid *types,
    const struct ls_tuple *set, const char *setmask,
    const struct ls_tuple *w, const char *wmask, int ncols)
{
	int i, n = 0;

	for (i = 0; set != NULL && i < ncols; i++)
		if (setmask == NULL || setmask[i]) {
			types[n] = ri->types != NULL ? ri->types[i] : 0;
			bind(a, n++, &set->vals[i]);
		}
	for (i = 0; w != NULL && i < ncols; i++)
		if (wmask[i]) {
			types[n] = ri->types != NULL ? ri->types[i] : 0;
			bind(a, n++, &w->vals[i]);
		}
	return n;
}

static bool
same_value(const struct ls_value *x, const struct ls_value *y)
{
	return x->kind == y->kind && x->len == y->len &&
	    (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
}

static int run_change(struct applier *, const struct ls_relation *,
    const struct ls_change *, char **);

/* An update that changed a GENERATED ALWAYS identity: delete, insert. */
static int
update_by_reinsert(struct applier *a, const struct ls_relation *rel,
    const struct ls_change *ch, char **errmsg)
{
	struct ls_change del = *ch, ins = *ch;
	uint16_t i;
	int r;

	for (i = 0; i < ch->new.ncols; i++)
		if (ch->new.vals[i].kind == LS_VAL_UNCHANGED)
			return ls_errf(errmsg, LS_ERR_INVALID, "%s.%s: an update "
			    "changed the GENERATED ALWAYS identity column %s and "
			    "left a TOASTed value unsent: the row cannot be "
			    "rewritten; give the source table REPLICA IDENTITY "
			    "FULL", rel->schema, rel->name, rel->cols[i].name);
	del.kind = LS_CHANGE_DELETE;
	ins.kind = LS_CHANGE_INSERT;
	ins.old_kind = LS_OLD_NONE;
	if ((r = run_change(a, rel, &del, errmsg)) != 0)
		return r;
	a->rows--;	/* one row changed, not two */
	return run_change(a, rel, &ins, errmsg);
}

static int
run_change(struct applier *a, const struct ls_relation *rel,
    const struct ls_change *ch, char **errmsg)
{
	struct sqlbuf sql = { 0 };
	char setmask[1664], wmask[1664];
	Oid types[MAX_PARAMS];
	const struct ls_tuple *wt = NULL;
	const struct relinfo *ri;
	const char *name = NULL;
	bool full = ch->old_kind == LS_OLD_FULL;
	int i, n, r;
	char *key;

	if ((r = resolve(a, rel, errmsg)) != 0)
		return r;
	ri = relinfo_get(a, rel->oid);
	if (ch->kind != LS_CHANGE_INSERT && where_columns(rel, ch, &wt,
	    wmask) == 0 && !(full && rel->ncols == 0)) {
		char from[512];
		a->ctx.relid = 0;
		where_from(a, &a->ctx, from, sizeof(from));
		return ls_errf(errmsg, LS_ERR_INVALID, "%s.%s: cannot apply %s: "
		    "the source sent no replica identity to find the row by (its "
		    "key columns are generated, which PostgreSQL does not send, "
		    "or it has REPLICA IDENTITY NOTHING); set REPLICA IDENTITY "
		    "FULL on the source table%s", rel->schema, rel->name,
		    ch->kind == LS_CHANGE_UPDATE ? "UPDATE" : "DELETE", from);
	}
	/*
	 * SET every sent column, except unchanged TOAST and, when the key did
	 * not change (no old tuple), the key columns: identity columns
	 * GENERATED ALWAYS may not be assigned.
	 */
	for (i = 0; i < rel->ncols; i++)
		setmask[i] = ch->kind == LS_CHANGE_UPDATE &&
		    ch->new.vals[i].kind != LS_VAL_UNCHANGED &&
		    !(ch->old_kind == LS_OLD_NONE &&
		    (rel->cols[i].flags & LS_COL_KEY));
	/*
	 * An identity column GENERATED ALWAYS may not be SET: left alone when
	 * it did not change (or nothing says it did); a changed one (SET ...
	 * = DEFAULT on the source) makes the update a delete and an insert.
	 */
	for (i = 0; ch->kind == LS_CHANGE_UPDATE && i < rel->ncols; i++) {
		if (!setmask[i] || ri->always == NULL || !ri->always[i])
			continue;
		setmask[i] = 0;
		if (ch->old_kind != LS_OLD_NONE && !same_value(&ch->old.vals[i],
		    &ch->new.vals[i]))
			return update_by_reinsert(a, rel, ch, errmsg);
	}
	if (ch->kind == LS_CHANGE_UPDATE && memchr(setmask, 1, rel->ncols) == NULL)
		return 0;	/* nothing but the unchanged key: no-op */
	if (ch->kind == LS_CHANGE_INSERT)
		sql_insert(&sql, a->c, rel);
	else if (ch->kind == LS_CHANGE_UPDATE)
		sql_update(&sql, a->c, rel, ri, setmask, wmask, full);
	else
		sql_delete(&sql, a->c, rel, ri, wmask, full);
	key = shape_key(ch->kind, rel->oid, relation_version(a, rel->oid),
	    ch->kind == LS_CHANGE_UPDATE ? setmask : NULL,
	    ch->kind == LS_CHANGE_INSERT ? NULL : wmask, rel->ncols, full);
	n = ch->kind == LS_CHANGE_INSERT ?
	    bind_all(a, ri, types, &ch->new, NULL, NULL, NULL, rel->ncols) :
	    bind_all(a, ri, types, ch->kind == LS_CHANGE_UPDATE ? &ch->new : NULL,
	    setmask, wt, wmask, rel->ncols);
	if (sql.oom || key == NULL) {
		free(sql.p);
		free(key);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	r = statement(a, key, &sql, rel->oid, n, types, &name, errmsg);
	free(sql.p);
	if (r != 0)
		return r;
	a->rows++;
	return sent(a, PQsendQueryPrepared(a->c, name, n, a->values, a->lengths,
	    a->formats, 0), rel->oid, errmsg);
}

static int
run_truncate(struct applier *a, const struct ls_change *ch, char **errmsg)
{
	struct sqlbuf sql = { 0 };
	const struct ls_relation *rel;
	uint32_t i;
	int r;

	sb_add(&sql, "TRUNCATE ONLY ");
	for (i = 0; i < ch->nrelids; i++) {
		if ((rel = relcache_get(a->rels, ch->relids[i])) == NULL) {
			free(sql.p);
			return ls_errf(errmsg, LS_ERR_CORRUPT, "truncate of "
			    "unknown relation %u", ch->relids[i]);
		}
		if ((r = resolve(a, rel, errmsg)) != 0) {
			free(sql.p);
			return r;
		}
		sb_add(&sql, i ? ", " : "");
		sb_table(&sql, a->c, rel);
	}
	if (ch->trunc_flags & LS_TRUNCATE_RESTART_IDENTITY)
		sb_add(&sql, " RESTART IDENTITY");
	if (ch->trunc_flags & LS_TRUNCATE_CASCADE)
		sb_add(&sql, " CASCADE");
	r = sql.oom ? ls_errf(errmsg, LS_ERR_NOMEM, "out of memory") :
	    send_simple(a, sql.p, errmsg);
	free(sql.p);
	return r;
}

/* ---- runs of inserts ---- */

static int copy_end(struct applier *, const char *abort_msg, char **);

/* Free the buffered rows of the run. */
static void
free_rows(struct applier *a)
{
	size_t i;

	for (i = 0; i < a->nrun; i++) {
		uint16_t k;
		for (k = 0; k < a->run[i].ncols; k++)
			free((char *)a->run[i].vals[k].data);
		free(a->run[i].vals);
	}
	a->nrun = 0;
}

/* Drop the run: its buffered rows, and its open COPY, aborted. */
static void
discard_run(struct applier *a)
{
	char *ignore = NULL;

	free_rows(a);
	if (a->copying)
		(void)copy_end(a, "logship: the batch was rolled back", &ignore);
	free(ignore);
	a->run_relid = 0;
}

/* Only plain text and NULL values travel by COPY text. */
static bool
copyable(const struct ls_change *ch)
{
	uint16_t i;

	if (ch->kind != LS_CHANGE_INSERT)
		return false;
	for (i = 0; i < ch->new.ncols; i++)
		if (ch->new.vals[i].kind != LS_VAL_TEXT &&
		    ch->new.vals[i].kind != LS_VAL_NULL)
			return false;
	return true;
}

static int
buffer_insert(struct applier *a, const struct ls_change *ch)
{
	struct run_row *bigger, *row;
	uint16_t i;

	if (a->nrun == a->runcap) {
		a->runcap = a->runcap ? a->runcap * 2 : 64;
		if ((bigger = realloc(a->run, a->runcap * sizeof(*bigger))) == NULL)
			return LS_ERR_NOMEM;
		a->run = bigger;
	}
	row = &a->run[a->nrun];
	if ((row->vals = calloc(ch->new.ncols + 1, sizeof(*row->vals))) == NULL)
		return LS_ERR_NOMEM;
	row->ncols = ch->new.ncols;
	row->ctx = a->ctx;
	a->nrun++;
	for (i = 0; i < row->ncols; i++) {
		row->vals[i] = ch->new.vals[i];
		if (row->vals[i].data != NULL &&
		    (row->vals[i].data = strndup(ch->new.vals[i].data,
		    ch->new.vals[i].len)) == NULL)
			return LS_ERR_NOMEM;
	}
	a->run_relid = ch->relid;
	return 0;
}

/* One COPY text line for a row, appended to *buf: runs of plain bytes at once. */
static int
copy_line(struct sqlbuf *b, uint16_t ncols, const struct ls_value *vals)
{
	const char *p, *run;
	char esc[2] = { '\\', 0 };
	uint16_t i;
	uint32_t k;

	for (i = 0; i < ncols; i++) {
		if (i > 0)
			sb_addn(b, "\t", 1);
		if (vals[i].kind == LS_VAL_NULL) {
			sb_addn(b, "\\N", 2);
			continue;
		}
		p = vals[i].data;
		for (run = p, k = 0; k < vals[i].len; k++) {
			switch (p[k]) {
			case '\\': esc[1] = '\\'; break;
			case '\t': esc[1] = 't'; break;
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			default: continue;
			}
			sb_addn(b, run, (size_t)(p + k - run));
			sb_addn(b, esc, 2);
			run = p + k + 1;
		}
		sb_addn(b, run, (size_t)(p + vals[i].len - run));
	}
	sb_addn(b, "\n", 1);
	return b->oom ? LS_ERR_NOMEM : 0;
}

/*
 * Hand the gathered COPY data to libpq: at COPY_CHUNK, or all of it when
 * the COPY ends.  A refusal is out of memory or a lost connection (libpq
 * reads the target's error about a row only at the COPY's end).
 */
static int
copy_put(struct applier *a, bool all, char **errmsg)
{
	struct sqlbuf *b = &a->copybuf;

	if (b->oom)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (b->len == 0 || (!all && b->len < COPY_CHUNK))
		return 0;
	if (PQputCopyData(a->c, b->p, (int)b->len) != 1)
		return -1;
	a->unsent += b->len;
	b->len = 0;
	return a->unsent > UNSENT_MAX ? push(a, errmsg) : 0;
}

/*
 * The open COPY's next line comes from the source transaction x: note
 * where a new one starts, so that an error about line N names its
 * transaction (a COPY may span many).  Not noted, out of memory: the
 * error names the transaction being sent instead.
 */
static void
copy_note(struct applier *a, const struct cmdctx *x)
{
	struct copy_from *bigger, *last = a->ncopy_from ?
	    &a->copy_from[a->ncopy_from - 1] : NULL;
	size_t cap;

	if (last != NULL && last->ctx.xid == x->xid && last->ctx.lsn == x->lsn)
		return;
	if (a->ncopy_from == a->copy_from_cap) {
		cap = a->copy_from_cap ? a->copy_from_cap * 2 : 16;
		if ((bigger = realloc(a->copy_from, cap * sizeof(*bigger))) == NULL)
			return;
		a->copy_from = bigger;
		a->copy_from_cap = cap;
	}
	a->copy_from[a->ncopy_from].line = a->copy_rows + 1;
	a->copy_from[a->ncopy_from++].ctx = *x;
}

/* " (table ..., segment ..., source transaction ...)" of the line res names. */
static void
copy_where(struct applier *a, const PGresult *res, char *buf, size_t len)
{
	const char *c = PQresultErrorField(res, PG_DIAG_CONTEXT), *p;
	struct cmdctx x = a->ctx;
	unsigned long long line = 0;
	size_t i;

	if (c != NULL && (p = strstr(c, ", line ")) != NULL)
		line = strtoull(p + 7, NULL, 10);
	for (i = 0; line > 0 && i < a->ncopy_from &&
	    a->copy_from[i].line <= line; i++)
		x = a->copy_from[i].ctx;
	x.relid = a->run_relid;
	where_from(a, &x, buf, len);
}

/*
 * Leave pipeline mode and open a COPY into the run's relation, with the
 * buffered rows as its first lines; later inserts into it stream into the
 * COPY while the target reads it, until something else needs the
 * connection (flush_run).
 */
static int
copy_start(struct applier *a, const struct ls_relation *rel, char **errmsg)
{
	struct sqlbuf sql = { 0 };
	PGresult *res;
	char from[512];
	size_t i;
	int r, col;

	if ((r = resolve(a, rel, errmsg)) != 0 ||
	    (a->queued > 0 && (r = drain(a, errmsg)) != 0))
		return r;
	sb_add(&sql, "COPY ");
	sb_table(&sql, a->c, rel);
	for (col = 0; col < rel->ncols; col++) {
		sb_add(&sql, col ? ", " : " (");
		sb_ident(&sql, a->c, rel->cols[col].name);
	}
	sb_add(&sql, rel->ncols ? ") FROM STDIN" : " FROM STDIN");
	if (sql.oom) {
		free(sql.p);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	if (PQexitPipelineMode(a->c) != 1) {
		free(sql.p);
		return ls_errf(errmsg, LS_ERR_PG, "target: %s",
		    PQerrorMessage(a->c));
	}
	res = PQexec(a->c, sql.p);
	free(sql.p);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		copy_where(a, res, from, sizeof(from));
		r = ls_errf(errmsg, target_classify(a->c, res), "target: COPY: "
		    "%.*s%s", (int)strcspn(PQresultErrorMessage(res), "\n"),
		    PQresultErrorMessage(res), from);
		PQclear(res);
		while ((res = PQgetResult(a->c)) != NULL)
			PQclear(res);
		(void)PQenterPipelineMode(a->c);
		a->failed = 1;
		return r;
	}
	PQclear(res);
	a->copying = true;
	a->copy_rows = 0;
	a->ncopy_from = 0;
	a->copybuf.len = 0;
	for (i = 0; i < a->nrun && r == 0; i++, a->copy_rows++) {
		copy_note(a, &a->run[i].ctx);
		r = copy_line(&a->copybuf, a->run[i].ncols, a->run[i].vals);
	}
	free_rows(a);
	if (r != 0) {
		(void)copy_end(a, "logship: out of memory", errmsg);
		a->failed = 1;
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	return copy_put(a, false, errmsg) != 0 ? copy_end(a, NULL, errmsg) : 0;
}

/*
 * End the open COPY (abort_msg: abort it), read its result and go back to
 * pipeline mode.  The target's error names the table and the source
 * transaction being sent.
 */
static int
copy_end(struct applier *a, const char *abort_msg, char **errmsg)
{
	PGresult *res;
	char from[512] = "";
	bool aborting = abort_msg != NULL, lost = false;
	int r = 0;

	a->copying = false;
	if (!aborting && (a->copybuf.oom || copy_put(a, true, errmsg) != 0)) {
		/* rows that did not go must not commit: the COPY fails */
		abort_msg = "logship: the COPY data could not be sent";
		lost = true;
	}
	if (PQputCopyEnd(a->c, abort_msg) != 1)
		lost = true;
	a->copybuf.len = 0;
	a->copybuf.oom = 0;
	while ((res = PQgetResult(a->c)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (r == 0 && !aborting && st != PGRES_COMMAND_OK) {
			const char *m = st == PGRES_COPY_IN ? "the COPY could not "
			    "be ended" : PQresultErrorMessage(res);
			copy_where(a, res, from, sizeof(from));
			r = ls_errf(errmsg, st == PGRES_COPY_IN ? LS_ERR_TRANSIENT :
			    target_classify(a->c, res), "target: COPY: %.*s%s",
			    (int)strcspn(m, "\n"), m, from);
		}
		PQclear(res);
		if (st == PGRES_COPY_IN) {	/* never ended: drop the session */
			lost = true;
			r = r ? r : LS_ERR_TRANSIENT;
			break;
		}
	}
	if (r == 0 && !aborting && lost)
		r = ls_errf(errmsg, LS_ERR_TRANSIENT, "target: %s",
		    PQerrorMessage(a->c));
	if (PQenterPipelineMode(a->c) != 1 && r == 0)
		r = ls_errf(errmsg, PQstatus(a->c) == CONNECTION_OK ? LS_ERR_PG :
		    LS_ERR_TRANSIENT, "target: %s", PQerrorMessage(a->c));
	if (r == 0 && !aborting)
		a->rows += a->copy_rows;
	else if (!aborting)
		a->failed = 1;
	a->copy_rows = 0;
	a->ncopy_from = 0;
	a->run_relid = 0;
	return r;
}

/*
 * Send the run: end its open COPY, or send its few buffered rows one by
 * one (a run long enough for COPY has one open already).
 */
static int
flush_run(struct applier *a, char **errmsg)
{
	const struct ls_relation *rel;
	struct ls_change ch = { .kind = LS_CHANGE_INSERT };
	size_t i;
	int r = 0;

	if (a->copying)
		return copy_end(a, NULL, errmsg);
	if (a->nrun == 0)
		return 0;
	if ((rel = relcache_get(a->rels, a->run_relid)) == NULL)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "insert run of unknown "
		    "relation %u", a->run_relid);
	else
		for (i = 0; i < a->nrun && r == 0; i++) {
			ch.relid = a->run_relid;
			ch.new = (struct ls_tuple){ a->run[i].ncols, a->run[i].vals };
			if ((r = run_change(a, rel, &ch, errmsg)) == 0)
				r = maybe_drain(a, errmsg);
		}
	free_rows(a);
	a->run_relid = 0;
	return r;
}

/*
 * An insert that may join the run: buffered, or streamed into the open
 * COPY; the run's RUN_COPY_MIN-th row opens the COPY.
 */
static int
run_insert(struct applier *a, const struct ls_change *ch, char **errmsg)
{
	const struct ls_relation *rel;

	if (a->copying) {
		copy_note(a, &a->ctx);
		a->copy_rows++;
		if (copy_line(&a->copybuf, ch->new.ncols, ch->new.vals) != 0) {
			(void)copy_end(a, "logship: out of memory", errmsg);
			a->failed = 1;
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		}
		return copy_put(a, false, errmsg) != 0 ? copy_end(a, NULL, errmsg) :
		    0;
	}
	if (buffer_insert(a, ch) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (a->nrun < RUN_COPY_MIN)
		return 0;
	if ((rel = relcache_get(a->rels, a->run_relid)) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "insert run of unknown "
		    "relation %u", a->run_relid);
	return copy_start(a, rel, errmsg);
}

/* ---- net change of updates (fold.h) ---- */

/* An update that may wait for its row's net change. */
static bool
foldable(const struct applier *a, const struct ls_change *ch)
{
	const struct ls_relation *rel;
	const struct relinfo *ri;
	uint16_t i;

	if (ch->kind != LS_CHANGE_UPDATE || ch->old_kind != LS_OLD_NONE ||
	    !a->in_batch || (ri = relinfo_get(a, ch->relid)) == NULL ||
	    !ri->foldable || (rel = relcache_get(a->rels, ch->relid)) == NULL ||
	    ch->new.ncols != rel->ncols)
		return false;
	for (i = 0; i < rel->ncols; i++)
		if ((rel->cols[i].flags & LS_COL_KEY) &&
		    ch->new.vals[i].kind != LS_VAL_TEXT)
			return false;
	return true;
}

static int
fold_change(struct applier *a, const struct ls_change *ch, char **errmsg)
{
	const struct ls_relation *rel = relcache_get(a->rels, ch->relid);
	struct fold_ctx ctx = { a->ctx.segno, a->ctx.lsn, a->ctx.xid };
	char key[1664];
	bool merged;
	uint16_t i;
	int r;

	for (i = 0; i < rel->ncols; i++)
		key[i] = (rel->cols[i].flags & LS_COL_KEY) != 0;
	if ((r = fold_put(a->fold, ch->relid, &ch->new, key, &ctx,
	    &merged)) != 0)
		return r == LS_ERR_NOMEM ? ls_errf(errmsg, r, "out of memory") :
		    ls_errf(errmsg, r, "%s.%s: held update of another shape",
		    rel->schema, rel->name);
	if (merged) {
		a->rows++;	/* applied, by the row's last image */
		a->folded++;
	}
	if (fold_rows(a->fold) >= FOLD_MAX_ROWS ||
	    fold_bytes(a->fold) >= FOLD_MAX_BYTES)
		return fold_send(a, 0, errmsg);
	return 0;
}

/* ---- folded updates as one UPDATE ... FROM unnest per shape ---- */

#define SET_MAX_ROWS	2000
#define SET_MAX_BYTES	(8u << 20)
#define TEXTARRAYOID	1009

static void
set_reset(struct setrun *sr)
{
	uint16_t i;

	for (i = 0; i < sr->ncols; i++) {
		sr->arr[i].len = 0;
		sr->arr[i].oom = 0;
	}
	sr->relid = 0;
	sr->rows = 0;
	sr->bytes = 0;
}

static void
set_free(struct setrun *sr)
{
	uint16_t i;

	for (i = 0; i < sr->ncols; i++)
		free(sr->arr[i].p);
	free(sr->arr);
	memset(sr, 0, sizeof(*sr));
}


/* One element of a text array literal: NULL, or quoted and escaped. */
static void
sb_element(struct sqlbuf *b, const struct ls_value *v)
{
	const char *p = v->data, *run;
	uint32_t k;

	sb_addn(b, b->len > 0 ? "," : "{", 1);
	if (v->kind == LS_VAL_NULL) {
		sb_addn(b, "NULL", 4);
		return;
	}
	sb_addn(b, "\"", 1);
	for (run = p, k = 0; k < v->len; k++) {
		if (p[k] != '"' && p[k] != '\\')
			continue;
		sb_addn(b, run, (size_t)(p + k - run));
		sb_addn(b, "\\", 1);
		run = p + k;
	}
	sb_addn(b, run, (size_t)(p + v->len - run));
	sb_addn(b, "\"", 1);
}

/*
 * Send the gathered rows: UPDATE [ONLY] t AS ls_t SET col = ls_v.cN::type
 * ... FROM unnest($1::text[], ...) AS ls_v(c1, ...) WHERE ls_t.key =
 * ls_v.cK::type; each row's key is unique in the run (the fold's key).
 */
static int
set_flush(struct applier *a, char **errmsg)
{
	struct setrun *sr = &a->set;
	const struct ls_relation *rel;
	const struct relinfo *ri;
	struct sqlbuf sql = { 0 };
	char num[32], keymask[1664], *key;
	const char *name = NULL;
	Oid types[MAX_PARAMS];
	int n = 0, nset = 0, nkey = 0, r;
	uint16_t i;

	if (sr->relid == 0 || sr->rows == 0) {
		set_reset(sr);
		return 0;
	}
	rel = relcache_get(a->rels, sr->relid);
	ri = relinfo_get(a, sr->relid);
	if (rel == NULL || ri == NULL) {
		set_reset(sr);
		return ls_errf(errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", sr->relid);
	}
	for (i = 0; i < rel->ncols; i++)
		keymask[i] = (rel->cols[i].flags & LS_COL_KEY) != 0;
	sb_add(&sql, "UPDATE ");
	sb_only(&sql, a->c, rel, ri);
	sb_add(&sql, " AS ls_t SET ");
	for (i = 0; i < rel->ncols; i++) {
		if (!keymask[i] && !sr->mask[i])
			continue;
		n++;
		if (sr->mask[i]) {
			sb_add(&sql, nset++ ? ", " : "");
			sb_ident(&sql, a->c, rel->cols[i].name);
			snprintf(num, sizeof(num), " = ls_v.c%d::", n);
			sb_add(&sql, num);
			sb_add(&sql, ri->tnames[i]);
		}
	}
	sb_add(&sql, " FROM unnest(");
	for (i = 1; i <= n; i++) {
		snprintf(num, sizeof(num), "%s$%d::text[]", i > 1 ? ", " : "",
		    i);
		sb_add(&sql, num);
	}
	sb_add(&sql, ") AS ls_v(");
	for (i = 1; i <= n; i++) {
		snprintf(num, sizeof(num), "%sc%d", i > 1 ? ", " : "", i);
		sb_add(&sql, num);
	}
	sb_add(&sql, ")");
	for (i = 0, n = 0; i < rel->ncols; i++) {
		if (!keymask[i] && !sr->mask[i])
			continue;
		n++;
		if (!keymask[i])
			continue;
		sb_add(&sql, nkey++ ? " AND ls_t." : " WHERE ls_t.");
		sb_ident(&sql, a->c, rel->cols[i].name);
		snprintf(num, sizeof(num), " = ls_v.c%d::", n);
		sb_add(&sql, num);
		sb_add(&sql, ri->tnames[i]);
	}
	for (i = 0, n = 0; i < rel->ncols; i++) {
		if (!keymask[i] && !sr->mask[i])
			continue;
		sb_addn(&sr->arr[i], sr->arr[i].len > 0 ? "}" : "{}", sr->arr[i].len
		    > 0 ? 1 : 2);
		if (sr->arr[i].oom)
			sql.oom = 1;
		types[n] = TEXTARRAYOID;
		a->unsent += sr->arr[i].len + 4;
		a->values[n] = sr->arr[i].p;
		a->lengths[n] = 0;
		a->formats[n++] = 0;
	}
	key = shape_key('S', rel->oid, relation_version(a, rel->oid), sr->mask,
	    keymask, rel->ncols, false);
	if (sql.oom || key == NULL) {
		free(sql.p);
		free(key);
		set_reset(sr);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	r = statement(a, key, &sql, rel->oid, n, types, &name, errmsg);
	free(sql.p);
	if (r == 0) {
		struct cmdctx keep = a->ctx;
		a->ctx.segno = sr->ctx.segno;
		a->ctx.lsn = sr->ctx.lsn;
		a->ctx.xid = sr->ctx.xid;
		a->ctx.expect = sr->rows;
		a->rows += sr->rows;
		r = sent(a, PQsendQueryPrepared(a->c, name, n, a->values,
		    a->lengths, a->formats, 0), rel->oid, errmsg);
		a->ctx = keep;
	}
	set_reset(sr);
	return r != 0 ? r : maybe_drain(a, errmsg);
}

/*
 * Gather a folded update into the run of its shape (*taken), sending the
 * run first when the shape differs or it is full.  Not taken: a binary
 * value, an unknown type name; the caller sends it alone.
 */
static int
set_add(struct applier *a, const struct ls_relation *rel,
    const struct ls_tuple *t, const struct fold_ctx *ctx, bool *taken,
    char **errmsg)
{
	struct setrun *sr = &a->set;
	const struct relinfo *ri = relinfo_get(a, rel->oid);
	char mask[1664];
	uint16_t i;
	int r;

	*taken = false;
	if (ri == NULL || !ri->resolved || ri->tnames == NULL ||
	    ri->ntnames != rel->ncols || t->ncols != rel->ncols)
		return 0;
	for (i = 0; i < rel->ncols; i++) {
		bool key = (rel->cols[i].flags & LS_COL_KEY) != 0;
		mask[i] = t->vals[i].kind != LS_VAL_UNCHANGED && !key &&
		    !(ri->always != NULL && ri->always[i]);
		if ((key || mask[i]) && (t->vals[i].kind == LS_VAL_BINARY ||
		    (key && t->vals[i].kind != LS_VAL_TEXT) ||
		    ri->tnames[i] == NULL))
			return 0;
	}
	*taken = true;
	if (memchr(mask, 1, rel->ncols) == NULL)
		return 0;	/* nothing but the unchanged key: no-op */
	if (sr->relid != 0 && (sr->relid != rel->oid ||
	    memcmp(sr->mask, mask, rel->ncols) != 0) &&
	    (r = set_flush(a, errmsg)) != 0)
		return r;
	if (sr->relid == 0) {
		if (sr->ncols < rel->ncols) {
			struct sqlbuf *bigger = realloc(sr->arr, rel->ncols *
			    sizeof(*bigger));
			if (bigger == NULL)
				return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			memset(bigger + sr->ncols, 0, (rel->ncols - sr->ncols) *
			    sizeof(*bigger));
			sr->arr = bigger;
			sr->ncols = rel->ncols;
		}
		sr->relid = rel->oid;
		memcpy(sr->mask, mask, rel->ncols);
	}
	for (i = 0; i < rel->ncols; i++) {
		if (!mask[i] && !(rel->cols[i].flags & LS_COL_KEY))
			continue;
		sb_element(&sr->arr[i], &t->vals[i]);
		sr->bytes += t->vals[i].len + 3;
		if (sr->arr[i].oom) {
			set_reset(sr);
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		}
	}
	sr->ctx = *ctx;
	if (++sr->rows >= SET_MAX_ROWS || sr->bytes >= SET_MAX_BYTES)
		return set_flush(a, errmsg);
	return 0;
}

struct fold_out {
	struct applier	*a;
	char		**errmsg;
};

static int
fold_one(void *arg, uint32_t relid, const struct ls_tuple *t,
    const struct fold_ctx *ctx)
{
	struct fold_out *o = arg;
	struct applier *a = o->a;
	const struct ls_relation *rel = relcache_get(a->rels, relid);
	struct ls_change ch = { 0 };
	bool taken;
	int r;

	if (rel == NULL)
		return ls_errf(o->errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", relid);
	if ((r = set_add(a, rel, t, ctx, &taken, o->errmsg)) != 0 || taken)
		return r;
	if ((r = set_flush(a, o->errmsg)) != 0)
		return r;
	ch.kind = LS_CHANGE_UPDATE;
	ch.relid = relid;
	ch.old_kind = LS_OLD_NONE;
	ch.new = *t;
	a->ctx.segno = ctx->segno;
	a->ctx.lsn = ctx->lsn;
	a->ctx.xid = ctx->xid;
	if ((r = run_change(a, rel, &ch, o->errmsg)) != 0)
		return r;
	return maybe_drain(a, o->errmsg);
}

/* Send the held updates of relid (0: all), after the inserts before them. */
static int
fold_send(struct applier *a, uint32_t relid, char **errmsg)
{
	struct fold_out o = { a, errmsg };
	struct cmdctx keep = a->ctx;
	int r;

	if ((r = flush_run(a, errmsg)) != 0)
		return r;
	if (fold_rows(a->fold) == 0)
		return 0;
	r = fold_take(a->fold, relid, fold_one, &o);
	if (r == 0)
		r = set_flush(a, errmsg);
	else
		set_reset(&a->set);
	a->ctx = keep;
	return r;
}

int
applier_change(struct applier *a, const struct ls_change *ch, char **errmsg)
{
	const struct ls_relation *rel;
	int r;

	/* keep the socket fed while the changes are decoded and gathered */
	if (a->unsent > 0 && ++a->tick % PUSH_EVERY == 0 &&
	    (r = push(a, errmsg)) != 0)
		return r;
	/* a definition the target lacks fails here, at the change needing it */
	if (ch->kind != LS_CHANGE_TRUNCATE &&
	    (rel = relcache_get(a->rels, ch->relid)) != NULL &&
	    (r = resolve(a, rel, errmsg)) != 0)
		return r;
	if (foldable(a, ch))
		return fold_change(a, ch, errmsg);
	/* held updates of the table go first; a TRUNCATE may cascade */
	if (ch->kind == LS_CHANGE_TRUNCATE ? fold_rows(a->fold) > 0 :
	    fold_has(a->fold, ch->relid)) {
		if ((r = fold_send(a, ch->kind == LS_CHANGE_TRUNCATE ? 0 :
		    ch->relid, errmsg)) != 0)
			return r;
	}
	if (copyable(ch) && ((a->nrun == 0 && !a->copying) ||
	    a->run_relid == ch->relid))
		return run_insert(a, ch, errmsg);
	if ((r = flush_run(a, errmsg)) != 0)
		return r;
	if (copyable(ch))
		return applier_change(a, ch, errmsg);
	if (ch->kind == LS_CHANGE_TRUNCATE)
		r = run_truncate(a, ch, errmsg);
	else if ((rel = relcache_get(a->rels, ch->relid)) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", ch->relid);
	else
		r = run_change(a, rel, ch, errmsg);
	return r != 0 ? r : maybe_drain(a, errmsg);
}

int
applier_sequence(struct applier *a, const struct ls_sequence *s,
    char **errmsg)
{
	char value[32];
	int r;

	if ((r = flush_run(a, errmsg)) != 0)
		return r;
	const char *params[4] = { s->schema, s->name, value,
	    s->is_called ? "t" : "f" };

	snprintf(value, sizeof(value), "%" PRId64, s->last_value);
	return sent(a, PQsendQueryParams(a->c, "SELECT setval(format('%I.%I', "
	    "$1::text, $2::text)::regclass, $3::bigint, $4::bool) FROM "
	    "pg_sequences WHERE schemaname = $1 AND sequencename = $2 AND "
	    "(last_value IS NULL OR last_value < $3::bigint)", 4, NULL, params,
	    NULL, NULL, 0), 0, errmsg);
}
