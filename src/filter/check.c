/*
 * filter_check.c: filter_validate(): resolve columns and type literals; table
 * patterns, warnings and the section accessors.
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
 * Validation: resolve columns, type literals, collect the first error in
 * file order.
 */

static enum tclass
type_class(uint32_t oid)
{
	switch (oid) {
	case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID:
		return TC_INT;
	case OID_NUMERIC: case OID_FLOAT4: case OID_FLOAT8:
		return TC_NUM;
	case OID_BOOL:
		return TC_BOOL;
	case OID_TEXT: case OID_VARCHAR: case OID_NAME: case OID_CHAR:
		return TC_TEXT;
	case OID_BPCHAR:
		return TC_BPCHAR;
	case OID_UUID:
		return TC_UUID;
	case OID_DATE:
		return TC_DATE;
	case OID_TIMESTAMP:
		return TC_TS;
	case OID_TIMESTAMPTZ:
		return TC_TSTZ;
	default:
		return TC_OTHER;
	}
}

/* A type's name for messages, in buf when it is only known by OID. */
const char *
filter_type_name(uint32_t oid, char buf[24])
{
	static const struct { uint32_t oid; const char *name; } names[] = {
		{ OID_BOOL, "bool" }, { OID_CHAR, "\"char\"" },
		{ OID_NAME, "name" }, { OID_INT8, "int8" },
		{ OID_INT2, "int2" }, { OID_INT4, "int4" },
		{ OID_TEXT, "text" }, { OID_OID, "oid" },
		{ OID_FLOAT4, "float4" }, { OID_FLOAT8, "float8" },
		{ OID_BPCHAR, "bpchar" }, { OID_VARCHAR, "varchar" },
		{ OID_DATE, "date" }, { OID_TIMESTAMP, "timestamp" },
		{ OID_TIMESTAMPTZ, "timestamptz" }, { OID_NUMERIC, "numeric" },
		{ OID_UUID, "uuid" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].oid == oid)
			return names[i].name;
	snprintf(buf, 24, "type %u", oid);
	return buf;
}

struct vstate {
	struct filter			*f;
	const struct filter_table_info	*ti;	/* the section's table */
	int				 line, col;
	char				*msg;	/* the earliest problem */
	bool				 nomem;
};

static void verr(struct vstate *, int, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* Keep the problem if it comes before the one already found. */
static void
verr(struct vstate *v, int line, int col, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (v->msg != NULL && (line > v->line || (line == v->line &&
	    col >= v->col)))
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL) {
		v->nomem = true;
		return;
	}
	free(v->msg);
	v->msg = msg;
	v->line = line;
	v->col = col;
}

static const struct filter_column_info *
find_colinfo(const struct filter_table_info *ti, const char *name)
{
	size_t i;

	for (i = 0; i < ti->ncols; i++)
		if (strcmp(ti->cols[i].name, name) == 0)
			return &ti->cols[i];
	return NULL;
}

/* The column named at line:col, or NULL after reporting it. */
static const struct filter_column_info *
vcolumn(struct vstate *v, const char *name, int line, int col)
{
	const struct filter_column_info *ci = find_colinfo(v->ti, name);

	if (ci == NULL)
		verr(v, line, col, "column %s is not in table %s.%s", name,
		    v->ti->schema, v->ti->name);
	return ci;
}

/* The literal as written, for messages. */
static void
lit_show(const struct flit *l, char *buf, size_t size)
{
	if (l->kind == L_BOOL)
		snprintf(buf, size, "%s", l->b ? "true" : "false");
	else if (l->kind == L_NULL)
		snprintf(buf, size, "null");
	else
		snprintf(buf, size, l->kind == L_STR ? "'%.40s%s'" : "%.40s%s",
		    l->text, l->len > 40 ? "..." : "");
}

static void vlit_err(struct vstate *, const struct flit *, const char *,
    uint32_t, const char *, ...) __attribute__((format(printf, 5, 6)));

