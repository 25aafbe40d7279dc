/*
 * apply.c: changes to SQL (see apply.h).  Statements are prepared once per
 * shape — relation version, kind, which columns are set, which identify the
 * row — and kept in a small hash map; everything is sent in pipeline mode
 * and the results are drained at sync points.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "apply.h"
#include "relcache.h"
#include "target.h"

#define SYNC_EVERY	256
#define MAX_PARAMS	(2 * 1664)
#define RUN_COPY_MIN	64		/* inserts in a row before COPY pays */
#define RUN_MAX_ROWS	10000
#define RUN_MAX_BYTES	(8u << 20)

/* A buffered insert of a run: its values, copied. */
struct run_row {
	uint16_t	 ncols;
	struct ls_value	*vals;		/* data points into the run's arena */
};

struct stmt {
	char		*key;		/* shape */
	char		 name[24];	/* prepared statement name */
};

struct applier {
	PGconn		*c;
	struct relcache	*rels;
	uint32_t	*relver_oid;	/* relation versions: oid -> version */
	uint32_t	*relver;
	size_t		 nrelver;
	uint32_t	 version_seq;
	struct stmt	*stmts;		/* open addressing */
	size_t		 cap, n;
	unsigned	 next_name;
	int		 queued;	/* commands sent since the last sync */
	int		 in_batch;
	int		 failed;	/* an error is pending in the pipeline */
	uint64_t	 rows, missing;
	/* consecutive inserts into one relation, sent as COPY when long */
	uint32_t	 run_relid;
	struct run_row	*run;
	size_t		 nrun, runcap;
	size_t		 run_bytes;
	const char	*values[MAX_PARAMS];
	int		 lengths[MAX_PARAMS];
	int		 formats[MAX_PARAMS];
};

static int flush_run(struct applier *, char **);
static void discard_run(struct applier *);

