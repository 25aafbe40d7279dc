/*
 * remap.c: new keys from the target, the ID map, foreign keys through it
 * (see remap.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/error.h"
#include "common/log.h"
#include "remap.h"
#include "state.h"
#include "target.h"

#define POOL_BLOCK 1000

struct rtable {
	char		*schema, *name, *qual;	/* qual: "schema.name" */
	char		*oid;			/* the table's, as text */
	int		 keynum;		/* the key column's attnum */
	char		*keycol;
	char		*defexpr;		/* SQL giving a new key */
	char		*seq;			/* its sequence "s.n", or NULL */
	char		**pool;			/* keys drawn, not yet used */
	size_t		 npool, next;
	bool		 live;			/* keys through conn (DDL) */
};

struct fkcol {
	char		*schema, *name, *col;
	char		*oid;		/* the table's, as text */
	int		 attnum;
	struct rtable	*ref;
};

struct remap {
	PGconn		*alloc;		/* draws keys (outside the pipeline) */
	struct remap_conn conn;		/* the applier's, after DDL */
	struct remap_opts o;
	struct state	*st;
	enum missing_ref on_missing;
	struct rtable	*t;
	size_t		 nt;
	struct fkcol	*fk;
	size_t		 nfk;
	char		**scratch;	/* strings of the last call */
	size_t		 nscratch;
	struct ls_value	 vals[2][1664];	/* rewritten tuples */
	char		*line;		/* rewritten COPY line */
	size_t		 linecap;
};

static const char remap_sql[] =
    "SELECT n.nspname, c.relname, a.attname, CASE WHEN a.attidentity <> '' "
    "THEN format('nextval(%L)', pg_get_serial_sequence(format('%I.%I', "
    "n.nspname, c.relname), a.attname)) ELSE pg_get_expr(d.adbin, d.adrelid) "
    "END, (SELECT sn.nspname || '.' || s.relname FROM pg_class s JOIN "
    "pg_namespace sn ON sn.oid = s.relnamespace WHERE s.oid = "
    "pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), "
    "a.attname)::regclass), c.oid, a.attnum FROM pg_index i JOIN pg_class c ON c.oid = "
    "i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN "
    "pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] LEFT "
    "JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum WHERE "
    "i.indisprimary AND i.indnatts = 1 AND n.nspname NOT IN ('pg_catalog', "
    "'information_schema', 'logship') AND (a.attidentity <> '' OR d.adbin "
    "IS NOT NULL) ORDER BY 1, 2";

static const char fk_sql[] =
    "SELECT n.nspname, c.relname, a.attname, rn.nspname, rc.relname, "
    "ra.attname, k.conrelid, u.col FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class rc ON "
    "rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
    "CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(col, refcol) JOIN "
    "pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.col JOIN "
    "pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = u.refcol "
    "WHERE k.contype = 'f'";

static bool
listed(const char *const *list, const char *qual)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, qual) == 0)
			return true;
	return false;
}

static struct rtable *
find(const struct remap *r, const char *schema, const char *name)
{
	size_t i;

	for (i = 0; i < r->nt; i++)
		if (strcmp(r->t[i].schema, schema) == 0 &&
		    strcmp(r->t[i].name, name) == 0)
			return &r->t[i];
	return NULL;
}

static int
add_table(struct remap *r, const PGresult *res, int i)
{
	struct rtable *bigger = realloc(r->t, (r->nt + 1) * sizeof(*bigger)), *t;

	if (bigger == NULL)
		return LS_ERR_NOMEM;
	r->t = bigger;
	t = &r->t[r->nt++];
	memset(t, 0, sizeof(*t));
	t->schema = strdup(PQgetvalue(res, i, 0));
	t->name = strdup(PQgetvalue(res, i, 1));
	t->keycol = strdup(PQgetvalue(res, i, 2));
	t->defexpr = strdup(PQgetvalue(res, i, 3));
	t->seq = PQgetisnull(res, i, 4) ? NULL : strdup(PQgetvalue(res, i, 4));
	t->oid = strdup(PQgetvalue(res, i, 5));
	t->keynum = atoi(PQgetvalue(res, i, 6));
	if (asprintf(&t->qual, "%s.%s", t->schema, t->name) < 0)
		t->qual = NULL;
	return t->schema && t->name && t->keycol && t->defexpr && t->qual &&
	    t->oid ? 0 : LS_ERR_NOMEM;
}

