/*
 * filter_copy.c: column treatments (filter_scratch, filter_transform()) and
 * the base snapshot's COPY text rows.
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
 * Column treatments.  The scratch caches, per section and input relation
 * shape, the rule of each column and the relation without dropped columns.
 */

struct xentry {
	struct xentry			*next;
	const struct filter_table	*ft;
	struct ls_relation		 in;	/* a deep copy, compared */
	struct ls_relation		 out;	/* without dropped columns */
	const struct frule		**act;	/* per input column, or NULL */
	size_t				 nhash;
	bool				 dropped;
	bool				 nokey;	/* every key column dropped */
};

struct filter_scratch {
	const struct filter	*f;		/* the filter it serves */
	uint64_t		 serial;	/* f's serial when bound */
	struct xentry		*cache;
	struct ls_value		*vals;		/* output or COPY tuple */
	size_t			 valcap;
	char			*hbuf;		/* hash hex, 65 bytes each */
	size_t			 hcap;
	char			*dbuf;		/* decoded COPY fields */
	size_t			 dcap;
	char			*obuf;		/* output COPY line */
	size_t			 ocap;
	struct ls_column	*vcols;		/* COPY columns as a relation */
	size_t			 vcap;
	struct ls_relation	 vrel;
	size_t			*fpos, *flen;	/* raw COPY fields */
	size_t			 fcap, fcap2;
};

struct filter_scratch *
filter_scratch_new(const struct filter *f)
{
	struct filter_scratch *s = calloc(1, sizeof(*s));

	if (s != NULL && f != NULL) {
		s->f = f;
		s->serial = f->serial;
	}
	return s;
}

/* Whether s was made for the filter of ft (by serial: addresses recur). */
static bool
scratch_serves(const struct filter_scratch *s, const struct filter_table *ft)
{
	return s->f == ft->f && s->serial == ft->f->serial;
}

static void
entry_free(struct xentry *e)
{
	uint16_t i;

	if (e == NULL)
		return;
	for (i = 0; e->in.cols != NULL && i < e->in.ncols; i++)
		free((char *)e->in.cols[i].name);
	free(e->in.cols);
	free(e->out.cols);
	free((char *)e->in.schema);
	free((char *)e->in.name);
	free(e->act);
	free(e);
}

void
filter_scratch_free(struct filter_scratch *s)
{
	struct xentry *e;

	if (s == NULL)
		return;
	while ((e = s->cache) != NULL) {
		s->cache = e->next;
		entry_free(e);
	}
	free(s->vals);
	free(s->hbuf);
	free(s->dbuf);
	free(s->obuf);
	free(s->vcols);
	free(s->fpos);
	free(s->flen);
	free(s);
}

static bool
str_eq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
rel_equal(const struct ls_relation *a, const struct ls_relation *b)
{
	uint16_t i;

	if (a->oid != b->oid || a->replident != b->replident ||
	    a->ncols != b->ncols || !str_eq(a->schema, b->schema) ||
	    !str_eq(a->name, b->name))
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->cols[i].type_oid != b->cols[i].type_oid ||
		    a->cols[i].typmod != b->cols[i].typmod ||
		    a->cols[i].flags != b->cols[i].flags ||
		    !str_eq(a->cols[i].name, b->cols[i].name))
			return false;
	return true;
}

/* Copy rel's identity and columns into e->in; 0 or -1. */
static int
entry_copy_rel(struct xentry *e, const struct ls_relation *rel)
{
	uint16_t i;

	e->in = *rel;
	e->in.schema = e->in.name = NULL;
	if ((e->in.cols = calloc((size_t)rel->ncols + 1,
	    sizeof(*e->in.cols))) == NULL ||
	    (rel->schema != NULL && (e->in.schema = strdup(rel->schema)) ==
	    NULL) ||
	    (rel->name != NULL && (e->in.name = strdup(rel->name)) == NULL))
		return -1;
	for (i = 0; i < rel->ncols; i++) {
		e->in.cols[i] = rel->cols[i];
		e->in.cols[i].name = NULL;
		if ((e->in.cols[i].name = strdup(rel->cols[i].name)) == NULL)
			return -1;
	}
	return 0;
}

