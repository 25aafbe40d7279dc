/* rewrite.c: filters, then the ID map, then the target (see rewrite.h). */
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "baseload.h"
#include "common/error.h"
#include "ddl.h"
#include "elide.h"
#include "format/relcache.h"
#include "remap.h"
#include "replay.h"
#include "rewrite.h"
#include "state.h"

struct rewrite {
	const struct replay_opts *o;
	struct state	*state;
	struct elide	*el;		/* --filter, or NULL */
	struct relcache	*srcrels;	/* source relations (filters read them) */
	struct remap	*remap;		/* remapping, once opened, or NULL */
	struct state_txn *mtxn;		/* ID map writes of the open batch */
};

/* A change on its way to the target. */
struct route {
	struct rewrite	*rw;
	struct applier	*ap;
	uint64_t	 end_lsn;	/* of its source transaction */
	uint32_t	 xid;
	char		**errmsg;	/* for elide_change's callback */
};

struct rewrite *
rewrite_new(const struct replay_opts *o, struct state *state)
{
	struct rewrite *rw = calloc(1, sizeof(*rw));

	if (rw == NULL || (rw->srcrels = relcache_new()) == NULL) {
		free(rw);
		return NULL;
	}
	rw->o = o;
	rw->state = state;
	return rw;
}

void
rewrite_free(struct rewrite *rw)
{
	if (rw == NULL)
		return;
	state_txn_abort(rw->mtxn);
	remap_free(rw->remap);
	elide_free(rw->el);
	relcache_free(rw->srcrels);
	free(rw);
}

int
rewrite_load_filters(struct rewrite *rw, const struct base_manifest *m,
    char **errmsg)
{
	if (rw->o->filter_path == NULL || rw->el != NULL)
		return 0;
	return elide_new(rw->o->filter_path, m, &rw->el, errmsg);
}

bool
rewrite_filtering(const struct rewrite *rw)
{
	return rw->el != NULL;
}

bool
rewrite_includes(const struct rewrite *rw, const char *schema,
    const char *name)
{
	return elide_includes(rw->el, schema, name);
}

bool
rewrite_remapping(const struct rewrite *rw)
{
	const char *const *t = elide_remap_tables(rw->el);

	return rw->o->remap || (t != NULL && t[0] != NULL);
}

int
rewrite_open_remap(struct rewrite *rw, char **errmsg)
{
	struct remap_opts ro = { rw->o->target, rw->o->remap,
	    elide_remap_tables(rw->el), elide_preserve_tables(rw->el),
	    (enum missing_ref)rw->o->on_missing };

	if (!rewrite_remapping(rw) || rw->remap != NULL)
		return 0;
	return remap_new(&ro, rw->state, &rw->remap, errmsg);
}

/* ---- the base snapshot ---- */

bool
rewrite_maps_keys(const struct rewrite *rw, const char *schema,
    const char *name)
{
	return remap_table(rw->remap, schema, name, NULL) &&
	    elide_includes(rw->el, schema, name);
}

/* One base row: if the filters keep it, draw and map its new key. */
int
rewrite_base_key(struct rewrite *rw, struct state_txn *txn,
    const char *schema, const char *name, const char *const *cols,
    size_t ncols, const char *line, size_t len, char **errmsg)
{
	const char *names[1664], *out = line;
	size_t n = ncols, outlen = len;
	bool keep = true;
	int rc;

	if (rw->el != NULL) {
		if ((rc = elide_copy_line(rw->el, schema, name, cols, ncols,
		    line, len, &keep, &out, &outlen, errmsg)) != 0)
			return rc;
		if (!keep)
			return 0;
		elide_copy_columns(rw->el, schema, name, cols, ncols, names,
		    &n);
		cols = names;
	}
	return remap_copy_assign(rw->remap, txn, schema, name, cols, n, out,
	    outlen, errmsg);
}

static bool
base_include(void *arg, const char *schema, const char *name)
{
	return elide_includes(((struct rewrite *)arg)->el, schema, name);
}

static int
base_columns(void *arg, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char **names, size_t *n)
{
	return elide_copy_columns(((struct rewrite *)arg)->el, schema, name,
	    cols, ncols, names, n);
}

