/*
 * filter_eval.c: evaluation of where clauses (three-valued, UNCHANGED as
 * unknown) and filter_change_action().  Read-only on the filter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"
#include "common/util.h"
#include "filter/filter_int.h"

/*
 * Evaluation.  Read-only on the filter: thread-safe.
 */

struct ectx {
	const struct filter_table	*ft;
	const struct ls_relation	*rel;
	const struct ls_tuple		*t;
	const struct ls_tuple		*fb;	/* fills UNCHANGED, or NULL */
	const char			*unknown;	/* first unsent column */
	char				**errmsg;
};

static int
rel_col(const struct ls_relation *rel, const char *name)
{
	int i;

	for (i = 0; i < rel->ncols; i++)
		if (strcmp(rel->cols[i].name, name) == 0)
			return i;
	return -1;
}

/* The value of a leaf's column, UNCHANGED filled from the fallback. */
static int
leaf_value(struct ectx *x, const struct fnode *n, const struct ls_value **vp)
{
	const struct ls_value *v;
	char t1[24], t2[24];
	int i;

	if ((i = rel_col(x->rel, n->colname)) < 0)
		return ls_errf(x->errmsg, LS_ERR_INVALID, "table %s.%s has no "
		    "column %s any more, which its filter's where clause "
		    "(line %d) uses", x->rel->schema, x->rel->name, n->colname,
		    n->line);
	if (x->rel->cols[i].type_oid != n->type_oid)
		return ls_errf(x->errmsg, LS_ERR_INVALID, "column %s of %s.%s "
		    "is now %s, not %s as when the filter was validated",
		    n->colname, x->rel->schema, x->rel->name,
		    filter_type_name(x->rel->cols[i].type_oid, t1),
		    filter_type_name(n->type_oid, t2));
	v = &x->t->vals[i];
	if (v->kind == LS_VAL_UNCHANGED && x->fb != NULL &&
	    x->fb->vals[i].kind != LS_VAL_UNCHANGED)
		v = &x->fb->vals[i];
	if (v->kind == LS_VAL_BINARY)
		return ls_errf(x->errmsg, LS_ERR_INVALID, "column %s of %s.%s "
		    "arrived in binary form; the filter needs text values",
		    n->colname, x->rel->schema, x->rel->name);
	*vp = v;
	return 0;
}

static int
bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c < 0 ? -1 : 1;
	return alen == blen ? 0 : alen < blen ? -1 : 1;
}