int
applier_new(PGconn *c, struct applier **out, char **errmsg)
{
	struct applier *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->rels = relcache_new()) == NULL) {
		free(a);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	a->c = c;
	if (PQenterPipelineMode(c) != 1) {
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
	free(a->run);
	for (i = 0; i < a->cap; i++)
		free(a->stmts[i].key);
	free(a->stmts);
	free(a->relver_oid);
	free(a->relver);
	relcache_free(a->rels);
	free(a);
}

uint64_t applier_rows(const struct applier *a) { return a->rows; }
uint64_t applier_missing(const struct applier *a) { return a->missing; }
int applier_in_batch(const struct applier *a) { return a->in_batch; }

static uint32_t
relation_version(const struct applier *a, uint32_t oid)
{
	size_t i;

	for (i = 0; i < a->nrelver; i++)
		if (a->relver_oid[i] == oid)
			return a->relver[i];
	return 0;
}

int
applier_relation(struct applier *a, const struct ls_relation *rel,
    char **errmsg)
{
	uint32_t *o, *v;
	size_t i;

	if (a->nrun > 0 && a->run_relid == rel->oid && flush_run(a, errmsg) != 0)
		return LS_ERR_PG;

	if (relcache_put(a->rels, rel) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (i = 0; i < a->nrelver; i++)
		if (a->relver_oid[i] == rel->oid) {
			a->relver[i] = ++a->version_seq;	/* new shape */
			return 0;
		}
	o = realloc(a->relver_oid, (a->nrelver + 1) * sizeof(*o));
	v = o ? realloc(a->relver, (a->nrelver + 1) * sizeof(*v)) : NULL;
	if (o != NULL)
		a->relver_oid = o;
	if (v == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	a->relver = v;
	a->relver_oid[a->nrelver] = rel->oid;
	a->relver[a->nrelver++] = ++a->version_seq;
	return 0;
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

static int
sent(struct applier *a, int ok, char **errmsg)
{
	if (ok != 1)
		return ls_errf(errmsg, PQstatus(a->c) == CONNECTION_OK ?
		    LS_ERR_PG : LS_ERR_TRANSIENT, "target: %s",
		    PQerrorMessage(a->c));
	a->queued++;
	return 0;
}

static int
send_simple(struct applier *a, const char *sql, char **errmsg)
{
	return sent(a, PQsendQueryParams(a->c, sql, 0, NULL, NULL, NULL, NULL, 0),
	    errmsg);
}

/* Remember the first error of a drained result. */
static void
note_result(struct applier *a, PGresult *res, char **errmsg)
{
	ExecStatusType st = PQresultStatus(res);
	const char *tuples;

	if (st == PGRES_FATAL_ERROR && !a->failed) {
		char *m = strdup(PQresultErrorMessage(res)), *nl;
		if (m != NULL && (nl = strchr(m, '\n')) != NULL)
			*nl = '\0';
		a->failed = target_classify(a->c, res) == LS_ERR_TRANSIENT ? 2 : 1;
		ls_errf(errmsg, LS_ERR_PG, "target: %s", m ? m : "error");
		free(m);
	} else if (st == PGRES_COMMAND_OK) {
		tuples = PQcmdTuples(res);
		if ((strncmp(PQcmdStatus(res), "UPDATE", 6) == 0 ||
		    strncmp(PQcmdStatus(res), "DELETE", 6) == 0) &&
		    strcmp(tuples, "0") == 0)
			a->missing++;	/* the row was not there */
	}
}

/* Sync and read every result up to the sync point. */
static int
drain(struct applier *a, char **errmsg)
{
	PGresult *res;

	if (PQpipelineSync(a->c) != 1)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "target: %s",
		    PQerrorMessage(a->c));
	for (;;) {
		res = PQgetResult(a->c);
		if (res == NULL) {
			if (PQstatus(a->c) != CONNECTION_OK)
				return ls_errf(errmsg, LS_ERR_TRANSIENT, "target: "
				    "connection lost: %s", PQerrorMessage(a->c));
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		note_result(a, res, errmsg);
		PQclear(res);
	}
	a->queued = 0;
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
applier_commit(struct applier *a, const char *extra1, const char *extra2,
    char **errmsg)
{
	int r;

	if ((r = flush_run(a, errmsg)) != 0 ||
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
	if (PQstatus(a->c) == CONNECTION_OK &&
	    send_simple(a, "ROLLBACK", &ignore) == 0)
		(void)drain(a, &ignore);
	free(ignore);
	a->in_batch = 0;
	a->failed = 0;
}

/* ---- SQL for each change shape ---- */

/* Types without an equality operator: compare their text forms. */
static int
needs_text_compare(uint32_t type_oid)
{
	switch (type_oid) {
	case 114: case 142: case 199: case 143:	/* json, xml and arrays */
	case 600: case 601: case 602: case 603: case 604: case 628: case 718:
	case 1017: case 1018: case 1019: case 1020: case 1027: case 629: case 719:
		return 1;
	}
	return 0;
}

struct sqlbuf {
	char	*p;
	size_t	 len, cap;
	int	 oom;
};

static void
sb_add(struct sqlbuf *b, const char *s)
{
	size_t n = strlen(s);
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
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
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

/* WHERE clause over mask, parameters from $first on. */
static void
sb_where(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel,
    const char *mask, bool full, int first)
{
	int i, n = first, any = 0;

	if (full) {
		sb_add(b, " WHERE ctid = (SELECT ctid FROM ");
		sb_table(b, c, rel);
	}
	sb_add(b, " WHERE ");
	for (i = 0; i < rel->ncols; i++) {
		if (!mask[i])
			continue;
		sb_add(b, any++ ? " AND " : "");
		sb_ident(b, c, rel->cols[i].name);
		if (full && needs_text_compare(rel->cols[i].type_oid))
			sb_add(b, "::text");
		sb_add(b, full ? " IS NOT DISTINCT FROM " : " = ");
		sb_param(b, n++);
		if (full && needs_text_compare(rel->cols[i].type_oid))
			sb_add(b, "::text");
	}
	if (full)
		sb_add(b, " LIMIT 1)");
}

static void
sql_insert(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel)
{
	int i;

	sb_add(b, "INSERT INTO ");
	sb_table(b, c, rel);
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
    const char *setmask, const char *wmask, bool full)
{
	int i, n = 1;

	sb_add(b, "UPDATE ");
	sb_table(b, c, rel);
	sb_add(b, " SET ");
	for (i = 0; i < rel->ncols; i++) {
		if (!setmask[i])
			continue;
		sb_add(b, n > 1 ? ", " : "");
		sb_ident(b, c, rel->cols[i].name);
		sb_add(b, " = ");
		sb_param(b, n++);
	}
	sb_where(b, c, rel, wmask, full, n);
	return n - 1;
}

static void
sql_delete(struct sqlbuf *b, PGconn *c, const struct ls_relation *rel,
    const char *wmask, bool full)
{
	sb_add(b, "DELETE FROM ");
	sb_table(b, c, rel);
	sb_where(b, c, rel, wmask, full, 1);
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
statement(struct applier *a, char *key, struct sqlbuf *sql, const char **name,
    char **errmsg)
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
	if ((r = sent(a, PQsendPrepare(a->c, s->name, sql->p, 0, NULL),
	    errmsg)) != 0)
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
}

/* Parameters: new values under setmask, then old/new under wmask. */
static int
bind_all(struct applier *a, const struct ls_tuple *set, const char *setmask,
    const struct ls_tuple *w, const char *wmask, int ncols)
{
	int i, n = 0;

	for (i = 0; set != NULL && i < ncols; i++)
		if (setmask == NULL || setmask[i])
			bind(a, n++, &set->vals[i]);
	for (i = 0; w != NULL && i < ncols; i++)
		if (wmask[i])
			bind(a, n++, &w->vals[i]);
	return n;
}

static int
run_change(struct applier *a, const struct ls_relation *rel,
    const struct ls_change *ch, char **errmsg)
{
	struct sqlbuf sql = { 0 };
	char setmask[1664], wmask[1664];
	const struct ls_tuple *wt = NULL;
	const char *name = NULL;
	bool full = ch->old_kind == LS_OLD_FULL;
	int i, n, r, nw = 0;
	char *key;

	if (ch->kind != LS_CHANGE_INSERT &&
	    (nw = where_columns(rel, ch, &wt, wmask)) == 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "%s.%s has no replica "
		    "identity: cannot apply %s", rel->schema, rel->name,
		    ch->kind == LS_CHANGE_UPDATE ? "UPDATE" : "DELETE");
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
	if (ch->kind == LS_CHANGE_UPDATE && memchr(setmask, 1, rel->ncols) == NULL)
		return 0;	/* nothing but the unchanged key: no-op */
	if (ch->kind == LS_CHANGE_INSERT)
		sql_insert(&sql, a->c, rel);
	else if (ch->kind == LS_CHANGE_UPDATE)
		sql_update(&sql, a->c, rel, setmask, wmask, full);
	else
		sql_delete(&sql, a->c, rel, wmask, full);
	key = shape_key(ch->kind, rel->oid, relation_version(a, rel->oid),
	    ch->kind == LS_CHANGE_UPDATE ? setmask : NULL,
	    ch->kind == LS_CHANGE_INSERT ? NULL : wmask, rel->ncols, full);
	if (sql.oom || key == NULL) {
		free(sql.p);
		free(key);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	r = statement(a, key, &sql, &name, errmsg);
	free(sql.p);
	if (r != 0)
		return r;
	n = ch->kind == LS_CHANGE_INSERT ?
	    bind_all(a, &ch->new, NULL, NULL, NULL, rel->ncols) :
	    bind_all(a, ch->kind == LS_CHANGE_UPDATE ? &ch->new : NULL, setmask,
	    wt, wmask, rel->ncols);
	(void)nw;
	a->rows++;
	return sent(a, PQsendQueryPrepared(a->c, name, n, a->values, a->lengths,
	    a->formats, 0), errmsg);
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

static void
discard_run(struct applier *a)
{
	size_t i;

	for (i = 0; i < a->nrun; i++) {
		uint16_t k;
		for (k = 0; k < a->run[i].ncols; k++)
			free((char *)a->run[i].vals[k].data);
		free(a->run[i].vals);
	}
	a->nrun = 0;
	a->run_bytes = 0;
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
	a->nrun++;
	for (i = 0; i < row->ncols; i++) {
		row->vals[i] = ch->new.vals[i];
		if (row->vals[i].data != NULL &&
		    (row->vals[i].data = strndup(ch->new.vals[i].data,
		    ch->new.vals[i].len)) == NULL)
			return LS_ERR_NOMEM;
		a->run_bytes += row->vals[i].len + 1;
	}
	a->run_relid = ch->relid;
	return 0;
}

/* One COPY text line for a buffered row, appended to *buf. */
static int
copy_line(struct sqlbuf *b, const struct run_row *row)
{
	char one[2] = { 0, 0 }, esc[3] = { '\\', 0, 0 };
	const char *p;
	uint16_t i;
	uint32_t k;

	for (i = 0; i < row->ncols; i++) {
		sb_add(b, i ? "\t" : "");
		if (row->vals[i].kind == LS_VAL_NULL) {
			sb_add(b, "\\N");
			continue;
		}
		for (p = row->vals[i].data, k = 0; k < row->vals[i].len; k++) {
			switch (p[k]) {
			case '\\': esc[1] = '\\'; sb_add(b, esc); break;
			case '\t': esc[1] = 't'; sb_add(b, esc); break;
			case '\n': esc[1] = 'n'; sb_add(b, esc); break;
			case '\r': esc[1] = 'r'; sb_add(b, esc); break;
			default: one[0] = p[k]; sb_add(b, one);
			}
		}
	}
	sb_add(b, "\n");
	return b->oom ? LS_ERR_NOMEM : 0;
}

/* COPY the run: leave pipeline mode, stream the rows, come back. */
static int
copy_run(struct applier *a, const struct ls_relation *rel, char **errmsg)
{
	struct sqlbuf sql = { 0 }, data = { 0 };
	PGresult *res;
	size_t i;
	int r, col;

	if ((r = drain(a, errmsg)) != 0)
		return r;
	sb_add(&sql, "COPY ");
	sb_table(&sql, a->c, rel);
	sb_add(&sql, " (");
	for (col = 0; col < rel->ncols; col++) {
		sb_add(&sql, col ? ", " : "");
		sb_ident(&sql, a->c, rel->cols[col].name);
	}
	sb_add(&sql, ") FROM STDIN");
	for (i = 0; i < a->nrun && r == 0; i++)
		r = copy_line(&data, &a->run[i]);
	if (r != 0 || sql.oom || PQexitPipelineMode(a->c) != 1) {
		free(sql.p);
		free(data.p);
		return r != 0 ? r : ls_errf(errmsg, LS_ERR_PG, "target: %s",
		    PQerrorMessage(a->c));
	}
	res = PQexec(a->c, sql.p);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		r = ls_errf(errmsg, target_classify(a->c, res), "target: COPY: "
		    "%.*s", (int)strcspn(PQresultErrorMessage(res), "\n"),
		    PQresultErrorMessage(res));
	PQclear(res);
	if (r == 0 && (PQputCopyData(a->c, data.p, (int)data.len) != 1 ||
	    PQputCopyEnd(a->c, NULL) != 1))
		r = ls_errf(errmsg, LS_ERR_TRANSIENT, "target: %s",
		    PQerrorMessage(a->c));
	while ((res = PQgetResult(a->c)) != NULL) {
		if (r == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
			r = ls_errf(errmsg, target_classify(a->c, res),
			    "target: COPY into %s.%s: "
			    "%.*s", rel->schema, rel->name,
			    (int)strcspn(PQresultErrorMessage(res), "\n"),
			    PQresultErrorMessage(res));
		PQclear(res);
	}
	free(sql.p);
	free(data.p);
	if (PQenterPipelineMode(a->c) != 1 && r == 0)
		r = ls_errf(errmsg, LS_ERR_PG, "target: %s", PQerrorMessage(a->c));
	if (r == 0)
		a->rows += a->nrun;
	else
		a->failed = 1;
	return r;
}

static int run_change(struct applier *, const struct ls_relation *,
    const struct ls_change *, char **);

/* Send the buffered inserts: by COPY when the run is long, else one by one. */
static int
flush_run(struct applier *a, char **errmsg)
{
	const struct ls_relation *rel;
	struct ls_change ch = { .kind = LS_CHANGE_INSERT };
	size_t i;
	int r = 0;

	if (a->nrun == 0)
		return 0;
	if ((rel = relcache_get(a->rels, a->run_relid)) == NULL)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "insert run of unknown "
		    "relation %u", a->run_relid);
	else if (a->nrun >= RUN_COPY_MIN)
		r = copy_run(a, rel, errmsg);
	else
		for (i = 0; i < a->nrun && r == 0; i++) {
			ch.relid = a->run_relid;
			ch.new = (struct ls_tuple){ a->run[i].ncols, a->run[i].vals };
			if ((r = run_change(a, rel, &ch, errmsg)) == 0)
				r = maybe_drain(a, errmsg);
		}
	discard_run(a);
	return r;
}

int
applier_change(struct applier *a, const struct ls_change *ch, char **errmsg)
{
	const struct ls_relation *rel;
	int r;

	if (copyable(ch) && (a->nrun == 0 || a->run_relid == ch->relid)) {
		if (buffer_insert(a, ch) != 0)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		if (a->nrun < RUN_MAX_ROWS && a->run_bytes < RUN_MAX_BYTES)
			return 0;
		return flush_run(a, errmsg);
	}
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

	if (flush_run(a, errmsg) != 0)
		return LS_ERR_PG;
	const char *params[4] = { s->schema, s->name, value,
	    s->is_called ? "t" : "f" };

	snprintf(value, sizeof(value), "%" PRId64, s->last_value);
	return sent(a, PQsendQueryParams(a->c, "SELECT setval(format('%I.%I', "
	    "$1::text, $2::text)::regclass, $3::bigint, $4::bool) FROM "
	    "pg_sequences WHERE schemaname = $1 AND sequencename = $2 AND "
	    "(last_value IS NULL OR last_value < $3::bigint)", 4, NULL, params,
	    NULL, NULL, 0), errmsg);
}