/* A base line through the filters, then through the ID map. */
static int
copy_transform(void *arg, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char *line, size_t len,
    const char **out, size_t *outlen, bool *skip, char **errmsg)
{
	struct rewrite *rw = arg;
	const char *names[1664];
	size_t n = ncols;
	bool keep = true;
	int rc;

	*out = line;
	*outlen = len;
	*skip = false;
	if (rw->el != NULL) {
		if ((rc = elide_copy_line(rw->el, schema, name, cols, ncols,
		    line, len, &keep, out, outlen, errmsg)) != 0)
			return rc;
		*skip = !keep;
		elide_copy_columns(rw->el, schema, name, cols, ncols, names,
		    &n);
		cols = names;
	}
	if (*skip || rw->remap == NULL)
		return 0;
	return remap_copy_line(rw->remap, schema, name, cols, n, *out, *outlen,
	    out, outlen, skip, errmsg);
}

void
rewrite_baseload(struct rewrite *rw, struct baseload_opts *bo)
{
	if (rw->el != NULL) {
		bo->include = base_include;
		bo->columns = base_columns;
	}
	if (rw->el != NULL || rewrite_remapping(rw)) {
		bo->transform = copy_transform;
		bo->transform_arg = rw;
	}
}

/* ---- segments ---- */

