/* elide.c: filters for the restore (see elide.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "elide.h"
#include "repo/base.h"

struct elide {
	struct filter		 *f;
	uint8_t			  key[FILTER_HASH_KEY_LEN];
	bool			  has_key;
	struct filter_table_info *tables;	/* from the manifest */
	size_t			  ntables;
	struct filter_scratch	 *s[3];		/* new, old, COPY lines */
	char			**remap, **preserve;	/* "s.t", NULL-ended */
	struct ls_value		  fill[1664];	/* new row, TOAST filled */
};

static int
manifest_info(struct elide *e, const struct base_manifest *m)
{
	struct base_table t;
	struct filter_column_info *cols;
	size_t i, k;

	e->ntables = base_manifest_ntables(m);
	if ((e->tables = calloc(e->ntables + 1, sizeof(*e->tables))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; base_manifest_table(m, i, &t) == 0 && i < e->ntables; i++) {
		e->tables[i].schema = t.schema;
		e->tables[i].name = t.name;
		e->tables[i].ncols = base_manifest_ncolumns(m, i);
		cols = calloc(e->tables[i].ncols + 1, sizeof(*cols));
		if (cols == NULL)
			return LS_ERR_NOMEM;
		for (k = 0; k < e->tables[i].ncols; k++)
			base_manifest_columns(m, i, k, &cols[k].name, &cols[k].type_oid);
		e->tables[i].cols = cols;
	}
	return 0;
}

/* The per-table id-mode lines, as "schema.name" lists. */
static int
id_lists(struct elide *e)
{
	size_t n = filter_section_count(e->f), i, nr = 0, np = 0;
	const struct filter_table *ft;
	const char *schema, *name;
	char *q;

	e->remap = calloc(n + 1, sizeof(char *));
	e->preserve = calloc(n + 1, sizeof(char *));
	if (e->remap == NULL || e->preserve == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		ft = filter_section(e->f, i, &schema, &name);
		if (filter_id_mode(ft) == FILTER_ID_DEFAULT)
			continue;
		if (asprintf(&q, "%s.%s", schema, name) < 0)
			return LS_ERR_NOMEM;
		if (filter_id_mode(ft) == FILTER_ID_REMAP)
			e->remap[nr++] = q;
		else
			e->preserve[np++] = q;
	}
	return 0;
}

int
elide_new(const char *path, const struct base_manifest *m, struct elide **out,
    char **errmsg)
{
	struct elide *e = calloc(1, sizeof(*e));
	size_t i;
	int r;

	if (e == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((r = filter_load(path, &e->f, errmsg)) != 0 ||
	    (r = manifest_info(e, m)) != 0 ||
	    (r = filter_validate(e->f, e->tables, e->ntables, errmsg)) != 0 ||
	    (r = id_lists(e)) != 0)
		goto fail;
	for (i = 0; i < filter_warning_count(e->f); i++)
		log_warn("restore", "%s", filter_warning(e->f, i));
	if (filter_needs_hash_key(e->f)) {
		if (filter_hash_key_file(e->f) == NULL) {
			r = ls_errf(errmsg, LS_ERR_INVALID, "%s: a column uses hash "
			    "but there is no hash-key-file line", path);
			goto fail;
		}
		if ((r = ls_key_load(filter_hash_key_file(e->f), e->key, errmsg)) != 0)
			goto fail;
		e->has_key = true;
	}
	for (i = 0; i < 3; i++)
		if ((e->s[i] = filter_scratch_new(e->f)) == NULL) {
			r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			goto fail;
		}
	*out = e;
	return 0;
 fail:
	elide_free(e);
	return r != 0 ? r : LS_ERR_NOMEM;
}

void
elide_free(struct elide *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < 3; i++)
		filter_scratch_free(e->s[i]);
	for (i = 0; e->tables != NULL && i < e->ntables; i++)
		free((void *)e->tables[i].cols);
	for (i = 0; e->remap != NULL && e->remap[i] != NULL; i++)
		free(e->remap[i]);
	for (i = 0; e->preserve != NULL && e->preserve[i] != NULL; i++)
		free(e->preserve[i]);
	free(e->remap);
	free(e->preserve);
	free(e->tables);
	filter_free(e->f);
	free(e);
}

bool
elide_includes(const struct elide *e, const char *schema, const char *name)
{
	return e == NULL || filter_includes(e->f, schema, name);
}

char *
elide_mentions(const struct elide *e, const char *schema, const char *name,
    const char *col)
{
	int line = e != NULL ? filter_mentions(filter_table(e->f, schema, name),
	    col) : 0;
	char *s;

	if (line == 0 || asprintf(&s, "--filter line %d", line) < 0)
		return NULL;
	return s;
}

const char *const *
elide_remap_tables(const struct elide *e)
{
	return e != NULL ? (const char *const *)e->remap : NULL;
}

const char *const *
elide_preserve_tables(const struct elide *e)
{
	return e != NULL ? (const char *const *)e->preserve : NULL;
}

static const uint8_t *
hkey(const struct elide *e)
{
	return e->has_key ? e->key : NULL;
}

int
elide_relation(struct elide *e, const struct ls_relation *src,
    const struct ls_relation **out, char **errmsg)
{
	const struct filter_table *ft = filter_table(e->f, src->schema, src->name);
	struct ls_value nulls[1664];
	struct ls_tuple in = { src->ncols, nulls }, tout;
	uint16_t i;
	int r;

	*out = src;
	if (ft == NULL)
		return 0;
	for (i = 0; i < src->ncols; i++)
		nulls[i] = (struct ls_value){ LS_VAL_NULL, 0, NULL };
	if ((r = filter_transform(ft, hkey(e), src, &in, e->s[0], out, &tout)) != 0)
		return ls_errprefix(errmsg, r, "filter on %s.%s", src->schema,
		    src->name);
	return 0;
}

/* The change with its tuples treated (drop/null/const/hash), to fn. */
static int
emit(struct elide *e, const struct filter_table *ft,
    const struct ls_relation *rel, const struct ls_change *c,
    bool if_present, int (*fn)(void *, const struct ls_change *, bool),
    void *arg, char **errmsg)
{
	const struct ls_relation *orel;
	struct ls_change out = *c;
	int r;

	if (ft == NULL)
		return fn(arg, c, if_present);
	if (c->kind != LS_CHANGE_DELETE && (r = filter_transform(ft, hkey(e),
	    rel, &c->new, e->s[0], &orel, &out.new)) != 0)
		return ls_errprefix(errmsg, r, "filter on %s.%s", rel->schema,
		    rel->name);
	if (c->old_kind != LS_OLD_NONE && (r = filter_transform(ft, hkey(e),
	    rel, &c->old, e->s[1], &orel, &out.old)) != 0)
		return ls_errprefix(errmsg, r, "filter on %s.%s", rel->schema,
		    rel->name);
	return fn(arg, &out, if_present);
}

/* c->new with its UNCHANGED values taken from the old tuple. */
static struct ls_tuple
filled(struct elide *e, const struct ls_change *c)
{
	uint16_t i;

	for (i = 0; i < c->new.ncols; i++)
		e->fill[i] = c->new.vals[i].kind == LS_VAL_UNCHANGED &&
		    c->old_kind != LS_OLD_NONE ? c->old.vals[i] : c->new.vals[i];
	return (struct ls_tuple){ c->new.ncols, e->fill };
}

/* A delete of the row c is about, by its old key (or its unchanged key). */
static struct ls_change
as_delete(const struct ls_change *c)
{
	struct ls_change d = { .kind = LS_CHANGE_DELETE, .relid = c->relid };

	d.old_kind = c->old_kind != LS_OLD_NONE ? c->old_kind : LS_OLD_KEY;
	d.old = c->old_kind != LS_OLD_NONE ? c->old : c->new;
	return d;
}

int
elide_change(struct elide *e, const struct ls_relation *rel,
    const struct ls_change *c,
    int (*fn)(void *arg, const struct ls_change *, bool if_present),
    void *arg, char **errmsg)
{
	const struct filter_table *ft = filter_table(e->f, rel->schema, rel->name);
	enum filter_action act = FILTER_APPLY;
	struct ls_change d, ins;
	int r;

	if (ft != NULL && (r = filter_change_action(ft, rel, c, &act, errmsg)) != 0)
		return r;
	switch (act) {
	case FILTER_SKIP:
		return 0;
	case FILTER_APPLY:
		return emit(e, ft, rel, c, false, fn, arg, errmsg);
	case FILTER_AS_DELETE:		/* the row was in: it must be there */
	case FILTER_DELETE_IF_PRESENT:
		d = as_delete(c);
		return emit(e, ft, rel, &d, act == FILTER_DELETE_IF_PRESENT, fn,
		    arg, errmsg);
	default:	/* AS_INSERT, AS_UPSERT */
		ins = (struct ls_change){ .kind = LS_CHANGE_INSERT, .relid = c->relid };
		ins.new = filled(e, c);
		if (act == FILTER_AS_UPSERT) {
			d = as_delete(c);
			if ((r = emit(e, ft, rel, &d, true, fn, arg,
			    errmsg)) != 0)
				return r;
		}
		return emit(e, ft, rel, &ins, false, fn, arg, errmsg);
	}
}

static const struct filter_table_info *
table_info(const struct elide *e, const char *schema, const char *name)
{
	size_t i;

	for (i = 0; i < e->ntables; i++)
		if (strcmp(e->tables[i].schema, schema) == 0 &&
		    strcmp(e->tables[i].name, name) == 0)
			return &e->tables[i];
	return NULL;
}

int
elide_copy_columns(struct elide *e, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char **names, size_t *n)
{
	const struct filter_table *ft = filter_table(e->f, schema, name);
	const struct filter_table_info *ti = table_info(e, schema, name);
	size_t i;

	if (ft == NULL || ti == NULL) {
		for (i = 0; i < ncols; i++)
			names[i] = cols[i];
		*n = ncols;
		return 0;
	}
	*n = filter_copy_columns(ft, ti, names);
	return 0;
}

int
elide_copy_line(struct elide *e, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char *line, size_t len,
    bool *keep, const char **out, size_t *outlen, char **errmsg)
{
	const struct filter_table *ft = filter_table(e->f, schema, name);
	const struct filter_table_info *ti = table_info(e, schema, name);

	(void)cols;
	(void)ncols;
	*keep = true;
	*out = line;
	*outlen = len;
	if (ft == NULL || ti == NULL)
		return 0;
	return filter_copy_line(ft, hkey(e), ti, line, len, e->s[2], keep, out,
	    outlen, errmsg);
}