static int
int_cmp(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* Compare a text value with a typed literal; 0 or -1 (bad value). */
static int
value_cmp(enum tclass tc, const char *s, size_t len, const struct flit *l,
    int *c)
{
	struct tvalue tv;
	struct dec d;
	int64_t i;
	char u[32];
	bool b;

	switch (tc) {
	case TC_INT:
		if (filter_parse_int(s, len, &i) != 0)
			return -1;
		*c = int_cmp(i, l->i);
		return 0;
	case TC_NUM:
		if (filter_parse_dec(s, len, &d) != 0)
			return -1;
		*c = filter_dec_cmp(&d, &l->dec);
		return 0;
	case TC_BOOL:
		if (filter_parse_bool(s, len, &b) != 0)
			return -1;
		*c = b != l->b;
		return 0;
	case TC_UUID:
		if (filter_parse_uuid(s, len, u) != 0)
			return -1;
		*c = bytes_cmp(u, 32, l->uuid, 32);
		return 0;
	case TC_DATE: case TC_TS: case TC_TSTZ:
		if (filter_parse_time(s, len, &tv) != 0 || (tc == TC_DATE &&
		    tv.has_time) || (tc == TC_TS && tv.has_zone))
			return -1;
		*c = int_cmp(tv.us, l->i);
		return 0;
	case TC_BPCHAR:
		while (len > 0 && s[len - 1] == ' ')
			len--;
		*c = bytes_cmp(s, len, l->text, l->cmplen);
		return 0;
	default:
		*c = bytes_cmp(s, len, l->text, l->len);
		return 0;
	}
}

static bool
op_holds(enum op op, int c)
{
	switch (op) {
	case OP_EQ:	return c == 0;
	case OP_NE:	return c != 0;
	case OP_LT:	return c < 0;
	case OP_LE:	return c <= 0;
	case OP_GT:	return c > 0;
	default:	return c >= 0;
	}
}

static int
bad_value(struct ectx *x, const struct fnode *n, size_t len)
{
	char tbuf[24];

	return ls_errf(x->errmsg, LS_ERR_CORRUPT, "column %s of %s.%s: a "
	    "value of %zu bytes does not read as %s", n->colname,
	    x->rel->schema, x->rel->name, len, filter_type_name(n->type_oid, tbuf));
}

/* A comparison, in list or boolean column on a text value. */
static int
eval_text(struct ectx *x, const struct fnode *n, const struct ls_value *v,
    enum tv *out)
{
	bool b, hit = false;
	size_t i;
	int c;

	if (n->kind == N_BOOLCOL) {
		if (filter_parse_bool(v->data, v->len, &b) != 0)
			return bad_value(x, n, v->len);
		*out = b ? TV_TRUE : TV_FALSE;
		return 0;
	}
	for (i = 0; i < n->nlits && !hit; i++) {
		if (value_cmp(n->tclass, v->data, v->len, &n->lits[i], &c) != 0)
			return bad_value(x, n, v->len);
		hit = n->kind == N_CMP ? op_holds(n->op, c) : c == 0;
	}
	*out = hit != (n->kind == N_IN && n->neg) ? TV_TRUE : TV_FALSE;
	return 0;
}

static int
eval_leaf(struct ectx *x, const struct fnode *n, enum tv *out)
{
	const struct ls_value *v = NULL;
	int r;

	if ((r = leaf_value(x, n, &v)) != 0)
		return r;
	if (n->kind == N_ISNULL) {
		/* An unchanged TOASTed value is never NULL. */
		*out = (v->kind == LS_VAL_NULL) != n->neg ? TV_TRUE : TV_FALSE;
		return 0;
	}
	if (v->kind == LS_VAL_NULL) {
		*out = TV_NULL;
		return 0;
	}
	if (v->kind == LS_VAL_UNCHANGED) {
		if (x->unknown == NULL)
			x->unknown = n->colname;
		*out = TV_UNKNOWN;
		return 0;
	}
	return eval_text(x, n, v, out);
}

static int eval(struct ectx *, const struct fnode *, enum tv *);

/* and/or: the deciding value wins, then unknown, then null. */
static int
eval_junction(struct ectx *x, const struct fnode *n, enum tv *out)
{
	enum tv decide = n->kind == N_AND ? TV_FALSE : TV_TRUE, k;
	bool unknown = false, null = false;
	size_t i;
	int r;

	for (i = 0; i < n->nkids; i++) {
		if ((r = eval(x, n->kids[i], &k)) != 0)
			return r;
		if (k == decide) {
			*out = decide;
			return 0;
		}
		unknown |= k == TV_UNKNOWN;
		null |= k == TV_NULL;
	}
	*out = unknown ? TV_UNKNOWN : null ? TV_NULL :
	    decide == TV_FALSE ? TV_TRUE : TV_FALSE;
	return 0;
}

static int
eval(struct ectx *x, const struct fnode *n, enum tv *out)
{
	int r;

	switch (n->kind) {
	case N_CONST:
		*out = n->value ? TV_TRUE : TV_FALSE;
		return 0;
	case N_NOT:
		if ((r = eval(x, n->kids[0], out)) != 0)
			return r;
		if (*out == TV_TRUE || *out == TV_FALSE)
			*out = *out == TV_TRUE ? TV_FALSE : TV_TRUE;
		return 0;
	case N_AND: case N_OR:
		return eval_junction(x, n, out);
	default:
		return eval_leaf(x, n, out);
	}
}

/* The where clause on t (UNCHANGED values taken from fb when given). */
int
filter_eval_where(const struct filter_table *ft, const struct ls_relation *rel,
    const struct ls_tuple *t, const struct ls_tuple *fb, enum tv *out,
    const char **unknown, char **errmsg)
{
	struct ectx x = { 0 };
	int r;

	if (!ft->f->validated)
		return ls_errf(errmsg, LS_ERR_INVALID, "filter %s used before "
		    "filter_validate() succeeded", ft->f->filename);
	if (t->ncols != rel->ncols || (fb != NULL && fb->ncols != rel->ncols))
		return ls_errf(errmsg, LS_ERR_INVALID, "a row of %s.%s has %u "
		    "columns but its relation %u", rel->schema, rel->name,
		    t->ncols, rel->ncols);
	x.ft = ft;
	x.rel = rel;
	x.t = t;
	x.fb = fb;
	x.errmsg = errmsg;
	if ((r = eval(&x, ft->where, out)) != 0)
		return r;
	if (unknown != NULL)
		*unknown = x.unknown;
	return 0;
}

static int
unsent(const struct ls_relation *rel, const char *col, char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_INVALID, "the filter's predicate on "
	    "column %s of %s.%s needs its value but it was not sent "
	    "(unchanged TOAST); set REPLICA IDENTITY FULL on the table or "
	    "filter on other columns", col, rel->schema, rel->name);
}

int
filter_row_passes(const struct filter_table *ft, const struct ls_relation *rel,
    const struct ls_tuple *t, bool *pass, char **errmsg)
{
	const char *unknown = NULL;
	enum tv tv;
	int r;

	*pass = ft == NULL || ft->where == NULL;
	if (*pass)
		return 0;
	if ((r = filter_eval_where(ft, rel, t, NULL, &tv, &unknown, errmsg)) != 0)
		return r;
	if (tv == TV_UNKNOWN)
		return unsent(rel, unknown, errmsg);
	*pass = tv == TV_TRUE;
	return 0;
}