/* "column C is TYPE: <what>" at the literal. */
static void
vlit_err(struct vstate *v, const struct flit *l, const char *col,
    uint32_t oid, const char *fmt, ...)
{
	va_list ap;
	char tbuf[24], *what = NULL;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		what = NULL;
	va_end(ap);
	if (what == NULL) {
		v->nomem = true;
		return;
	}
	verr(v, l->line, l->col, "column %s is %s: %s", col,
	    filter_type_name(oid, tbuf), what);
	free(what);
}

static int
type_int(struct vstate *v, struct flit *l, uint32_t oid, const char *col,
    const char *show)
{
	if (l->kind == L_BOOL || (l->kind == L_NUM && !l->isint)) {
		vlit_err(v, l, col, oid, "expected an integer, not %s", show);
		return -1;
	}
	if (filter_parse_int(l->text, l->len, &l->i) != 0) {
		vlit_err(v, l, col, oid, "%s is %s", show, l->kind == L_NUM ?
		    "out of range" : "not an integer");
		return -1;
	}
	return 0;
}

static int
type_num(struct vstate *v, struct flit *l, uint32_t oid, const char *col,
    const char *show)
{
	if (l->kind == L_BOOL || filter_parse_dec(l->text, l->len, &l->dec) != 0) {
		vlit_err(v, l, col, oid, "expected a number, not %s", show);
		return -1;
	}
	return 0;
}

static int
type_bool(struct vstate *v, struct flit *l, uint32_t oid, const char *col,
    const char *show)
{
	if (l->kind == L_BOOL)
		return 0;
	if (l->kind == L_STR && filter_parse_bool(l->text, l->len, &l->b) == 0)
		return 0;
	vlit_err(v, l, col, oid, "expected true or false, not %s", show);
	return -1;
}

/* text, bpchar, uuid and types the filter does not know: 'strings'. */
static int
type_string(struct vstate *v, struct flit *l, uint32_t oid, const char *col,
    const char *show)
{
	enum tclass tc = type_class(oid);

	if (l->kind != L_STR) {
		vlit_err(v, l, col, oid, "expected a 'quoted string', not %s",
		    show);
		return -1;
	}
	if (tc == TC_UUID && filter_parse_uuid(l->text, l->len, l->uuid) != 0) {
		vlit_err(v, l, col, oid, "%s is not a uuid", show);
		return -1;
	}
	for (l->cmplen = l->len; tc == TC_BPCHAR && l->cmplen > 0 &&
	    l->text[l->cmplen - 1] == ' '; l->cmplen--)
		;
	return 0;
}

static int
type_time(struct vstate *v, struct flit *l, uint32_t oid, const char *col,
    const char *show)
{
	enum tclass tc = type_class(oid);
	struct tvalue tv;

	if (l->kind != L_STR || filter_parse_time(l->text, l->len, &tv) != 0) {
		vlit_err(v, l, col, oid, "expected a %s like '%s', not %s",
		    tc == TC_DATE ? "date" : "timestamp", tc == TC_DATE ?
		    "2024-02-29" : tc == TC_TS ? "2024-02-29 18:29:59" :
		    "2024-02-29 18:29:59+05:30", show);
		return -1;
	}
	if (tc == TC_DATE && tv.has_time) {
		vlit_err(v, l, col, oid, "%s has a time of day", show);
		return -1;
	}
	if (tc == TC_TS && tv.has_zone) {
		vlit_err(v, l, col, oid, "%s has a time zone; a timestamp "
		    "literal must not have one", show);
		return -1;
	}
	l->i = tv.us;
	return 0;
}

/* Check and convert a literal for a column of type oid; 0 or -1. */
static int
type_lit(struct vstate *v, struct flit *l, uint32_t oid, const char *col)
{
	char show[64];

	lit_show(l, show, sizeof(show));
	switch (type_class(oid)) {
	case TC_INT:
		return type_int(v, l, oid, col, show);
	case TC_NUM:
		return type_num(v, l, oid, col, show);
	case TC_BOOL:
		return type_bool(v, l, oid, col, show);
	case TC_DATE: case TC_TS: case TC_TSTZ:
		return type_time(v, l, oid, col, show);
	default:
		return type_string(v, l, oid, col, show);
	}
}