/* A catalog query: on the applier's connection once DDL was replayed. */
static int
catalog(struct remap *r, const char *sql, int n, const char *const *params,
    PGresult **res, char **errmsg)
{
	if (r->conn.query != NULL)
		return r->conn.query(r->conn.arg, sql, n, params, res, errmsg);
	*res = PQexecParams(r->alloc, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(*res) == PGRES_TUPLES_OK)
		return 0;
	n = target_error(r->alloc, *res, errmsg, "reading the target catalog");
	PQclear(*res);
	*res = NULL;
	return n;
}

/* Is row i of remap_sql's result a table asked to be remapped? */
static bool
wanted(const struct remap *r, const PGresult *res, int i)
{
	char qual[256];

	snprintf(qual, sizeof(qual), "%s.%s", PQgetvalue(res, i, 0),
	    PQgetvalue(res, i, 1));
	return (r->o.all && !listed(r->o.preserve, qual)) ||
	    listed(r->o.tables, qual);
}

static int
load_tables(struct remap *r, char **errmsg)
{
	PGresult *res;
	int i, rc;

	if ((rc = catalog(r, remap_sql, 0, NULL, &res, errmsg)) != 0)
		return rc;
	for (i = 0; rc == 0 && i < PQntuples(res); i++)
		if (wanted(r, res, i))
			rc = add_table(r, res, i);
	PQclear(res);
	return rc;
}

/* A column in several foreign keys (simple and composite) is kept once. */
static bool
known_fk(const struct remap *r, const PGresult *res, int i)
{
	size_t k;

	for (k = 0; k < r->nfk; k++)
		if (strcmp(r->fk[k].schema, PQgetvalue(res, i, 0)) == 0 &&
		    strcmp(r->fk[k].name, PQgetvalue(res, i, 1)) == 0 &&
		    strcmp(r->fk[k].col, PQgetvalue(res, i, 2)) == 0)
			return true;
	return false;
}

static int
load_fks(struct remap *r, char **errmsg)
{
	PGresult *res;
	struct rtable *ref;
	struct fkcol *bigger, *f;
	int i, rc;

	if ((rc = catalog(r, fk_sql, 0, NULL, &res, errmsg)) != 0)
		return rc;
	for (i = 0; rc == 0 && i < PQntuples(res); i++) {
		ref = find(r, PQgetvalue(res, i, 3), PQgetvalue(res, i, 4));
		if (ref == NULL || strcmp(ref->keycol, PQgetvalue(res, i, 5)) != 0 ||
		    known_fk(r, res, i))
			continue;	/* keys that keep their values, or seen */
		if ((bigger = realloc(r->fk, (r->nfk + 1) * sizeof(*bigger))) == NULL) {
			rc = LS_ERR_NOMEM;
			break;
		}
		r->fk = bigger;
		f = &r->fk[r->nfk++];
		f->schema = strdup(PQgetvalue(res, i, 0));
		f->name = strdup(PQgetvalue(res, i, 1));
		f->col = strdup(PQgetvalue(res, i, 2));
		f->oid = strdup(PQgetvalue(res, i, 6));
		f->attnum = atoi(PQgetvalue(res, i, 7));
		f->ref = ref;
		if (f->schema == NULL || f->name == NULL || f->col == NULL ||
		    f->oid == NULL) {
			rc = LS_ERR_NOMEM;
			break;
		}
	}
	PQclear(res);
	return rc;
}