/* The rules of rel's columns and the relation without dropped ones. */
static struct xentry *
entry_new(const struct filter_table *ft, const struct ls_relation *rel)
{
	struct xentry *e = calloc(1, sizeof(*e));
	bool key_in = false, key_out = false;
	uint16_t i, k = 0;

	if (e == NULL || entry_copy_rel(e, rel) != 0 ||
	    (e->act = calloc((size_t)rel->ncols + 1, sizeof(*e->act))) ==
	    NULL || (e->out.cols = calloc((size_t)rel->ncols + 1,
	    sizeof(*e->out.cols))) == NULL) {
		entry_free(e);
		return NULL;
	}
	e->ft = ft;
	for (i = 0; i < rel->ncols; i++) {
		e->act[i] = filter_find_rule(ft, e->in.cols[i].name);
		key_in |= (e->in.cols[i].flags & LS_COL_KEY) != 0;
		if (e->act[i] != NULL && e->act[i]->kind == R_DROP) {
			e->dropped = true;
			continue;
		}
		e->nhash += e->act[i] != NULL && e->act[i]->kind == R_HASH;
		key_out |= (e->in.cols[i].flags & LS_COL_KEY) != 0;
		e->out.cols[k++] = e->in.cols[i];
	}
	e->out.oid = rel->oid;
	e->out.schema = e->in.schema;
	e->out.name = e->in.name;
	e->out.replident = rel->replident;
	e->out.ncols = k;
	e->nokey = key_in && !key_out;
	return e;
}

static int
get_entry(struct filter_scratch *s, const struct filter_table *ft,
    const struct ls_relation *rel, struct xentry **out)
{
	struct xentry *e;

	for (e = s->cache; e != NULL; e = e->next)
		if (e->ft == ft && rel_equal(&e->in, rel)) {
			*out = e;
			return 0;
		}
	if ((e = entry_new(ft, rel)) == NULL)
		return LS_ERR_NOMEM;
	e->next = s->cache;
	s->cache = e;
	*out = e;
	return 0;
}

/* Lowercase hex HMAC-SHA256(key, data) into out (65 bytes). */
static int
hmac_hex(const uint8_t *key, const char *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (HMAC(EVP_sha256(), key, FILTER_HASH_KEY_LEN,
	    (const unsigned char *)data, len, md, &mdlen) == NULL ||
	    mdlen != 32)
		return LS_ERR_INTERNAL;
	ls_hex(md, 32, out);
	return 0;
}

/* One value through its column's rule; a hash goes into hslot. */
static int
apply_rule(const struct frule *ru, const struct ls_value *v,
    const uint8_t *key, char *hslot, struct ls_value *o)
{
	int r;

	*o = *v;
	if (ru == NULL || v->kind == LS_VAL_UNCHANGED)
		return 0;
	switch (ru->kind) {
	case R_NULL:
		o->kind = LS_VAL_NULL;
		o->len = 0;
		o->data = NULL;
		return 0;
	case R_CONST:
		o->kind = LS_VAL_TEXT;
		o->len = (uint32_t)ru->clen;
		o->data = ru->ctext;
		return ru->ctext != NULL ? 0 : LS_ERR_INVALID;
	case R_HASH:
		if (v->kind == LS_VAL_NULL)
			return 0;
		if (v->kind != LS_VAL_TEXT)
			return LS_ERR_INVALID;
		if ((r = hmac_hex(key, v->data, v->len, hslot)) != 0)
			return r;
		o->len = 64;
		o->data = hslot;
		return 0;
	default:
		return LS_ERR_INTERNAL;
	}
}

/* Room for n output values and nhash hashes. */
static int
scratch_reserve(struct filter_scratch *s, size_t n, size_t nhash)
{
	if (filter_grow(&s->vals, &s->valcap, n + 1, sizeof(*s->vals)) != 0 ||
	    filter_grow(&s->hbuf, &s->hcap, nhash * 65 + 1, 1) != 0)
		return LS_ERR_NOMEM;
	return 0;
}