/* Proleptic Gregorian date of day z counted from 2000-01-01. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468 + 10957;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* An instant as PostgreSQL reads it back: "YYYY-MM-DD HH:MM:SS.ffffff+00". */
static char *
format_utc(int64_t us)
{
	int64_t day = 86400000000LL, days, tod, y;
	int m, d;
	char *out;

	days = us / day - (us % day < 0);
	tod = us - days * day;
	civil_from_days(days, &y, &m, &d);
	if (asprintf(&out, "%04lld-%02d-%02d %02d:%02d:%02d.%06d+00%s",
	    (long long)(y > 0 ? y : 1 - y), m, d, (int)(tod / 3600000000LL),
	    (int)(tod / 60000000 % 60), (int)(tod / 1000000 % 60),
	    (int)(tod % 1000000), y > 0 ? "" : " BC") < 0)
		return NULL;
	return out;
}

/* The text a const rule writes, from its typed literal. */
static char *
const_text(const struct flit *l, uint32_t oid)
{
	const char *s = l->text;
	size_t len = l->len;
	char *out;
	struct tvalue tv;

	switch (type_class(oid)) {
	case TC_INT:
		return asprintf(&out, "%lld", (long long)l->i) < 0 ? NULL : out;
	case TC_BOOL:
		return strdup(l->b ? "t" : "f");
	case TC_NUM:
		s = filter_trim(s, &len);
		return filter_xstrndup(s, len);
	case TC_TSTZ:
		if (filter_parse_time(s, len, &tv) == 0 && !tv.has_zone &&
		    tv.us != INT64_MAX && tv.us != INT64_MIN)
			return format_utc(tv.us);
		return filter_xstrndup(s, len);
	default:
		return filter_xstrndup(s, len);
	}
}

/* The ranges of the narrower integer types, for const. */
static bool
int_fits(uint32_t oid, int64_t i)
{
	switch (oid) {
	case OID_INT2:	return i >= INT16_MIN && i <= INT16_MAX;
	case OID_INT4:	return i >= INT32_MIN && i <= INT32_MAX;
	case OID_OID:	return i >= 0 && i <= (int64_t)UINT32_MAX;
	default:	return true;
	}
}

static void vnode(struct vstate *, struct fnode *);

/* A leaf: its column, its operator, its literals. */
static void
vleaf(struct vstate *v, struct fnode *n)
{
	const struct filter_column_info *ci;
	char tbuf[24];
	size_t i;

	if ((ci = vcolumn(v, n->colname, n->line, n->col)) == NULL)
		return;
	n->type_oid = ci->type_oid;
	n->tclass = type_class(ci->type_oid);
	if (n->kind == N_BOOLCOL && n->tclass != TC_BOOL)
		verr(v, n->line, n->col, "column %s is %s, not bool; compare "
		    "it with a value", n->colname, filter_type_name(n->type_oid, tbuf));
	if (n->kind == N_CMP && n->op != OP_EQ && n->op != OP_NE &&
	    (n->tclass == TC_BOOL || n->tclass == TC_OTHER))
		verr(v, n->oline, n->ocol, "column %s is %s: only =, != and "
		    "in apply to it", n->colname, filter_type_name(n->type_oid, tbuf));
	for (i = 0; i < n->nlits; i++)
		type_lit(v, &n->lits[i], n->type_oid, n->colname);
}

static void
vnode(struct vstate *v, struct fnode *n)
{
	size_t i;

	if (n == NULL)
		return;
	switch (n->kind) {
	case N_AND: case N_OR: case N_NOT:
		for (i = 0; i < n->nkids; i++)
			vnode(v, n->kids[i]);
		break;
	case N_CONST:
		break;
	default:
		vleaf(v, n);
	}
}