int
rewrite_relation(struct rewrite *rw, struct applier *ap,
    const struct ls_relation *rel, char **errmsg)
{
	const struct ls_relation *out = rel;
	int rc;

	if (rw->el == NULL)
		return applier_relation(ap, rel, NULL, errmsg);
	if (relcache_put(rw->srcrels, rel) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (elide_includes(rw->el, rel->schema, rel->name) &&
	    (rc = elide_relation(rw->el, rel, &out, errmsg)) != 0)
		return rc;
	return applier_relation(ap, out, rel, errmsg);
}

int
rewrite_sequence(struct rewrite *rw, struct applier *ap,
    const struct ls_sequence *seq, char **errmsg)
{
	if (remap_sequence(rw->remap, seq->schema, seq->name))
		return 0;	/* it feeds new keys: the target's own */
	return applier_sequence(ap, seq, errmsg);
}

/* A change through the ID map (remap mode), then to the target. */
static int
apply_change(struct route *x, const struct ls_change *orig, char **errmsg)
{
	struct rewrite *rw = x->rw;
	const struct ls_relation *rel;
	struct ls_change ch = *orig;
	bool skip = false;
	int rc;

	if (rw->remap == NULL || ch.kind == LS_CHANGE_TRUNCATE)
		return applier_change(x->ap, orig, errmsg);
	if ((rel = applier_get_relation(x->ap, ch.relid)) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", ch.relid);
	if (rw->mtxn == NULL && (rc = state_txn_begin(rw->state, &rw->mtxn,
	    errmsg)) != 0)
		return rc;
	if ((rc = remap_change(rw->remap, rw->mtxn, rel, &ch, x->end_lsn,
	    x->xid, &skip, errmsg)) != 0 || skip)
		return rc;
	return applier_change(x->ap, &ch, errmsg);
}

static int
apply_one(void *arg, const struct ls_change *ch, bool if_present)
{
	struct route *x = arg;
	int rc;

	applier_if_present(x->ap, if_present);
	rc = apply_change(x, ch, x->errmsg);
	applier_if_present(x->ap, false);
	return rc;
}

/* Truncate only the included tables. */
static int
filter_truncate(struct route *x, const struct ls_change *c, char **errmsg)
{
	uint32_t keep[c->nrelids ? c->nrelids : 1], i, n = 0;
	const struct rewrite *rw = x->rw;
	const struct ls_relation *rel;
	struct ls_change t = *c;

	for (i = 0; i < c->nrelids; i++)
		if ((rel = relcache_get(rw->srcrels, c->relids[i])) == NULL ||
		    elide_includes(rw->el, rel->schema, rel->name))
			keep[n++] = c->relids[i];
	if (n == 0)
		return 0;
	t.nrelids = n;
	t.relids = keep;
	return applier_change(x->ap, &t, errmsg);
}

/* Filters (table, row, columns), then the ID map and the target. */
static int
filter_change(struct route *x, const struct ls_change *c, char **errmsg)
{
	const struct ls_relation *rel;

	if (x->rw->el == NULL)
		return apply_change(x, c, errmsg);
	if (c->kind == LS_CHANGE_TRUNCATE)
		return filter_truncate(x, c, errmsg);
	if ((rel = relcache_get(x->rw->srcrels, c->relid)) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "change for unknown "
		    "relation %u", c->relid);
	if (!elide_includes(x->rw->el, rel->schema, rel->name))
		return 0;
	return elide_change(x->rw->el, rel, c, apply_one, x, errmsg);
}

/* logship's own tables (a source that is itself a restore target). */
static bool
own_table(const struct applier *ap, uint32_t relid)
{
	const struct ls_relation *rel = applier_get_relation(ap, relid);

	return rel != NULL && strcmp(rel->schema, "logship") == 0;
}

/* Truncate without logship's own tables. */
static int
truncate_own(struct route *x, const struct ls_change *c, char **errmsg)
{
	uint32_t keep[c->nrelids ? c->nrelids : 1], i, n = 0;
	struct ls_change t = *c;

	for (i = 0; i < c->nrelids; i++)
		if (!own_table(x->ap, c->relids[i]))
			keep[n++] = c->relids[i];
	if (n == 0)
		return 0;
	t.nrelids = n;
	t.relids = keep;
	return filter_change(x, &t, errmsg);
}

int
rewrite_change(struct rewrite *rw, struct applier *ap,
    const struct ls_change *c, uint64_t end_lsn, uint32_t xid, char **errmsg)
{
	struct route x = { rw, ap, end_lsn, xid, errmsg };

	if (c->kind == LS_CHANGE_TRUNCATE)
		return truncate_own(&x, c, errmsg);
	if (own_table(ap, c->relid))
		return 0;	/* never the target's own marker */
	return filter_change(&x, c, errmsg);
}

/* ---- DDL ---- */

/* What the DDL hooks see: filters, and the target through the applier. */
struct ddl_ctx {
	struct rewrite	*rw;
	struct applier	*ap;
};

static bool
ddl_include(void *arg, const char *schema, const char *name)
{
	const struct rewrite *rw = ((struct ddl_ctx *)arg)->rw;

	return strcmp(schema, "logship") != 0 &&
	    elide_includes(rw->el, schema, name);
}

static char *
ddl_rule(void *arg, const char *schema, const char *name, const char *col)
{
	return elide_mentions(((struct ddl_ctx *)arg)->rw->el, schema, name,
	    col);
}

/* An error counts as present: the DDL then meets it and says so. */
static bool
ddl_exists(void *arg, char kind, const char *schema, const char *name)
{
	const char *pair[2] = { schema, name };
	bool present = true;
	char *err = NULL;

	if (applier_present(((struct ddl_ctx *)arg)->ap, kind, pair, 1,
	    &present, &err) != 0)
		present = true;
	free(err);
	return present;
}

int
rewrite_ddl_plan(struct rewrite *rw, struct applier *ap,
    const struct ls_message *m, struct ddl_plan **out, char **errmsg)
{
	struct ddl_ctx x = { rw, ap };
	struct ddl_hooks h = { ddl_include, ddl_rule, ddl_exists, &x };
	struct ddl_plan *p;
	int rc;

	if ((rc = ddl_plan_new(m->content, m->len, &h, &p, errmsg)) != 0)
		return rc;
	*out = p;
	return 0;
}

static int
applier_catalog(void *arg, const char *sql, int n, const char *const *params,
    PGresult **res, char **errmsg)
{
	return applier_query(arg, sql, n, params, res, errmsg);
}

int
rewrite_ddl_applied(struct rewrite *rw, struct applier *ap,
    const struct ddl_plan *p, uint64_t tag, char **errmsg)
{
	struct remap_conn c = { applier_catalog, ap };
	int rc;

	if (rw->remap == NULL || !p->keys)
		return 0;
	if (rw->mtxn == NULL && (rc = state_txn_begin(rw->state, &rw->mtxn,
	    errmsg)) != 0)
		return rc;
	return remap_refresh(rw->remap, &c, rw->mtxn, tag, errmsg);
}

int
rewrite_map_commit(struct rewrite *rw, bool *wrote, char **errmsg)
{
	int rc;

	*wrote = rw->mtxn != NULL;
	if (rw->mtxn == NULL)
		return 0;
	rc = state_txn_commit(rw->mtxn, errmsg);
	rw->mtxn = NULL;
	return rc;
}

void
rewrite_map_abort(struct rewrite *rw)
{
	state_txn_abort(rw->mtxn);
	rw->mtxn = NULL;
}