int
remap_new(const struct remap_opts *o, struct state *st, struct remap **out,
    char **errmsg)
{
	struct remap *r = calloc(1, sizeof(*r));
	size_t i;
	int rc;

	if (r == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	r->st = st;
	r->o = *o;
	r->on_missing = o->on_missing;
	if ((rc = target_connect(o->conninfo, &r->alloc, errmsg)) != 0 ||
	    (rc = load_tables(r, errmsg)) != 0 ||
	    (rc = load_fks(r, errmsg)) != 0) {
		remap_free(r);
		return rc;
	}
	for (i = 0; i < r->nt; i++)
		log_info("restore", "id-mode remap: %s gets new %s values from "
		    "%s", r->t[i].qual, r->t[i].keycol, r->t[i].defexpr);
	for (i = 0; i < r->nfk; i++)
		log_info("restore", "id-mode remap: %s.%s.%s follows %s",
		    r->fk[i].schema, r->fk[i].name, r->fk[i].col, r->fk[i].ref->qual);
	*out = r;
	return 0;
}

static void
clear_scratch(struct remap *r)
{
	size_t i;

	for (i = 0; i < r->nscratch; i++)
		free(r->scratch[i]);
	r->nscratch = 0;
}

/* Keep s until the next call; returns s (NULL on failure). */
static char *
keep(struct remap *r, char *s)
{
	char **bigger;

	if (s == NULL || (bigger = realloc(r->scratch,
	    (r->nscratch + 1) * sizeof(*bigger))) == NULL) {
		free(s);
		return NULL;
	}
	r->scratch = bigger;
	r->scratch[r->nscratch++] = s;
	return s;
}

/* Keys drawn but not used are dropped (a gap in the sequence). */
static void
drop_pool(struct rtable *t)
{
	size_t k;

	for (k = t->next; k < t->npool; k++)
		free(t->pool[k]);
	free(t->pool);
	t->pool = NULL;
	t->npool = t->next = 0;
}

static void
free_table(struct rtable *t)
{
	drop_pool(t);
	free(t->schema);
	free(t->name);
	free(t->qual);
	free(t->oid);
	free(t->keycol);
	free(t->defexpr);
	free(t->seq);
}

static void
free_fks(struct remap *r)
{
	size_t i;

	for (i = 0; i < r->nfk; i++) {
		free(r->fk[i].schema);
		free(r->fk[i].name);
		free(r->fk[i].col);
		free(r->fk[i].oid);
	}
	free(r->fk);
	r->fk = NULL;
	r->nfk = 0;
}

void
remap_free(struct remap *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nt; i++)
		free_table(&r->t[i]);
	free_fks(r);
	clear_scratch(r);
	free(r->scratch);
	free(r->t);
	free(r->line);
	PQfinish(r->alloc);
	free(r);
}

bool
remap_active(const struct remap *r)
{
	return r != NULL && r->nt > 0;
}

bool
remap_table(const struct remap *r, const char *schema, const char *name,
    const char **keycol)
{
	struct rtable *t = r != NULL ? find(r, schema, name) : NULL;

	if (t != NULL && keycol != NULL)
		*keycol = t->keycol;
	return t != NULL;
}

bool
remap_sequence(const struct remap *r, const char *schema, const char *name)
{
	char qual[256];
	size_t i;

	snprintf(qual, sizeof(qual), "%s.%s", schema, name);
	for (i = 0; r != NULL && i < r->nt; i++)
		if (r->t[i].seq != NULL && strcmp(r->t[i].seq, qual) == 0)
			return true;
	return false;
}

/* ---- after DDL ---- */