static void
vrule(struct vstate *v, struct frule *ru)
{
	const struct filter_column_info *ci;
	uint32_t oid;
	char tbuf[24];

	free(ru->ctext);
	ru->ctext = NULL;
	if ((ci = vcolumn(v, ru->col, ru->line, ru->col_no)) == NULL)
		return;
	oid = ci->type_oid;
	if (ru->kind == R_HASH && oid != OID_TEXT && oid != OID_VARCHAR &&
	    oid != OID_BPCHAR)
		verr(v, ru->kline, ru->kcol, "column %s is %s: hash applies to "
		    "text, varchar and char columns (it writes 64 hex digits)",
		    ru->col, filter_type_name(oid, tbuf));
	if (ru->kind != R_CONST || type_lit(v, &ru->lit, oid, ru->col) != 0)
		return;
	if (type_class(oid) == TC_INT && !int_fits(oid, ru->lit.i)) {
		vlit_err(v, &ru->lit, ru->col, oid, "%lld is out of range",
		    (long long)ru->lit.i);
		return;
	}
	if ((ru->ctext = const_text(&ru->lit, oid)) == NULL)
		v->nomem = true;
	else
		ru->clen = strlen(ru->ctext);
}

static const struct filter_table_info *
find_tableinfo(const struct filter_table_info *tables, size_t ntables,
    const char *schema, const char *name)
{
	size_t i;

	for (i = 0; i < ntables; i++)
		if (strcmp(tables[i].schema, schema) == 0 &&
		    strcmp(tables[i].name, name) == 0)
			return &tables[i];
	return NULL;
}

static void
vsection(struct vstate *v, struct filter_table *ft,
    const struct filter_table_info *tables, size_t ntables)
{
	size_t i, ndrop = 0;

	v->ti = find_tableinfo(tables, ntables, ft->schema, ft->name);
	if (v->ti == NULL) {
		verr(v, ft->line, ft->col, "table %s.%s is not in the source "
		    "database", ft->schema, ft->name);
		return;
	}
	vnode(v, ft->where);
	for (i = 0; i < ft->nrules; i++) {
		vrule(v, &ft->rules[i]);
		ndrop += ft->rules[i].kind == R_DROP &&
		    find_colinfo(v->ti, ft->rules[i].col) != NULL;
	}
	if (ndrop > 0 && ndrop == v->ti->ncols)
		verr(v, ft->line, ft->col, "every column of table %s.%s is "
		    "dropped; exclude the table instead", ft->schema, ft->name);
}

/* The next UTF-8 character after s (s at a character's first byte). */
static const char *
utf8_next(const char *s)
{
	for (s++; ((unsigned char)*s & 0xc0) == 0x80; s++)
		;
	return s;
}

/* '*' any string, '?' one character, '\' makes the next byte literal. */
static bool
glob_match(const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;
	size_t adv;

	while (*s != '\0') {
		adv = p[0] == '\\' && p[1] != '\0' ? 2 : 1;
		if (*p == '*') {
			star_p = ++p;
			star_s = s;
		} else if (*p == '?') {
			p++;
			s = utf8_next(s);
		} else if (*p != '\0' && p[adv - 1] == *s) {
			p += adv;
			s++;
		} else if (star_p != NULL) {
			p = star_p;
			s = star_s = utf8_next(star_s);
		} else
			return false;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool
pattern_match(const struct fpattern *pat, const char *schema,
    const char *name)
{
	return glob_match(pat->schema, schema) && glob_match(pat->table, name);
}

bool
filter_includes(const struct filter *f, const char *schema, const char *name)
{
	bool incl;
	size_t i;

	if (f == NULL)
		return true;
	incl = !f->any_include;
	for (i = 0; i < f->npats; i++) {
		if (!pattern_match(&f->pats[i], schema, name))
			continue;
		if (f->pats[i].exclude)
			return false;
		incl = true;
	}
	return incl;
}

static int add_warning(struct filter *, int, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));

static int
add_warning(struct filter *f, int line, int col, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL, *w = NULL, **nw;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL || asprintf(&w, "%s:%d:%d: %s", f->filename, line,
	    col, msg) < 0 || (nw = reallocarray(f->warnings, f->nwarnings + 1,
	    sizeof(*nw))) == NULL) {
		free(msg);
		free(w);
		return LS_ERR_NOMEM;
	}
	free(msg);
	f->warnings = nw;
	f->warnings[f->nwarnings++] = w;
	return 0;
}