int
filter_transform(const struct filter_table *ft, const uint8_t *hash_key,
    const struct ls_relation *in_rel, const struct ls_tuple *in,
    struct filter_scratch *s, const struct ls_relation **out_rel,
    struct ls_tuple *out)
{
	struct xentry *e;
	char *hslot;
	uint16_t i, k = 0;
	int r;

	*out_rel = in_rel;
	*out = *in;
	if (in->ncols != in_rel->ncols)
		return LS_ERR_INVALID;
	if (ft != NULL && !scratch_serves(s, ft))
		return LS_ERR_INVALID;
	if (ft == NULL || ft->nrules == 0)
		return 0;
	if (!ft->f->validated)
		return LS_ERR_INVALID;
	if ((r = get_entry(s, ft, in_rel, &e)) != 0)
		return r;
	if (e->nokey || (e->nhash > 0 && hash_key == NULL))
		return LS_ERR_INVALID;
	if ((r = scratch_reserve(s, in->ncols, e->nhash)) != 0)
		return r;
	hslot = s->hbuf;
	for (i = 0; i < in->ncols; i++) {
		if (e->act[i] != NULL && e->act[i]->kind == R_DROP)
			continue;
		if ((r = apply_rule(e->act[i], &in->vals[i], hash_key, hslot,
		    &s->vals[k])) != 0)
			return r;
		hslot += s->vals[k++].data == hslot ? 65 : 0;
	}
	*out_rel = e->dropped ? &e->out : in_rel;
	out->ncols = k;
	out->vals = s->vals;
	return 0;
}

/*
 * The base snapshot: COPY text format rows.
 */

size_t
filter_copy_columns(const struct filter_table *ft,
    const struct filter_table_info *tbl, const char **names)
{
	const struct frule *ru;
	size_t i, n = 0;

	for (i = 0; i < tbl->ncols; i++) {
		ru = ft != NULL ? filter_find_rule(ft, tbl->cols[i].name) : NULL;
		if (ru == NULL || ru->kind != R_DROP)
			names[n++] = tbl->cols[i].name;
	}
	return n;
}

/* \ooo (one to three octal digits) or \xh[h] at f[*i]; the byte. */
static char
copy_numeric_escape(const char *f, size_t len, size_t *i)
{
	unsigned v = 0;
	size_t n;

	if (f[*i] == 'x') {
		for (n = 0; n < 2 && *i + 1 < len && filter_hexval(f[*i + 1]) >= 0;
		    n++)
			v = v * 16 + (unsigned)filter_hexval(f[++*i]);
		return (char)v;
	}
	v = (unsigned)(f[*i] - '0');
	for (n = 1; n < 3 && *i + 1 < len && f[*i + 1] >= '0' &&
	    f[*i + 1] <= '7'; n++)
		v = v * 8 + (unsigned)(f[++*i] - '0');
	return (char)(v & 0xff);
}

int
filter_copy_decode(const char *field, size_t len, char *out, size_t *outlen)
{
	static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
	const char *p;
	size_t i, j = 0;
	char c;

	for (i = 0; i < len; i++) {
		if ((c = field[i]) != '\\') {
			out[j++] = c;
			continue;
		}
		if (++i == len)
			return LS_ERR_CORRUPT;
		c = field[i];
		if (c != '\0' && (p = strchr(from, c)) != NULL)
			c = to[p - from];
		else if ((c >= '0' && c <= '7') || (c == 'x' && i + 1 < len &&
		    filter_hexval(field[i + 1]) >= 0))
			c = copy_numeric_escape(field, len, &i);
		out[j++] = c;
	}
	out[j] = '\0';
	*outlen = j;
	return 0;
}

size_t
filter_copy_encode(const char *val, size_t len, char *out)
{
	static const char from[] = "\b\f\n\r\t\v\\", to[] = "bfnrtv\\";
	const char *p;
	size_t i, j = 0;

	for (i = 0; i < len; i++) {
		if (val[i] != '\0' && (p = strchr(from, val[i])) != NULL) {
			out[j++] = '\\';
			out[j++] = to[p - from];
		} else
			out[j++] = val[i];
	}
	out[j] = '\0';
	return j;
}