/* Does relation schema.name hold a row?  (Identifiers quoted by the server.) */
static int
has_rows(struct remap *r, const char *schema, const char *name, bool *rows,
    char **errmsg)
{
	const char *p[2] = { schema, name };
	PGresult *sql, *res;
	int rc;

	if ((rc = catalog(r, "SELECT format('SELECT EXISTS (SELECT FROM %I.%I)', "
	    "$1::text, $2::text)", 2, p, &sql, errmsg)) != 0)
		return rc;
	rc = catalog(r, PQgetvalue(sql, 0, 0), 0, NULL, &res, errmsg);
	PQclear(sql);
	if (rc != 0)
		return rc;
	*rows = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

/* A remapped table the catalog no longer shows with a key default. */
static int
vanished(struct remap *r, struct rtable *t, struct state_txn *txn,
    uint64_t tag, char **errmsg)
{
	const char *p[1] = { t->oid };
	PGresult *res;
	uint64_t n;
	bool there;
	int rc;

	if ((rc = catalog(r, "SELECT EXISTS (SELECT FROM pg_class WHERE oid = "
	    "$1::oid)", 1, p, &res, errmsg)) != 0)
		return rc;
	there = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (there)
		return ls_errf(errmsg, LS_ERR_SCHEMA, "under --id-mode remap, "
		    "%s no longer has a single-column primary key %s with a "
		    "default: its ID map cannot follow the change", t->qual,
		    t->keycol);
	if ((rc = state_map_drop_table(txn, t->qual, tag, &n, errmsg)) != 0)
		return rc;
	log_info("restore", "id-mode remap: %s dropped (%" PRIu64 " ID map "
	    "entries deleted)", t->qual, n);
	return 0;
}

/* Row i of remap_sql's result is t, renamed or moved: its map follows. */
static int
renamed(struct remap *r, struct rtable *t, const PGresult *res, int i,
    struct state_txn *txn, uint64_t tag, char **errmsg)
{
	char *schema = strdup(PQgetvalue(res, i, 0));
	char *name = strdup(PQgetvalue(res, i, 1)), *qual = NULL;
	uint64_t n;
	int rc;

	if (schema == NULL || name == NULL ||
	    asprintf(&qual, "%s.%s", schema, name) < 0) {
		free(schema);
		free(name);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	if (!wanted(r, res, i))
		rc = ls_errf(errmsg, LS_ERR_SCHEMA, "under --id-mode remap, %s "
		    "was renamed to %s, which the filter does not remap", t->qual,
		    qual);
	else if ((rc = state_map_rename_table(txn, t->qual, qual, tag, &n,
	    errmsg)) == 0)
		log_info("restore", "id-mode remap: %s is now %s (%" PRIu64
		    " ID map entries moved)", t->qual, qual, n);
	if (rc != 0) {
		free(schema);
		free(name);
		free(qual);
		return rc;
	}
	free(t->schema);
	free(t->name);
	free(t->qual);
	t->schema = schema;
	t->name = name;
	t->qual = qual;
	return 0;
}

/* Row i of remap_sql's result is t (same oid): follow what changed. */
static int
changed(struct remap *r, struct rtable *t, const PGresult *res, int i,
    struct state_txn *txn, uint64_t tag, char **errmsg)
{
	const char *col = PQgetvalue(res, i, 2), *def = PQgetvalue(res, i, 3);
	int rc;

	if (atoi(PQgetvalue(res, i, 6)) != t->keynum)
		return ls_errf(errmsg, LS_ERR_SCHEMA, "under --id-mode remap, "
		    "the primary key of %s moved from column %s to %s: its ID "
		    "map cannot follow", t->qual, t->keycol, col);
	if ((strcmp(t->schema, PQgetvalue(res, i, 0)) != 0 ||
	    strcmp(t->name, PQgetvalue(res, i, 1)) != 0) &&
	    (rc = renamed(r, t, res, i, txn, tag, errmsg)) != 0)
		return rc;
	if (strcmp(t->keycol, col) != 0) {	/* the key column renamed */
		free(t->keycol);
		if ((t->keycol = strdup(col)) == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	if (strcmp(t->defexpr, def) != 0) {	/* drawn from elsewhere now */
		free(t->defexpr);
		free(t->seq);
		t->defexpr = strdup(def);
		t->seq = PQgetisnull(res, i, 4) ? NULL :
		    strdup(PQgetvalue(res, i, 4));
		drop_pool(t);
		t->live = true;
		if (t->defexpr == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	return 0;
}

static struct rtable *
find_oid(const struct remap *r, size_t n, const char *oid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(r->t[i].oid, oid) == 0)
			return &r->t[i];
	return NULL;
}

/* A table that gets a remapped key only now must have no rows yet. */
static int
adopt(struct remap *r, const PGresult *res, int i, char **errmsg)
{
	bool rows = false;
	int rc;

	if ((rc = has_rows(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
	    &rows, errmsg)) != 0)
		return rc;
	if (rows)
		return ls_errf(errmsg, LS_ERR_SCHEMA, "under --id-mode remap, "
		    "%s.%s gets a primary key with a default (%s) while it holds "
		    "rows: their keys are source values the ID map does not "
		    "know", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	if ((rc = add_table(r, res, i)) != 0)
		return rc;
	r->t[r->nt - 1].live = true;
	log_info("restore", "id-mode remap: %s gets new %s values from %s",
	    r->t[r->nt - 1].qual, r->t[r->nt - 1].keycol,
	    r->t[r->nt - 1].defexpr);
	return 0;
}

/* Old and new foreign-key columns: a new one on a table with rows stops. */
static int
new_fks(struct remap *r, const struct fkcol *old, size_t nold, char **errmsg)
{
	bool rows;
	size_t i, k;
	int rc;

	for (i = 0; i < r->nfk; i++) {
		for (k = 0; k < nold; k++)	/* by oid: names may change */
			if (strcmp(old[k].oid, r->fk[i].oid) == 0 &&
			    old[k].attnum == r->fk[i].attnum)
				break;
		if (k < nold)
			continue;
		if ((rc = has_rows(r, r->fk[i].schema, r->fk[i].name, &rows,
		    errmsg)) != 0)
			return rc;
		if (rows)
			return ls_errf(errmsg, LS_ERR_SCHEMA, "under --id-mode "
			    "remap, %s.%s.%s gets a foreign key to %s while its "
			    "table holds rows: their values are source keys the ID "
			    "map cannot translate in place", r->fk[i].schema,
			    r->fk[i].name, r->fk[i].col, r->fk[i].ref->qual);
		log_info("restore", "id-mode remap: %s.%s.%s follows %s",
		    r->fk[i].schema, r->fk[i].name, r->fk[i].col,
		    r->fk[i].ref->qual);
	}
	return 0;
}

int
remap_refresh(struct remap *r, const struct remap_conn *c,
    struct state_txn *txn, uint64_t tag, char **errmsg)
{
	struct fkcol *oldfk;
	struct rtable *t;
	PGresult *res;
	size_t i, k, nold = r->nt, noldfk;
	bool *seen;
	int rc = 0;

	r->conn = *c;
	if ((seen = calloc(nold + 1, sizeof(*seen))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = catalog(r, remap_sql, 0, NULL, &res, errmsg)) != 0) {
		free(seen);
		return rc;
	}
	/* the tables remapped so far, by oid: renamed, key renamed, ... */
	for (i = 0; rc == 0 && i < (size_t)PQntuples(res); i++)
		if ((t = find_oid(r, nold, PQgetvalue(res, (int)i, 5))) != NULL) {
			seen[t - r->t] = true;
			rc = changed(r, t, res, (int)i, txn, tag, errmsg);
		}
	/* ... or gone: dropped, or no longer keyed by a default */
	for (i = 0; rc == 0 && i < nold; i++)
		if (!seen[i])
			rc = vanished(r, &r->t[i], txn, tag, errmsg);
	for (i = k = 0; rc == 0 && i < nold; i++) {
		if (seen[i])
			r->t[k++] = r->t[i];
		else
			free_table(&r->t[i]);
	}
	if (rc == 0)
		r->nt = k;
	free(seen);
	/* new ones */
	for (i = 0; rc == 0 && i < (size_t)PQntuples(res); i++)
		if (wanted(r, res, (int)i) && find_oid(r, r->nt,
		    PQgetvalue(res, (int)i, 5)) == NULL)
			rc = adopt(r, res, (int)i, errmsg);
	PQclear(res);
	if (rc != 0)
		return rc;
	/* foreign keys: read again (their ref pointers moved) */
	oldfk = r->fk;
	noldfk = r->nfk;
	r->fk = NULL;
	r->nfk = 0;
	if ((rc = load_fks(r, errmsg)) == 0)
		rc = new_fks(r, oldfk, noldfk, errmsg);
	for (i = 0; i < noldfk; i++) {
		free(oldfk[i].schema);
		free(oldfk[i].name);
		free(oldfk[i].col);
		free(oldfk[i].oid);
	}
	free(oldfk);
	return rc;
}

/* ---- new keys ---- */

/* Draw a block of new keys from the table's default in one round trip. */
static int
refill(struct remap *r, struct rtable *t, char **errmsg)
{
	char *sql = NULL;
	PGresult *res;
	char **pool;
	int i, n, rc = 0;

	if (asprintf(&sql, "SELECT (%s)::text FROM generate_series(1, %d)",
	    t->defexpr, POOL_BLOCK) < 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	/* a table of replayed DDL: its sequence may exist only in the batch */
	if (t->live)
		rc = r->conn.query(r->conn.arg, sql, 0, NULL, &res, errmsg);
	else if (PQresultStatus(res = PQexec(r->alloc, sql)) != PGRES_TUPLES_OK) {
		rc = target_error(r->alloc, res, errmsg, "drawing new keys");
		PQclear(res);
	}
	free(sql);
	if (rc != 0)
		return rc;
	n = PQntuples(res);
	if ((pool = calloc((size_t)n + 1, sizeof(*pool))) == NULL)
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (i = 0; rc == 0 && i < n; i++)
		if ((pool[i] = strdup(PQgetvalue(res, i, 0))) == NULL)
			rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	PQclear(res);
	free(t->pool);
	t->pool = pool;
	t->npool = rc == 0 ? (size_t)n : 0;
	t->next = 0;
	return rc;
}

/* A new key for t (the caller owns it). */
static int
new_key(struct remap *r, struct rtable *t, char **key, char **errmsg)
{
	int rc;

	if (t->next == t->npool && (rc = refill(r, t, errmsg)) != 0)
		return rc;
	*key = t->pool[t->next];
	t->pool[t->next++] = NULL;
	return 0;
}

/* ---- rewriting tuples ---- */

static int
col_index(const struct ls_relation *rel, const char *name)
{
	int i;

	for (i = 0; i < rel->ncols; i++)
		if (strcmp(rel->cols[i].name, name) == 0)
			return i;
	return -1;
}

static void
set_text(struct ls_value *v, const char *s)
{
	v->kind = LS_VAL_TEXT;
	v->data = s;
	v->len = (uint32_t)strlen(s);
}

/* Translate one foreign-key value through the map, by the policy. */
static int
follow(struct remap *r, struct state_txn *txn, const struct fkcol *f,
    struct ls_value *v, uint32_t xid, bool *skip, char **errmsg)
{
	char *newkey = NULL, orig[256];
	int rc;

	if (v->kind != LS_VAL_TEXT)
		return 0;	/* NULL stays NULL; TOAST never holds keys */
	snprintf(orig, sizeof(orig), "%.*s", (int)v->len, v->data);
	rc = state_map_get(r->st, txn, f->ref->qual, orig, &newkey, errmsg);
	if (rc == 0) {
		set_text(v, keep(r, newkey));
		return v->data != NULL ? 0 : LS_ERR_NOMEM;
	}
	if (rc != LS_ERR_NOTFOUND)
		return rc;
	if (r->on_missing == MISSING_NULL) {
		*v = (struct ls_value){ LS_VAL_NULL, 0, NULL };
		return 0;
	}
	if (r->on_missing == MISSING_SKIP) {
		*skip = true;
		return 0;
	}
	return ls_errf(errmsg, LS_ERR_INVALID, "%s.%s.%s = %s refers to a %s row "
	    "that is not in the ID map (elided or never restored), in source "
	    "transaction %u; use --on-missing-ref null or skip", f->schema,
	    f->name, f->col, orig, f->ref->qual, xid);
}

static int
follow_all(struct remap *r, struct state_txn *txn, const struct ls_relation *rel,
    struct ls_tuple *t, uint32_t xid, bool *skip, char **errmsg)
{
	size_t i;
	int c, rc;

	for (i = 0; i < r->nfk && !*skip; i++) {
		if (strcmp(r->fk[i].schema, rel->schema) != 0 ||
		    strcmp(r->fk[i].name, rel->name) != 0 ||
		    (c = col_index(rel, r->fk[i].col)) < 0 || c >= t->ncols)
			continue;
		if ((rc = follow(r, txn, &r->fk[i], &t->vals[c], xid, skip,
		    errmsg)) != 0)
			return rc;
	}
	return 0;
}

/* Writable copies of the change's tuples. */
static void
own_tuples(struct remap *r, struct ls_change *ch)
{
	if (ch->new.ncols > 0) {
		memcpy(r->vals[0], ch->new.vals, ch->new.ncols * sizeof(struct ls_value));
		ch->new.vals = r->vals[0];
	}
	if (ch->old_kind != LS_OLD_NONE && ch->old.ncols > 0) {
		memcpy(r->vals[1], ch->old.vals, ch->old.ncols * sizeof(struct ls_value));
		ch->old.vals = r->vals[1];
	}
}

static int
insert_key(struct remap *r, struct state_txn *txn, struct rtable *t, int k,
    struct ls_change *ch, uint64_t tag, char **errmsg)
{
	char orig[256], *key;
	int rc;

	snprintf(orig, sizeof(orig), "%.*s", (int)ch->new.vals[k].len,
	    ch->new.vals[k].data);
	if ((rc = new_key(r, t, &key, errmsg)) != 0)
		return rc;
	if ((rc = state_map_put(txn, t->qual, orig, key, tag, errmsg)) != 0) {
		free(key);
		return rc;
	}
	set_text(&ch->new.vals[k], keep(r, key));
	return 0;
}

/* UPDATE/DELETE of a remapped table: find the target key; map key changes. */
static int
existing_key(struct remap *r, struct state_txn *txn, struct rtable *t, int k,
    struct ls_change *ch, uint64_t tag, bool *skip, char **errmsg)
{
	struct ls_tuple *id = ch->old_kind != LS_OLD_NONE ? &ch->old : &ch->new;
	char orig[256], now[256], *target = NULL;
	int rc;

	snprintf(orig, sizeof(orig), "%.*s", (int)id->vals[k].len, id->vals[k].data);
	rc = state_map_get(r->st, txn, t->qual, orig, &target, errmsg);
	if (rc == LS_ERR_NOTFOUND) {
		*skip = true;	/* the row was never restored (elided) */
		return 0;
	}
	if (rc != 0 || keep(r, target) == NULL)
		return rc != 0 ? rc : LS_ERR_NOMEM;
	if (ch->kind == LS_CHANGE_DELETE)
		rc = state_map_delete(txn, t->qual, orig, tag, errmsg);
	else if (ch->new.vals[k].kind == LS_VAL_TEXT) {
		snprintf(now, sizeof(now), "%.*s", (int)ch->new.vals[k].len,
		    ch->new.vals[k].data);
		if (strcmp(now, orig) != 0 &&	/* key changed on the source */
		    ((rc = state_map_delete(txn, t->qual, orig, tag, errmsg)) != 0 ||
		    (rc = state_map_put(txn, t->qual, now, target, tag, errmsg)) != 0))
			return rc;
		set_text(&ch->new.vals[k], target);
	}
	if (ch->old_kind != LS_OLD_NONE)
		set_text(&ch->old.vals[k], target);
	return rc;
}

int
remap_change(struct remap *r, struct state_txn *txn,
    const struct ls_relation *rel, struct ls_change *ch, uint64_t tag,
    uint32_t xid, bool *skip, char **errmsg)
{
	struct rtable *t;
	int k = -1, rc = 0;

	*skip = false;
	clear_scratch(r);
	if (ch->kind == LS_CHANGE_TRUNCATE)
		return 0;
	own_tuples(r, ch);
	if ((t = find(r, rel->schema, rel->name)) != NULL &&
	    (k = col_index(rel, t->keycol)) < 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "%s: key column %s is not "
		    "replicated", t->qual, t->keycol);
	/* references first: a skipped insert must not leave a map entry */
	if (ch->kind == LS_CHANGE_INSERT) {
		rc = follow_all(r, txn, rel, &ch->new, xid, skip, errmsg);
		if (rc == 0 && !*skip && t != NULL)
			rc = insert_key(r, txn, t, k, ch, tag, errmsg);
		return rc;
	}
	if (t != NULL)
		rc = existing_key(r, txn, t, k, ch, tag, skip, errmsg);
	if (rc == 0 && !*skip && ch->kind != LS_CHANGE_DELETE)
		rc = follow_all(r, txn, rel, &ch->new, xid, skip, errmsg);
	if (rc == 0 && !*skip && ch->old_kind == LS_OLD_FULL)
		rc = follow_all(r, txn, rel, &ch->old, xid, skip, errmsg);
	return rc;
}

/* ---- COPY text lines of the base snapshot ---- */

struct field {
	const char	*p;
	size_t		 len;
};

/* Split a COPY text line at tabs (tabs in data are escaped). */
static size_t
split(const char *line, size_t len, struct field *f, size_t max)
{
	size_t n = 0, start = 0, i;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	for (i = 0; i <= len && n < max; i++)
		if (i == len || line[i] == '\t') {
			f[n].p = line + start;
			f[n++].len = i - start;
			start = i + 1;
		}
	return n;
}

/* A field's value (NULL for \N), decoding backslash escapes. */
static char *
decode(const struct field *f)
{
	char *out, *o;
	size_t i;

	if (f->len == 2 && f->p[0] == '\\' && f->p[1] == 'N')
		return NULL;
	if ((out = o = malloc(f->len + 1)) == NULL)
		return NULL;
	for (i = 0; i < f->len; i++) {
		if (f->p[i] != '\\' || i + 1 == f->len) {
			*o++ = f->p[i];
			continue;
		}
		switch (f->p[++i]) {
		case 't': *o++ = '\t'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		default: *o++ = f->p[i];
		}
	}
	*o = '\0';
	return out;
}

static int
column_of(const char *const *cols, size_t ncols, const char *name)
{
	size_t i;

	for (i = 0; i < ncols; i++)
		if (strcmp(cols[i], name) == 0)
			return (int)i;
	return -1;
}

int
remap_copy_assign(struct remap *r, struct state_txn *txn, const char *schema,
    const char *name, const char *const *cols, size_t ncols, const char *line,
    size_t len, char **errmsg)
{
	struct rtable *t = find(r, schema, name);
	struct field f[1664];
	char *orig, *key = NULL, *old = NULL;
	int k, rc;

	if (t == NULL)
		return 0;
	if ((k = column_of(cols, ncols, t->keycol)) < 0 ||
	    split(line, len, f, 1664) != ncols)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: base row does not "
		    "match its columns", t->qual);
	if ((orig = decode(&f[k])) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: NULL key", t->qual);
	rc = state_map_get(r->st, txn, t->qual, orig, &old, errmsg);
	if (rc == LS_ERR_NOTFOUND && (rc = new_key(r, t, &key, errmsg)) == 0)
		rc = state_map_put(txn, t->qual, orig, key, 0, errmsg);
	free(old);
	free(key);
	free(orig);
	return rc;
}

/* Append s (escaped for COPY) or the raw field to the output line. */
static int
emit(struct remap *r, size_t *at, const char *s, size_t len, bool escape)
{
	size_t i, need = *at + 2 * len + 3;
	char *bigger;

	if (need > r->linecap) {
		if ((bigger = realloc(r->line, need * 2)) == NULL)
			return LS_ERR_NOMEM;
		r->line = bigger;
		r->linecap = need * 2;
	}
	for (i = 0; i < len; i++) {
		char ch = s[i];
		if (escape && (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r')) {
			r->line[(*at)++] = '\\';
			ch = ch == '\t' ? 't' : ch == '\n' ? 'n' : ch == '\r' ? 'r' : ch;
		}
		r->line[(*at)++] = ch;
	}
	return 0;
}

/* The replacement for field i, or NULL to keep it; may set *skip. */
static int
rewrite_field(struct remap *r, const char *schema, const char *name,
    const char *col, const struct field *fld, char **out, bool *skip,
    char **errmsg)
{
	struct rtable *t = find(r, schema, name);
	struct ls_value v = { LS_VAL_TEXT, 0, NULL };
	char *val;
	size_t i;
	int rc = 0;

	*out = NULL;
	for (i = 0; i < r->nfk; i++)
		if (strcmp(col, r->fk[i].col) == 0 &&
		    strcmp(r->fk[i].schema, schema) == 0 &&
		    strcmp(r->fk[i].name, name) == 0)
			break;
	if (!(t != NULL && strcmp(col, t->keycol) == 0) && i == r->nfk)
		return 0;
	if ((val = decode(fld)) == NULL)
		return 0;	/* NULL stays */
	if (t != NULL && strcmp(col, t->keycol) == 0) {
		rc = state_map_get(r->st, NULL, t->qual, val, out, errmsg);
		if (rc == LS_ERR_NOTFOUND)
			rc = ls_errf(errmsg, LS_ERR_INTERNAL, "%s: base key %s has "
			    "no new key", t->qual, val);
	}
	else {
		v.data = val;
		v.len = (uint32_t)strlen(val);
		rc = follow(r, NULL, &r->fk[i], &v, 0, skip, errmsg);
		if (rc == 0 && !*skip)
			*out = v.kind == LS_VAL_NULL ? strdup("\\N") : strdup(v.data);
	}
	free(val);
	return rc;
}

int
remap_copy_line(struct remap *r, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char *line, size_t len,
    const char **out, size_t *outlen, bool *skip, char **errmsg)
{
	struct field f[1664];
	size_t n = split(line, len, f, 1664), i, at = 0;
	char *repl;
	int rc = 0;

	*skip = false;
	clear_scratch(r);
	if (n != ncols)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s.%s: base row does not "
		    "match its columns", schema, name);
	for (i = 0; rc == 0 && i < n && !*skip; i++) {
		if ((rc = rewrite_field(r, schema, name, cols[i], &f[i], &repl,
		    skip, errmsg)) != 0)
			break;
		if (i > 0)
			rc = emit(r, &at, "\t", 1, false);
		if (rc == 0)
			rc = repl == NULL ? emit(r, &at, f[i].p, f[i].len, false) :
			    emit(r, &at, repl, strlen(repl),
			    strcmp(repl, "\\N") != 0);
		free(repl);
	}
	if (rc == 0 && !*skip)
		rc = emit(r, &at, "\n", 1, false);
	*out = r->line;
	*outlen = at;
	return rc;
}