/* Patterns that match nothing; sections of tables left out. */
static int
collect_warnings(struct filter *f, const struct filter_table_info *tables,
    size_t ntables)
{
	const struct fpattern *pat;
	const struct filter_table *ft;
	size_t i, j;
	int r = 0;

	for (i = 0; i < f->npats && r == 0; i++) {
		pat = &f->pats[i];
		for (j = 0; j < ntables; j++)
			if (pattern_match(pat, tables[j].schema, tables[j].name))
				break;
		if (j == ntables)
			r = add_warning(f, pat->line, pat->col, "%s pattern %s "
			    "matches no table", pat->exclude ? "exclude" :
			    "include", pat->text);
	}
	for (i = 0; i < f->ntables && r == 0; i++) {
		ft = f->tables[i];
		if (!filter_includes(f, ft->schema, ft->name))
			r = add_warning(f, ft->line, ft->col, "table %s.%s has a "
			    "section but is not included", ft->schema,
			    ft->name);
	}
	return r;
}

int
filter_validate(struct filter *f, const struct filter_table_info *tables,
    size_t ntables, char **errmsg)
{
	struct vstate v = { 0 };
	size_t i;
	int r = 0;

	v.f = f;
	f->validated = false;
	filter_warnings_clear(f);
	for (i = 0; i < f->ntables; i++)
		vsection(&v, f->tables[i], tables, ntables);
	if (v.nomem)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if (v.msg != NULL)
		r = ls_errf(errmsg, LS_ERR_INVALID, "%s:%d:%d: %s", f->filename,
		    v.line, v.col, v.msg);
	else if (collect_warnings(f, tables, ntables) != 0)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	free(v.msg);
	f->validated = r == 0;
	return r;
}

size_t
filter_warning_count(const struct filter *f)
{
	return f != NULL ? f->nwarnings : 0;
}

const char *
filter_warning(const struct filter *f, size_t i)
{
	return f != NULL && i < f->nwarnings ? f->warnings[i] : NULL;
}

const char *
filter_hash_key_file(const struct filter *f)
{
	return f != NULL ? f->keyfile : NULL;
}

bool
filter_needs_hash_key(const struct filter *f)
{
	size_t i, j;

	for (i = 0; f != NULL && i < f->ntables; i++)
		for (j = 0; j < f->tables[i]->nrules; j++)
			if (f->tables[i]->rules[j].kind == R_HASH)
				return true;
	return false;
}

const struct filter_table *
filter_table(const struct filter *f, const char *schema, const char *name)
{
	return f != NULL ? filter_find_section(f, schema, name) : NULL;
}

enum filter_id_mode
filter_id_mode(const struct filter_table *ft)
{
	return ft != NULL ? ft->idmode : FILTER_ID_DEFAULT;
}

/* The line of the first leaf of n naming col, or 0. */
static int
node_mentions(const struct fnode *n, const char *col)
{
	size_t i;
	int line;

	if (n == NULL)
		return 0;
	if (n->colname != NULL && strcmp(n->colname, col) == 0)
		return n->line;
	for (i = 0; i < n->nkids; i++)
		if ((line = node_mentions(n->kids[i], col)) != 0)
			return line;
	return 0;
}

int
filter_mentions(const struct filter_table *ft, const char *col)
{
	size_t i;

	if (ft == NULL || col == NULL)
		return ft != NULL ? ft->line : 0;
	for (i = 0; i < ft->nrules; i++)
		if (strcmp(ft->rules[i].col, col) == 0)
			return ft->rules[i].line;
	return node_mentions(ft->where, col);
}

size_t
filter_section_count(const struct filter *f)
{
	return f != NULL ? f->ntables : 0;
}

const struct filter_table *
filter_section(const struct filter *f, size_t i, const char **schema,
    const char **name)
{
	if (f == NULL || i >= f->ntables)
		return NULL;
	*schema = f->tables[i]->schema;
	*name = f->tables[i]->name;
	return f->tables[i];
}