/* Split body[len] at tabs into exactly ncols fields. */
static int
copy_split(struct filter_scratch *s, const struct filter_table_info *tbl,
    const char *body, size_t len, char **errmsg)
{
	size_t i, n = tbl->ncols == 0 && len == 0 ? 0 : 1, start = 0, k = 0;

	for (i = 0; i < len; i++)
		n += body[i] == '\t';
	if (n != tbl->ncols)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "COPY row of %s.%s has "
		    "%zu fields, expected %zu", tbl->schema, tbl->name, n,
		    tbl->ncols);
	if (filter_grow(&s->fpos, &s->fcap, n + 1, sizeof(*s->fpos)) != 0 ||
	    filter_grow(&s->flen, &s->fcap2, n + 1, sizeof(*s->flen)) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (i = 0; n > 0 && i <= len; i++) {
		if (i < len && body[i] != '\t')
			continue;
		s->fpos[k] = start;
		s->flen[k++] = i - start;
		start = i + 1;
	}
	return 0;
}

/* Decode the fields into s->vals (\N is NULL) and view tbl as a relation. */
static int
copy_decode_row(struct filter_scratch *s, const struct filter_table_info *tbl,
    const char *body, size_t len, char **errmsg)
{
	size_t i, off = 0, n;
	const char *f;

	if (filter_grow(&s->dbuf, &s->dcap, len + tbl->ncols + 1, 1) != 0 ||
	    filter_grow(&s->vals, &s->valcap, tbl->ncols + 1, sizeof(*s->vals)) != 0 ||
	    filter_grow(&s->vcols, &s->vcap, tbl->ncols + 1, sizeof(*s->vcols)) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (i = 0; i < tbl->ncols; i++) {
		f = body + s->fpos[i];
		memset(&s->vals[i], 0, sizeof(s->vals[i]));
		s->vals[i].kind = LS_VAL_NULL;
		if (s->flen[i] == 2 && f[0] == '\\' && f[1] == 'N')
			continue;
		if (filter_copy_decode(f, s->flen[i], s->dbuf + off, &n) != 0)
			return ls_errf(errmsg, LS_ERR_CORRUPT, "COPY row of "
			    "%s.%s: field %zu ends in a lone backslash",
			    tbl->schema, tbl->name, i + 1);
		s->vals[i].kind = LS_VAL_TEXT;
		s->vals[i].len = (uint32_t)n;
		s->vals[i].data = s->dbuf + off;
		off += n + 1;
	}
	for (i = 0; i < tbl->ncols; i++) {
		memset(&s->vcols[i], 0, sizeof(s->vcols[i]));
		s->vcols[i].name = tbl->cols[i].name;
		s->vcols[i].type_oid = tbl->cols[i].type_oid;
		s->vcols[i].typmod = -1;
	}
	memset(&s->vrel, 0, sizeof(s->vrel));
	s->vrel.schema = tbl->schema;
	s->vrel.name = tbl->name;
	s->vrel.replident = 'd';
	s->vrel.ncols = (uint16_t)tbl->ncols;
	s->vrel.cols = s->vcols;
	return 0;
}

/* Bytes the output row needs (without its newline). */
static size_t
copy_out_size(const struct filter_scratch *s, const struct xentry *e,
    size_t ncols)
{
	const struct frule *ru;
	size_t i, n = 0;

	for (i = 0; i < ncols; i++) {
		ru = e->act[i];
		if (ru != NULL && ru->kind == R_DROP)
			continue;
		if (ru == NULL)
			n += s->flen[i];
		else if (ru->kind == R_CONST)
			n += 2 * ru->clen;
		else
			n += 64;
		n++;			/* tab */
	}
	return n;
}

/* One output field of column i. */
static size_t
copy_out_field(const struct filter_scratch *s, const struct frule *ru,
    const uint8_t *key, const char *body, size_t i, char *o, int *r)
{
	const struct ls_value *v = &s->vals[i];

	*r = 0;
	if (ru == NULL) {
		memcpy(o, body + s->fpos[i], s->flen[i]);
		return s->flen[i];
	}
	if (ru->kind == R_CONST)
		return filter_copy_encode(ru->ctext, ru->clen, o);
	if (ru->kind == R_NULL || v->kind == LS_VAL_NULL) {
		memcpy(o, "\\N", 2);
		return 2;
	}
	*r = hmac_hex(key, v->data, v->len, o);
	return 64;
}

/* The kept row with the column rules applied, into s->obuf. */
static int
copy_output(struct filter_scratch *s, const struct xentry *e,
    const uint8_t *key, const struct filter_table_info *tbl,
    const char *body, bool nl, const char **out, size_t *outlen)
{
	bool first = true;
	size_t i, n = 0;
	char *o;
	int r = 0;

	if (e->nhash > 0 && key == NULL)
		return LS_ERR_INVALID;
	if (filter_grow(&s->obuf, &s->ocap, copy_out_size(s, e, tbl->ncols) + 2,
	    1) != 0)
		return LS_ERR_NOMEM;
	o = s->obuf;
	for (i = 0; i < tbl->ncols && r == 0; i++) {
		if (e->act[i] != NULL && e->act[i]->kind == R_DROP)
			continue;
		if (!first)
			o[n++] = '\t';
		first = false;
		n += copy_out_field(s, e->act[i], key, body, i, o + n, &r);
	}
	if (r != 0)
		return r;
	if (nl)
		o[n++] = '\n';
	*out = o;
	*outlen = n;
	return 0;
}

int
filter_copy_line(const struct filter_table *ft, const uint8_t *hash_key,
    const struct filter_table_info *tbl, const char *line, size_t len,
    struct filter_scratch *s, bool *keep, const char **out, size_t *outlen,
    char **errmsg)
{
	bool nl = len > 0 && line[len - 1] == '\n';
	struct ls_tuple t;
	struct xentry *e;
	enum tv tv = TV_TRUE;
	size_t blen = len - nl;
	int r;

	*keep = true;
	*out = line;
	*outlen = len;
	if (ft != NULL && !scratch_serves(s, ft))
		return ls_errf(errmsg, LS_ERR_INVALID, "%s.%s: the filter "
		    "scratch belongs to another filter; make one with "
		    "filter_scratch_new() for this filter", tbl->schema,
		    tbl->name);
	if (ft == NULL || (ft->where == NULL && ft->nrules == 0))
		return 0;
	if (tbl->ncols > UINT16_MAX)
		return ls_errf(errmsg, LS_ERR_INVALID, "%s.%s: %zu columns",
		    tbl->schema, tbl->name, tbl->ncols);
	if ((r = copy_split(s, tbl, line, blen, errmsg)) != 0 ||
	    (r = copy_decode_row(s, tbl, line, blen, errmsg)) != 0)
		return r;
	t.ncols = (uint16_t)tbl->ncols;
	t.vals = s->vals;
	if (ft->where != NULL && (r = filter_eval_where(ft, &s->vrel, &t, NULL, &tv,
	    NULL, errmsg)) != 0)
		return r;
	if ((*keep = tv == TV_TRUE) == false || ft->nrules == 0)
		return 0;
	if (!ft->f->validated)
		return ls_errf(errmsg, LS_ERR_INVALID, "filter %s used before "
		    "filter_validate() succeeded", ft->f->filename);
	if ((r = get_entry(s, ft, &s->vrel, &e)) != 0)
		return ls_errf(errmsg, r, "out of memory");
	if ((r = copy_output(s, e, hash_key, tbl, line, nl, out, outlen)) != 0)
		return ls_errf(errmsg, r, "COPY row of %s.%s: %s", tbl->schema,
		    tbl->name, r == LS_ERR_INVALID ? "a column is hashed but "
		    "no hash key was given" : "hashing failed");
	return 0;
}