/* Whether every column the where clause reads is a key column of rel. */
static bool
key_only(const struct fnode *n, const struct ls_relation *rel)
{
	size_t i;
	int c;

	switch (n->kind) {
	case N_CONST:
		return true;
	case N_AND: case N_OR: case N_NOT:
		for (i = 0; i < n->nkids; i++)
			if (!key_only(n->kids[i], rel))
				return false;
		return true;
	default:
		c = rel_col(rel, n->colname);
		return c >= 0 && (rel->cols[c].flags & LS_COL_KEY) != 0;
	}
}

/* A row let in must have every value: UNCHANGED ones from a full old row. */
static int
check_fill(const struct ls_relation *rel, const struct ls_change *c,
    char **errmsg)
{
	bool full = c->old_kind == LS_OLD_FULL && c->old.ncols == c->new.ncols;
	uint16_t i;

	for (i = 0; i < c->new.ncols; i++) {
		if (c->new.vals[i].kind != LS_VAL_UNCHANGED ||
		    (full && c->old.vals[i].kind != LS_VAL_UNCHANGED))
			continue;
		return ls_errf(errmsg, LS_ERR_INVALID, "an update of %s.%s "
		    "moves a row into the filter's predicate but column %s "
		    "was not sent (unchanged TOAST) and the old row is not "
		    "known in full; set REPLICA IDENTITY FULL on the table",
		    rel->schema, rel->name, i < rel->ncols ?
		    rel->cols[i].name : "?");
	}
	return 0;
}

static int
action_delete(const struct filter_table *ft, const struct ls_relation *rel,
    const struct ls_change *c, enum filter_action *act, char **errmsg)
{
	enum tv tv;
	int r;

	if (c->old_kind == LS_OLD_NONE)
		return 0;		/* nothing to judge: APPLY */
	if (c->old_kind != LS_OLD_FULL && !key_only(ft->where, rel)) {
		*act = FILTER_DELETE_IF_PRESENT;
		return 0;
	}
	if ((r = filter_eval_where(ft, rel, &c->old, NULL, &tv, NULL, errmsg)) != 0)
		return r;
	*act = tv == TV_TRUE ? FILTER_APPLY : tv == TV_UNKNOWN ?
	    FILTER_DELETE_IF_PRESENT : FILTER_SKIP;
	return 0;
}

/* Where the row was (tv, maybe unknown) and is (pass): what to do. */
static enum filter_action
update_action(enum tv before, bool pass)
{
	if (before == TV_UNKNOWN)
		return pass ? FILTER_AS_UPSERT : FILTER_DELETE_IF_PRESENT;
	if (before == TV_TRUE)
		return pass ? FILTER_APPLY : FILTER_AS_DELETE;
	return pass ? FILTER_AS_INSERT : FILTER_SKIP;
}

static int
action_update(const struct filter_table *ft, const struct ls_relation *rel,
    const struct ls_change *c, enum filter_action *act, char **errmsg)
{
	const struct ls_tuple *fb, *old;
	const char *unknown = NULL;
	enum tv before = TV_UNKNOWN, after;
	int r;

	fb = c->old_kind == LS_OLD_FULL ? &c->old : NULL;
	if ((r = filter_eval_where(ft, rel, &c->new, fb, &after, &unknown,
	    errmsg)) != 0)
		return r;
	if (after == TV_UNKNOWN)
		return unsent(rel, unknown, errmsg);
	if (c->old_kind == LS_OLD_FULL || key_only(ft->where, rel)) {
		/* No old tuple: the key did not change. */
		old = c->old_kind != LS_OLD_NONE ? &c->old : &c->new;
		if ((r = filter_eval_where(ft, rel, old, NULL, &before, NULL,
		    errmsg)) != 0)
			return r;
	}
	*act = update_action(before, after == TV_TRUE);
	if (*act == FILTER_AS_INSERT || *act == FILTER_AS_UPSERT)
		return check_fill(rel, c, errmsg);
	return 0;
}

int
filter_change_action(const struct filter_table *ft,
    const struct ls_relation *rel, const struct ls_change *c,
    enum filter_action *act, char **errmsg)
{
	bool pass;
	int r;

	*act = FILTER_APPLY;
	if (ft == NULL || ft->where == NULL || c->kind == LS_CHANGE_TRUNCATE)
		return 0;
	switch (c->kind) {
	case LS_CHANGE_INSERT:
		if ((r = filter_row_passes(ft, rel, &c->new, &pass,
		    errmsg)) != 0)
			return r;
		*act = pass ? FILTER_APPLY : FILTER_SKIP;
		return 0;
	case LS_CHANGE_DELETE:
		return action_delete(ft, rel, c, act, errmsg);
	case LS_CHANGE_UPDATE:
		return action_update(ft, rel, c, act, errmsg);
	default:
		return ls_errf(errmsg, LS_ERR_INVALID, "change of %s.%s: "
		    "unknown kind %d", rel->schema, rel->name, c->kind);
	}
}
