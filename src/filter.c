/*
 * filter.c: elision filters (filter.h, logship-filter(5)).
 *
 * A hand-written lexer and recursive-descent parser turn the filter file
 * into sections of a table: a where tree (and/or nodes are n-ary, so only
 * parentheses and `not` nest, at most FILTER_MAX_DEPTH deep) and column
 * rules.  filter_validate() types every literal against its column; the
 * evaluation is read-only on the filter and thread-safe.  Comparisons are
 * exact: 64-bit integers, decimal digit strings, instants in microseconds
 * computed with checked arithmetic.  An UNCHANGED value makes a comparison
 * "unknown", which and/or resolve when the other side decides the result.
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

#include "error.h"
#include "filter.h"
#include "util.h"

/* PostgreSQL type OIDs the filter knows. */
#define OID_BOOL	16
#define OID_CHAR	18
#define OID_NAME	19
#define OID_INT8	20
#define OID_INT2	21
#define OID_INT4	23
#define OID_TEXT	25
#define OID_OID		26
#define OID_FLOAT4	700
#define OID_FLOAT8	701
#define OID_BPCHAR	1042
#define OID_VARCHAR	1043
#define OID_DATE	1082
#define OID_TIMESTAMP	1114
#define OID_TIMESTAMPTZ	1184
#define OID_NUMERIC	1700
#define OID_UUID	2950

/* How values of a type compare. */
enum tclass {
	TC_OTHER, TC_INT, TC_NUM, TC_BOOL, TC_TEXT, TC_BPCHAR, TC_UUID,
	TC_DATE, TC_TS, TC_TSTZ,
};

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

/* Three-valued logic, plus "needs a value that was not sent". */
enum tv { TV_FALSE, TV_TRUE, TV_NULL, TV_UNKNOWN };

/* A decimal: rank orders -Infinity, numbers, Infinity, NaN. */
struct dec {
	int		 rank;		/* 0 -inf, 1 finite, 2 +inf, 3 NaN */
	int		 sign;		/* finite: -1, 0, 1 */
	const char	*d, *e;		/* significant digits ('.' skipped) */
	int64_t		 exp;		/* value = 0.d... * 10^exp */
};

enum lkind { L_STR, L_NUM, L_BOOL, L_NULL };

struct flit {
	enum lkind	 kind;
	char		*text;		/* string contents or number as written */
	size_t		 len;
	bool		 isint;		/* L_NUM without '.' or exponent */
	bool		 b;		/* L_BOOL; typed bool */
	int		 line, col;
	/* typed by filter_validate() */
	int64_t		 i;		/* integers, instants */
	struct dec	 dec;		/* numeric; points into text */
	char		 uuid[32];	/* lowercase hex */
	size_t		 cmplen;	/* bpchar: length without trailing spaces */
};

enum nkind { N_AND, N_OR, N_NOT, N_CMP, N_IN, N_ISNULL, N_BOOLCOL, N_CONST };

struct fnode {
	enum nkind	  kind;
	struct fnode	**kids;		/* and, or (n), not (1) */
	size_t		  nkids;
	char		 *colname;	/* leaves */
	int		  line, col;	/* of the column name or keyword */
	int		  oline, ocol;	/* of the operator */
	enum op		  op;		/* N_CMP */
	bool		  neg;		/* not in, is not null */
	bool		  value;	/* N_CONST */
	struct flit	 *lits;		/* N_CMP (1), N_IN (n) */
	size_t		  nlits;
	/* set by filter_validate() */
	uint32_t	  type_oid;
	enum tclass	  tclass;
};

enum rkind { R_DROP, R_NULL, R_CONST, R_HASH };

struct frule {
	char		*col;
	int		 line, col_no;	/* of the column name */
	int		 kline, kcol;	/* of drop/null/const/hash */
	enum rkind	 kind;
	struct flit	 lit;		/* R_CONST */
	char		*ctext;		/* R_CONST: output text (validated) */
	size_t		 clen;
};

struct filter_table {
	const struct filter	*f;
	char			*schema, *name;
	int			 line, col;
	struct fnode		*where;
	int			 wline;		/* of the where line */
	struct frule		*rules;
	size_t			 nrules, rulecap;
	enum filter_id_mode	 idmode;
	int			 idline;
};

struct fpattern {
	char		*schema, *table;	/* '*' '?' wild, '\' escapes */
	char		*text;			/* as written */
	int		 line, col;
	bool		 exclude;
};

struct filter {
	char			 *filename;
	struct fpattern		 *pats;
	size_t			  npats, patcap;
	bool			  any_include;
	char			 *keyfile;	/* resolved */
	int			  kline;
	struct filter_table	**tables;
	size_t			  ntables, tabcap;
	char			**warnings;
	size_t			  nwarnings;
	bool			  validated;
	uint64_t		  serial;	/* unique in the process */
};

/* Grow *arr (of elem-byte items) to hold at least n; 0 or -1. */
static int
grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	void **p = arr;
	size_t c = *cap ? *cap : 8;
	void *q;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	if ((q = reallocarray(*p, c, elem)) == NULL)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* A growable byte string. */
struct sbuf {
	char	*b;
	size_t	 len, cap;
};

static int
sb_putc(struct sbuf *sb, char c)
{
	if (grow(&sb->b, &sb->cap, sb->len + 2, 1) != 0)
		return -1;
	sb->b[sb->len++] = c;
	sb->b[sb->len] = '\0';
	return 0;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
is_ident_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	    c >= 0x80;
}

static bool
is_ident_char(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Case-insensitive comparison of s[len] with the lowercase word w. */
static bool
word_eq(const char *s, size_t len, const char *w)
{
	size_t i;

	if (strlen(w) != len)
		return false;
	for (i = 0; i < len; i++)
		if (lower(s[i]) != w[i])
			return false;
	return true;
}

/* Trim ASCII spaces from both ends of s[*len]. */
static const char *
trim(const char *s, size_t *len)
{
	while (*len > 0 && (s[0] == ' ' || is_space(s[0]))) {
		s++;
		(*len)--;
	}
	while (*len > 0 && (s[*len - 1] == ' ' || is_space(s[*len - 1])))
		(*len)--;
	return s;
}

/*
 * Values.  The parsers below read both literals and the text output of
 * PostgreSQL; they return 0 or -1 and never allocate.
 */

/* [spaces][+-]digits[spaces] as an int64. */
static int
parse_int(const char *s, size_t len, int64_t *out)
{
	uint64_t v = 0, lim;
	bool neg = false;
	size_t i = 0;

	s = trim(s, &len);
	if (len > 0 && (s[0] == '-' || s[0] == '+'))
		neg = s[i++] == '-';
	if (i == len)
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		if (v > (lim - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* NaN, [+-]Infinity, [+-]inf; sets d->rank. */
static bool
parse_dec_special(const char *s, size_t len, struct dec *d)
{
	int sign = 1;

	if (word_eq(s, len, "nan")) {
		d->rank = 3;
		return true;
	}
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		sign = s[0] == '-' ? -1 : 1;
		s++;
		len--;
	}
	if (!word_eq(s, len, "infinity") && !word_eq(s, len, "inf"))
		return false;
	d->rank = sign < 0 ? 0 : 2;
	return true;
}

/* The exponent after 'e': [+-]digits, at most 9 of them. */
static int
parse_exp(const char *s, size_t len, int64_t *exp)
{
	int64_t v = 0;
	bool neg = false;
	size_t i = 0;

	if (len > 0 && (s[0] == '+' || s[0] == '-'))
		neg = s[i++] == '-';
	if (i == len || len - i > 9)
		return -1;
	for (; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*exp = neg ? -v : v;
	return 0;
}

/* Decimal text: [+-]digits[.digits][e[+-]digits], or a special. */
static int
parse_dec(const char *s, size_t len, struct dec *d)
{
	size_t i = 0, ndig = 0, intdig = 0, first = 0;
	int64_t exp = 0;
	bool dot = false, nz = false;

	s = trim(s, &len);
	memset(d, 0, sizeof(*d));
	if (parse_dec_special(s, len, d))
		return 0;
	d->rank = 1;
	d->sign = 1;
	if (len > 0 && (s[0] == '+' || s[0] == '-'))
		d->sign = s[i++] == '-' ? -1 : 1;
	for (; i < len && (is_digit(s[i]) || (s[i] == '.' && !dot)); i++) {
		if (s[i] == '.') {
			dot = true;
			continue;
		}
		ndig++;
		intdig += !dot;
		if (s[i] != '0') {
			if (!nz)
				d->d = s + i;
			if (!nz)
				first = ndig - 1;
			nz = true;
			d->e = s + i + 1;
		}
	}
	if (ndig == 0 || (i < len && ((s[i] != 'e' && s[i] != 'E') ||
	    parse_exp(s + i + 1, len - i - 1, &exp) != 0)))
		return -1;
	if (!nz)
		d->sign = 0;
	d->exp = (int64_t)intdig - (int64_t)first + exp;
	return 0;
}

/* The next significant digit at *p before e, skipping '.'; -1 at the end. */
static int
dec_digit(const char **p, const char *e)
{
	while (*p < e && **p == '.')
		(*p)++;
	if (*p >= e)
		return -1;
	return *(*p)++ - '0';
}

static int
dec_cmp_mag(const struct dec *a, const struct dec *b)
{
	const char *pa = a->d, *pb = b->d;
	int x, y;

	if (a->exp != b->exp)
		return a->exp > b->exp ? 1 : -1;
	for (;;) {
		x = dec_digit(&pa, a->e);
		y = dec_digit(&pb, b->e);
		if (x != y)
			return x > y ? 1 : -1;
		if (x < 0)
			return 0;
	}
}

static int
dec_cmp(const struct dec *a, const struct dec *b)
{
	if (a->rank != b->rank)
		return a->rank > b->rank ? 1 : -1;
	if (a->rank != 1)
		return 0;
	if (a->sign != b->sign)
		return a->sign > b->sign ? 1 : -1;
	if (a->sign == 0)
		return 0;
	return a->sign * dec_cmp_mag(a, b);
}

/* PostgreSQL's boolean input words. */
static int
parse_bool(const char *s, size_t len, bool *b)
{
	static const char *const yes[] = { "t", "true", "y", "yes", "on", "1" };
	static const char *const no[] = { "f", "false", "n", "no", "off", "0" };
	size_t i;

	s = trim(s, &len);
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (word_eq(s, len, yes[i]) || word_eq(s, len, no[i])) {
			*b = word_eq(s, len, yes[i]);
			return 0;
		}
	}
	return -1;
}

static int
hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* [{]32 hex digits, '-' allowed after each group of four[}], lowercased. */
static int
parse_uuid(const char *s, size_t len, char out[32])
{
	size_t i, n = 0;

	s = trim(s, &len);
	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		s++;
		len -= 2;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '-' && n > 0 && n % 4 == 0 && n < 32 &&
		    i + 1 < len && s[i + 1] != '-')
			continue;
		if (hexval(s[i]) < 0 || n == 32)
			return -1;
		out[n++] = lower(s[i]);
	}
	return n == 32 ? 0 : -1;
}

/* Days from 2000-01-01 to the proleptic Gregorian y-m-d (astronomical y). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468 - 10957;
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

/* A time being parsed: s[len] with cursor i. */
struct tparse {
	const char	*s;
	size_t		 len, i;
};

/* Exactly n digits (n > 0), or with n == 0 one to seven. */
static int
tp_num(struct tparse *t, size_t n, int64_t *v)
{
	size_t start = t->i;

	*v = 0;
	while (t->i < t->len && is_digit(t->s[t->i]) &&
	    (n == 0 ? t->i - start < 7 : t->i - start < n))
		*v = *v * 10 + (t->s[t->i++] - '0');
	if (t->i == start || (n > 0 && t->i - start != n))
		return -1;
	return 0;
}

static bool
tp_eat(struct tparse *t, char c)
{
	if (t->i < t->len && t->s[t->i] == c) {
		t->i++;
		return true;
	}
	return false;
}

/* HH:MM[:SS[.ffffff]] into microseconds of the day. */
static int
tp_clock(struct tparse *t, int64_t *us)
{
	int64_t h, m, sec = 0, frac = 0, scale = 100000;

	if (tp_num(t, 2, &h) != 0 || !tp_eat(t, ':') || tp_num(t, 2, &m) != 0)
		return -1;
	if (tp_eat(t, ':') && tp_num(t, 2, &sec) != 0)
		return -1;
	if (tp_eat(t, '.')) {
		if (t->i >= t->len || !is_digit(t->s[t->i]))
			return -1;
		for (; t->i < t->len && is_digit(t->s[t->i]); t->i++) {
			if (scale == 0)
				return -1;
			frac += (t->s[t->i] - '0') * scale;
			scale /= 10;
		}
	}
	if (h > 24 || m > 59 || sec > 60 || (h == 24 && (m | sec | frac)))
		return -1;
	*us = ((h * 60 + m) * 60 + sec) * 1000000 + frac;
	return 0;
}

/* Z, UTC, +hh, +hhmm, +hh:mm, +hh:mm:ss (seconds east of UTC). */
static int
tp_zone(struct tparse *t, int64_t *off)
{
	int64_t h, m = 0, sec = 0;
	int sign;

	while (t->i < t->len && t->s[t->i] == ' ')
		t->i++;
	if (tp_eat(t, 'Z') || tp_eat(t, 'z')) {
		*off = 0;
		return 0;
	}
	if (t->len - t->i >= 3 && word_eq(t->s + t->i, 3, "utc")) {
		t->i += 3;
		*off = 0;
		return 0;
	}
	if (!tp_eat(t, '+') && !tp_eat(t, '-'))
		return -1;
	sign = t->s[t->i - 1] == '-' ? -1 : 1;
	if (tp_num(t, 2, &h) != 0)
		return -1;
	if (tp_eat(t, ':')) {
		if (tp_num(t, 2, &m) != 0 || (tp_eat(t, ':') &&
		    tp_num(t, 2, &sec) != 0))
			return -1;
	} else if (t->i < t->len && is_digit(t->s[t->i]) &&
	    tp_num(t, 2, &m) != 0)
		return -1;
	if (h > 15 || m > 59 || sec > 59)
		return -1;
	*off = sign * ((h * 60 + m) * 60 + sec);
	return 0;
}

/* " BC" at the end: the year is 1 - y. */
static int
tp_era(struct tparse *t, int64_t *year)
{
	size_t j = t->i;

	while (j < t->len && t->s[j] == ' ')
		j++;
	if (j == t->i || t->len - j != 2 || !word_eq(t->s + j, 2, "bc"))
		return 0;
	if (*year < 1)
		return -1;
	*year = 1 - *year;
	t->i = t->len;
	return 0;
}

struct tvalue {
	int64_t	 us;		/* microseconds since 2000-01-01 UTC */
	bool	 has_time, has_zone;
};

/* Combine date, time of day and zone offset, refusing overflow. */
static int
tp_instant(int64_t y, int64_t mo, int64_t d, int64_t tod, int64_t off,
    int64_t *us)
{
	int64_t days;

	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (int)mo))
		return -1;
	days = days_from_civil(y, (int)mo, (int)d);
	if (__builtin_mul_overflow(days, (int64_t)86400000000, us) ||
	    __builtin_add_overflow(*us, tod, us) ||
	    __builtin_sub_overflow(*us, off * 1000000, us))
		return -1;
	return 0;
}

/* Whether a zone follows: [spaces] + - Z or UTC. */
static bool
tp_at_zone(const struct tparse *t)
{
	size_t j = t->i;
	char c;

	while (j < t->len && t->s[j] == ' ')
		j++;
	if (j == t->len)
		return false;
	c = t->s[j];
	return c == '+' || c == '-' || c == 'Z' || c == 'z' ||
	    (t->len - j >= 3 && word_eq(t->s + j, 3, "utc"));
}

/* PostgreSQL ISO dates and timestamps, infinity, BC. */
static int
parse_time(const char *s, size_t len, struct tvalue *tv)
{
	struct tparse t = { 0 };
	int64_t y, mo, d, tod = 0, off = 0;

	s = trim(s, &len);
	memset(tv, 0, sizeof(*tv));
	if (word_eq(s, len, "infinity") || word_eq(s, len, "+infinity") ||
	    word_eq(s, len, "-infinity")) {
		tv->us = s[0] == '-' ? INT64_MIN : INT64_MAX;
		return 0;
	}
	t.s = s;
	t.len = len;
	if (tp_num(&t, 0, &y) != 0 || y == 0 || !tp_eat(&t, '-') ||
	    tp_num(&t, 2, &mo) != 0 || !tp_eat(&t, '-') ||
	    tp_num(&t, 2, &d) != 0)
		return -1;
	if (t.i + 1 < len && (s[t.i] == ' ' || s[t.i] == 'T') &&
	    is_digit(s[t.i + 1])) {
		t.i++;
		if (tp_clock(&t, &tod) != 0)
			return -1;
		tv->has_time = true;
	}
	if (tv->has_time && tp_at_zone(&t)) {
		if (tp_zone(&t, &off) != 0)
			return -1;
		tv->has_zone = true;
	}
	if (tp_era(&t, &y) != 0 || t.i != len)
		return -1;
	return tp_instant(y, mo, d, tod, off, &tv->us);
}

/*
 * A set of names (one or two strings) by index into an array the caller
 * owns, for duplicate checks in linear time: open addressing, grown at
 * half full; names(ctx, i) gives the strings of index i.
 */
struct nameset {
	size_t		*slot;		/* index + 1; 0 is empty */
	size_t		 cap, n;
	const void	*ctx;
	void		(*names)(const void *, size_t, const char **,
			    const char **);
};

static uint64_t
name_hash(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *a != '\0'; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0x100) * 1099511628211ULL;
	for (; b != NULL && *b != '\0'; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

static size_t *
ns_slot(const struct nameset *s, const char *a, const char *b)
{
	const char *x, *y;
	size_t i = (size_t)name_hash(a, b) & (s->cap - 1);

	for (; s->slot[i] != 0; i = (i + 1) & (s->cap - 1)) {
		s->names(s->ctx, s->slot[i] - 1, &x, &y);
		if (strcmp(x, a) == 0 && (b == NULL || strcmp(y, b) == 0))
			break;
	}
	return &s->slot[i];
}

/* The index stored for (a, b), or SIZE_MAX. */
static size_t
ns_find(const struct nameset *s, const char *a, const char *b)
{
	size_t *p;

	if (s->cap == 0)
		return SIZE_MAX;
	p = ns_slot(s, a, b);
	return *p != 0 ? *p - 1 : SIZE_MAX;
}

static int
ns_add(struct nameset *s, size_t idx)
{
	size_t *old = s->slot, oldcap = s->cap, i;
	const char *a, *b;

	if ((s->n + 1) * 2 > s->cap) {
		s->cap = oldcap != 0 ? oldcap * 2 : 16;
		if ((s->slot = calloc(s->cap, sizeof(*s->slot))) == NULL) {
			s->slot = old;
			s->cap = oldcap;
			return LS_ERR_NOMEM;
		}
		for (i = 0; i < oldcap; i++) {
			if (old[i] == 0)
				continue;
			s->names(s->ctx, old[i] - 1, &a, &b);
			*ns_slot(s, a, b) = old[i];
		}
		free(old);
	}
	s->names(s->ctx, idx, &a, &b);
	*ns_slot(s, a, b) = idx + 1;
	s->n++;
	return 0;
}

static void
ns_clear(struct nameset *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
}

/*
 * The lexer.  Tokens are found lazily, one of lookahead; their text is
 * extracted only when the parser keeps it.  Newlines end a statement
 * except while a parenthesis is open.
 */

enum tkind {
	T_EOF, T_EOL, T_WORD, T_QIDENT, T_STRING, T_NUMBER, T_OP, T_LPAREN,
	T_RPAREN, T_COMMA, T_DOT, T_BAD,
};

struct tok {
	enum tkind	 kind;
	enum op		 op;
	bool		 isint;
	size_t		 start, end;
	int		 line, col;
};

struct parser {
	const char		*s;
	size_t			 len, pos;
	int			 line;
	size_t			 lstart;
	int			 paren;		/* open parentheses */
	int			 depth;		/* nested ( and not */
	struct tok		 tok;
	bool			 have;
	struct filter		*f;
	struct filter_table	*cur;		/* the section being read */
	struct nameset		 sections;	/* of f->tables */
	struct nameset		 rules;		/* of cur->rules */
	char			**errmsg;
};

static int perr(struct parser *, int, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE:COL: message" as LS_ERR_INVALID. */
static int
perr(struct parser *p, int line, int col, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		return LS_ERR_NOMEM;
	ls_errf(p->errmsg, LS_ERR_INVALID, "%s:%d:%d: %s", p->f->filename,
	    line, col, msg);
	free(msg);
	return LS_ERR_INVALID;
}

static void
newline(struct parser *p)
{
	p->pos++;
	p->line++;
	p->lstart = p->pos;
}

/* Spaces and comments; newlines too inside parentheses. */
static void
skip_space(struct parser *p)
{
	char c;

	while (p->pos < p->len) {
		c = p->s[p->pos];
		if (is_space(c))
			p->pos++;
		else if (c == '#') {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (c == '\n' && p->paren > 0)
			newline(p);
		else
			break;
	}
}

/* 'string' or "identifier" with the quote doubled inside; one line. */
static int
lex_quoted(struct parser *p, struct tok *t)
{
	char q = p->s[p->pos++];

	while (p->pos < p->len && p->s[p->pos] != '\n') {
		if (p->s[p->pos++] != q)
			continue;
		if (p->pos < p->len && p->s[p->pos] == q) {
			p->pos++;
			continue;
		}
		t->end = p->pos;
		if (q == '"' && t->end - t->start == 2)
			return perr(p, t->line, t->col,
			    "zero-length quoted identifier");
		return 0;
	}
	return perr(p, t->line, t->col, "unterminated quoted %s",
	    q == '"' ? "identifier" : "string");
}

/* [+-]digits[.digits][e[+-]digits]; glued letters make it T_BAD. */
static void
lex_number(struct parser *p, struct tok *t)
{
	const char *s = p->s;
	size_t n = p->len, i = p->pos;

	t->kind = T_NUMBER;
	t->isint = true;
	if (s[i] == '+' || s[i] == '-')
		i++;
	while (i < n && is_digit(s[i]))
		i++;
	if (i < n && s[i] == '.') {
		t->isint = false;
		for (i++; i < n && is_digit(s[i]); i++)
			;
	}
	if (i + 1 < n && (s[i] == 'e' || s[i] == 'E') && (is_digit(s[i + 1]) ||
	    (i + 2 < n && (s[i + 1] == '+' || s[i + 1] == '-') &&
	    is_digit(s[i + 2])))) {
		t->isint = false;
		for (i += 2; i < n && is_digit(s[i]); i++)
			;
	}
	if (i < n && (is_ident_char((unsigned char)s[i]) || s[i] == '.')) {
		t->kind = T_BAD;
		while (i < n && (is_ident_char((unsigned char)s[i]) ||
		    s[i] == '.'))
			i++;
	}
	p->pos = t->end = i;
}

static bool
number_start(const struct parser *p)
{
	const char *s = p->s + p->pos;
	size_t n = p->len - p->pos;

	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		s++;
		n--;
	}
	return n > 0 && (is_digit(s[0]) || (n > 1 && s[0] == '.' &&
	    is_digit(s[1])));
}

/* = != <> < <= > >= */
static bool
lex_op(struct parser *p, struct tok *t)
{
	const char *s = p->s + p->pos;
	char c2 = p->pos + 1 < p->len ? s[1] : '\0';
	size_t n = 2;

	t->kind = T_OP;
	if (s[0] == '=') {
		t->op = OP_EQ;
		n = 1;
	} else if ((s[0] == '!' && c2 == '=') || (s[0] == '<' && c2 == '>'))
		t->op = OP_NE;
	else if (s[0] == '<' || s[0] == '>') {
		t->op = s[0] == '<' ? (c2 == '=' ? OP_LE : OP_LT) :
		    (c2 == '=' ? OP_GE : OP_GT);
		n = c2 == '=' ? 2 : 1;
	} else
		return false;
	p->pos += n;
	t->end = p->pos;
	return true;
}

static int
lex(struct parser *p, struct tok *t)
{
	const char *punct = "(),.";
	char c;

	skip_space(p);
	memset(t, 0, sizeof(*t));
	t->start = t->end = p->pos;
	t->line = p->line;
	t->col = (int)(p->pos - p->lstart) + 1;
	if (p->pos == p->len)
		return 0;			/* T_EOF */
	c = p->s[p->pos];
	if (c == '\n') {
		t->kind = T_EOL;
		t->end = p->pos + 1;
		newline(p);
	} else if (c == '\'' || c == '"') {
		t->kind = c == '\'' ? T_STRING : T_QIDENT;
		return lex_quoted(p, t);
	} else if (number_start(p))
		lex_number(p, t);
	else if (is_ident_start((unsigned char)c)) {
		t->kind = T_WORD;
		while (p->pos < p->len &&
		    is_ident_char((unsigned char)p->s[p->pos]))
			p->pos++;
		t->end = p->pos;
	} else if (c != '\0' && strchr(punct, c) != NULL) {
		t->kind = (enum tkind)(T_LPAREN + (strchr(punct, c) - punct));
		t->end = ++p->pos;
	} else if (!lex_op(p, t)) {
		t->kind = T_BAD;
		t->end = ++p->pos;
	}
	return 0;
}

static int
peek(struct parser *p, const struct tok **t)
{
	int r = 0;

	if (!p->have)
		r = lex(p, &p->tok);
	p->have = r == 0;
	*t = &p->tok;
	return r;
}

static void
next(struct parser *p)
{
	p->have = false;
}

/* A bare word equal to the lowercase keyword kw. */
static bool
is_kw(const struct parser *p, const struct tok *t, const char *kw)
{
	return t->kind == T_WORD && word_eq(p->s + t->start,
	    t->end - t->start, kw);
}

/* "expected WHAT near 'token'" at the token. */
static int
expected(struct parser *p, const struct tok *t, const char *what)
{
	char near[48];
	size_t i, n = t->end - t->start;

	if (t->kind == T_EOF)
		return perr(p, t->line, t->col, "expected %s near end of file",
		    what);
	if (t->kind == T_EOL)
		return perr(p, t->line, t->col, "expected %s near end of line",
		    what);
	if (n > 32)
		n = 32;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p->s[t->start + i];

		near[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	near[n] = '\0';
	return perr(p, t->line, t->col, "expected %s near '%s'", what, near);
}

/* expected() at the token that starts at the cursor. */
static int
expected_here(struct parser *p, const char *what)
{
	const struct tok *t;
	int r;

	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	return expected(p, t, what);
}

/* The contents of a quoted token, the doubled quote undone. */
static char *
unquote(const struct parser *p, const struct tok *t, size_t *lenp)
{
	const char *s = p->s + t->start;
	size_t n = t->end - t->start - 2, i, j = 0;
	char q = s[0], *out;

	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 1; i <= n; i++) {
		out[j++] = s[i];
		if (s[i] == q)
			i++;
	}
	out[j] = '\0';
	if (lenp != NULL)
		*lenp = j;
	return out;
}

/* An identifier token's name: folded when bare, as written when quoted. */
static char *
ident(const struct parser *p, const struct tok *t)
{
	char *s;
	size_t i;

	if (t->kind == T_QIDENT)
		return unquote(p, t, NULL);
	if ((s = xstrndup(p->s + t->start, t->end - t->start)) != NULL)
		for (i = 0; s[i] != '\0'; i++)
			s[i] = lower(s[i]);
	return s;
}

/*
 * Expressions: or of ands of nots of primaries.  and/or nodes are n-ary.
 */

static void
lit_clear(struct flit *l)
{
	free(l->text);
	l->text = NULL;
}

static void
node_free(struct fnode *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	for (i = 0; i < n->nlits; i++)
		lit_clear(&n->lits[i]);
	free(n->kids);
	free(n->lits);
	free(n->colname);
	free(n);
}

static struct fnode *
node_new(enum nkind kind, const struct tok *t)
{
	struct fnode *n = calloc(1, sizeof(*n));

	if (n != NULL) {
		n->kind = kind;
		n->line = t->line;
		n->col = t->col;
	}
	return n;
}

static bool
is_reserved(const struct parser *p, const struct tok *t)
{
	static const char *const words[] = { "and", "or", "not", "in", "is",
	    "null", "true", "false" };
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (is_kw(p, t, words[i]))
			return true;
	return false;
}

static bool
is_column(const struct parser *p, const struct tok *t)
{
	return t->kind == T_QIDENT || (t->kind == T_WORD && !is_reserved(p, t));
}

/* A literal: 'string', number, true, false or null. */
static int
parse_lit(struct parser *p, struct flit *l)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	memset(l, 0, sizeof(*l));
	l->line = t->line;
	l->col = t->col;
	if (t->kind == T_STRING) {
		l->kind = L_STR;
		l->text = unquote(p, t, &l->len);
	} else if (t->kind == T_NUMBER) {
		l->kind = L_NUM;
		l->isint = t->isint;
		l->len = t->end - t->start;
		l->text = xstrndup(p->s + t->start, l->len);
	} else if (is_kw(p, t, "true") || is_kw(p, t, "false")) {
		l->kind = L_BOOL;
		l->b = is_kw(p, t, "true");
		return next(p), 0;
	} else if (is_kw(p, t, "null")) {
		l->kind = L_NULL;
		return next(p), 0;
	} else if (is_column(p, t))
		return perr(p, t->line, t->col, "comparing two columns is not "
		    "supported; compare the column with a literal");
	else
		return expected(p, t, "a literal");
	next(p);
	return l->text == NULL ? LS_ERR_NOMEM : 0;
}

static int
null_compare(struct parser *p, const struct flit *l)
{
	return perr(p, l->line, l->col, "a comparison with null is never "
	    "true; use 'is null' or 'is not null'");
}

static enum op
flip(enum op op)
{
	switch (op) {
	case OP_LT:	return OP_GT;
	case OP_LE:	return OP_GE;
	case OP_GT:	return OP_LT;
	case OP_GE:	return OP_LE;
	default:	return op;
	}
}

/* COL op LIT, with the column already read into n. */
static int
parse_cmp(struct parser *p, struct fnode *n, const struct tok *op)
{
	int r;

	n->kind = N_CMP;
	n->op = op->op;
	n->oline = op->line;
	n->ocol = op->col;
	next(p);
	if ((n->lits = calloc(1, sizeof(*n->lits))) == NULL)
		return LS_ERR_NOMEM;
	n->nlits = 1;
	if ((r = parse_lit(p, n->lits)) != 0)
		return r;
	return n->lits->kind == L_NULL ? null_compare(p, n->lits) : 0;
}

/* One literal of an in list after the first, of the first's kind. */
static int
parse_in_item(struct parser *p, struct fnode *n, size_t *cap)
{
	struct flit *l;
	int r;

	if (grow(&n->lits, cap, n->nlits + 1, sizeof(*n->lits)) != 0)
		return LS_ERR_NOMEM;
	l = &n->lits[n->nlits];
	if ((r = parse_lit(p, l)) != 0)
		return r;
	n->nlits++;
	if (l->kind == L_NULL)
		return perr(p, l->line, l->col, "null in an 'in' list never "
		    "matches; use 'is null'");
	if (l->kind != n->lits[0].kind)
		return perr(p, l->line, l->col, "an 'in' list mixes literal "
		    "kinds (strings, numbers, booleans)");
	return 0;
}

/* COL [not] in ( LIT [, LIT]... ), "in" being the current token. */
static int
parse_in(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	size_t cap = 0;
	int r;

	n->kind = N_IN;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_LPAREN)
		return expected(p, t, "'('");
	p->paren++;
	next(p);
	do {
		if ((r = parse_in_item(p, n, &cap)) != 0 ||
		    (r = peek(p, &t)) != 0)
			return r;
		if (t->kind != T_COMMA && t->kind != T_RPAREN)
			return expected(p, t, "',' or ')'");
		if (t->kind == T_COMMA)
			next(p);
	} while (t->kind == T_COMMA);
	p->paren--;
	next(p);
	return 0;
}

/* COL is [not] null, "is" being the current token. */
static int
parse_is(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	int r;

	n->kind = N_ISNULL;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (is_kw(p, t, "not")) {
		n->neg = true;
		next(p);
		if ((r = peek(p, &t)) != 0)
			return r;
	}
	if (!is_kw(p, t, "null"))
		return expected(p, t, "'null'");
	next(p);
	return 0;
}

/* A primary that starts with a column name. */
static int
parse_colexpr(struct parser *p, struct fnode *n, const struct tok *t)
{
	int r;

	if ((n->colname = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind == T_OP)
		return parse_cmp(p, n, t);
	if (is_kw(p, t, "in"))
		return parse_in(p, n);
	if (is_kw(p, t, "is"))
		return parse_is(p, n);
	if (is_kw(p, t, "not")) {
		n->neg = true;
		next(p);
		if ((r = peek(p, &t)) != 0)
			return r;
		if (!is_kw(p, t, "in"))
			return expected(p, t, "'in'");
		return parse_in(p, n);
	}
	n->kind = N_BOOLCOL;
	return 0;
}

/* LIT op COL (the literal read into n->lits), turned into COL op' LIT. */
static int
parse_litfirst(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_OP)
		return expected(p, t, "a comparison operator");
	n->kind = N_CMP;
	n->op = flip(t->op);
	n->oline = t->line;
	n->ocol = t->col;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (!is_column(p, t))
		return expected(p, t, "a column name");
	n->line = t->line;
	n->col = t->col;
	if ((n->colname = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	return n->lits->kind == L_NULL ? null_compare(p, n->lits) : 0;
}

/* true, false, or a literal before an operator. */
static int
parse_litexpr(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	int r;

	if ((n->lits = calloc(1, sizeof(*n->lits))) == NULL)
		return LS_ERR_NOMEM;
	n->nlits = 1;
	if ((r = parse_lit(p, n->lits)) != 0 || (r = peek(p, &t)) != 0)
		return r;
	if (n->lits->kind == L_BOOL && t->kind != T_OP) {
		n->kind = N_CONST;
		n->value = n->lits->b;
		return 0;
	}
	return parse_litfirst(p, n);
}

static int parse_or(struct parser *, struct fnode **);

static int
enter(struct parser *p, const struct tok *t)
{
	if (++p->depth > FILTER_MAX_DEPTH)
		return perr(p, t->line, t->col, "expression nested deeper "
		    "than %d levels", FILTER_MAX_DEPTH);
	return 0;
}

/* ( expr ) */
static int
parse_paren(struct parser *p, const struct tok *t, struct fnode **out)
{
	int r;

	if ((r = enter(p, t)) != 0)
		return r;
	p->paren++;
	next(p);
	if ((r = parse_or(p, out)) != 0 || (r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_RPAREN)
		return expected(p, t, "')'");
	p->paren--;
	p->depth--;
	next(p);
	return 0;
}

static int
parse_primary(struct parser *p, struct fnode **out)
{
	const struct tok *t;
	struct fnode *n;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind == T_LPAREN)
		return parse_paren(p, t, out);
	if (!is_column(p, t) && t->kind != T_STRING && t->kind != T_NUMBER &&
	    !is_kw(p, t, "true") && !is_kw(p, t, "false") &&
	    !is_kw(p, t, "null"))
		return expected(p, t, "an expression");
	if ((n = node_new(N_CMP, t)) == NULL)
		return LS_ERR_NOMEM;
	*out = n;
	if (is_column(p, t))
		return parse_colexpr(p, n, t);
	return parse_litexpr(p, n);
}

static int
parse_not(struct parser *p, struct fnode **out)
{
	const struct tok *t;
	struct fnode *n;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (!is_kw(p, t, "not"))
		return parse_primary(p, out);
	if ((r = enter(p, t)) != 0)
		return r;
	if ((n = node_new(N_NOT, t)) == NULL ||
	    (n->kids = calloc(1, sizeof(*n->kids))) == NULL) {
		free(n);
		return LS_ERR_NOMEM;
	}
	*out = n;
	n->nkids = 1;
	next(p);
	if ((r = parse_not(p, &n->kids[0])) != 0)
		return r;
	p->depth--;
	return 0;
}

/* One level of and/or: sub (kw sub)*, n-ary when there are several. */
static int
parse_junction(struct parser *p, enum nkind kind, const char *kw,
    int (*sub)(struct parser *, struct fnode **), struct fnode **out)
{
	const struct tok *t;
	struct fnode *n = NULL, *first = NULL;
	size_t cap = 0;
	int r;

	if ((r = sub(p, &first)) != 0 || (r = peek(p, &t)) != 0 ||
	    !is_kw(p, t, kw)) {
		*out = first;
		return r;
	}
	if ((n = node_new(kind, t)) == NULL ||
	    grow(&n->kids, &cap, 2, sizeof(*n->kids)) != 0) {
		node_free(first);
		free(n);
		return LS_ERR_NOMEM;
	}
	*out = n;
	n->kids[n->nkids++] = first;
	while (is_kw(p, t, kw)) {
		next(p);
		if (grow(&n->kids, &cap, n->nkids + 1, sizeof(*n->kids)) != 0)
			return LS_ERR_NOMEM;
		n->kids[n->nkids] = NULL;
		r = sub(p, &n->kids[n->nkids]);
		n->nkids++;
		if (r != 0 || (r = peek(p, &t)) != 0)
			return r;
	}
	return 0;
}

static int
parse_and(struct parser *p, struct fnode **out)
{
	return parse_junction(p, N_AND, "and", parse_not, out);
}

static int
parse_or(struct parser *p, struct fnode **out)
{
	return parse_junction(p, N_OR, "or", parse_and, out);
}

/*
 * Statements.
 */

/* Append a pattern character; wildcards from quoted text are escaped. */
static int
pat_putc(struct sbuf *sb, char c, bool quoted)
{
	if (quoted && (c == '*' || c == '?' || c == '\\') &&
	    sb_putc(sb, '\\') != 0)
		return LS_ERR_NOMEM;
	return sb_putc(sb, quoted ? c : lower(c)) != 0 ? LS_ERR_NOMEM : 0;
}

/* A "quoted" piece of a pattern, appended literally. */
static int
pattern_quoted(struct parser *p, struct sbuf *sb)
{
	struct tok t = { 0 };
	char *s;
	size_t i, n;
	int r = 0;

	t.kind = T_QIDENT;
	t.start = p->pos;
	t.line = p->line;
	t.col = (int)(p->pos - p->lstart) + 1;
	if ((r = lex_quoted(p, &t)) != 0)
		return r;
	if ((s = unquote(p, &t, &n)) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < n && r == 0; i++)
		r = pat_putc(sb, s[i], true);
	free(s);
	return r;
}

/* One side of SCHEMA.TABLE: bare text with * and ?, and "quoted" text. */
static int
pattern_part(struct parser *p, char **out)
{
	struct sbuf sb = { 0 };
	unsigned char c;
	int r = 0;

	while (r == 0 && p->pos < p->len) {
		c = (unsigned char)p->s[p->pos];
		if (c == '"')
			r = pattern_quoted(p, &sb);
		else if (is_ident_char(c) || c == '*' || c == '?') {
			r = pat_putc(&sb, (char)c, false);
			p->pos++;
		} else
			break;
	}
	if (r == 0 && sb.len == 0)
		r = expected_here(p, "a SCHEMA.TABLE pattern");
	if (r != 0) {
		free(sb.b);
		return r;
	}
	*out = sb.b;
	return 0;
}

static int
st_pattern(struct parser *p, bool exclude)
{
	struct filter *f = p->f;
	struct fpattern *pat;
	size_t start;
	int r;

	skip_space(p);
	if (grow(&f->pats, &f->patcap, f->npats + 1, sizeof(*f->pats)) != 0)
		return LS_ERR_NOMEM;
	pat = &f->pats[f->npats++];
	memset(pat, 0, sizeof(*pat));
	pat->exclude = exclude;
	pat->line = p->line;
	pat->col = (int)(p->pos - p->lstart) + 1;
	start = p->pos;
	if ((r = pattern_part(p, &pat->schema)) != 0)
		return r;
	if (p->pos >= p->len || p->s[p->pos] != '.')
		return expected_here(p, "'.' between schema and table");
	p->pos++;
	if ((r = pattern_part(p, &pat->table)) != 0)
		return r;
	if ((pat->text = xstrndup(p->s + start, p->pos - start)) == NULL)
		return LS_ERR_NOMEM;
	f->any_include |= !exclude;
	return 0;
}

static int
st_include(struct parser *p, int line, int col)
{
	return st_pattern(p, false);
}

static int
st_exclude(struct parser *p, int line, int col)
{
	return st_pattern(p, true);
}

/* PATH relative to the filter file's directory. */
static char *
resolve(const char *filename, const char *path)
{
	const char *slash = strrchr(filename, '/');
	char *out;

	if (path[0] == '/' || slash == NULL)
		return strdup(path);
	if (asprintf(&out, "%.*s/%s", (int)(slash - filename), filename,
	    path) < 0)
		return NULL;
	return out;
}

static int
st_keyfile(struct parser *p, int line, int col)
{
	const struct tok *t;
	char *path;
	size_t start;
	int r;

	if (p->f->keyfile != NULL)
		return perr(p, line, col, "hash-key-file given twice (first "
		    "at line %d)", p->f->kline);
	skip_space(p);
	start = p->pos;
	if (p->pos < p->len && p->s[p->pos] == '\'') {
		if ((r = peek(p, &t)) != 0)
			return r;
		path = unquote(p, t, NULL);
		next(p);
	} else {
		while (p->pos < p->len && !is_space(p->s[p->pos]) &&
		    p->s[p->pos] != '#' && p->s[p->pos] != '\n')
			p->pos++;
		if (p->pos == start)
			return expected_here(p, "a path");
		path = xstrndup(p->s + start, p->pos - start);
	}
	if (path == NULL)
		return LS_ERR_NOMEM;
	if (path[0] == '\0') {
		free(path);
		return perr(p, line, col, "hash-key-file: empty path");
	}
	p->f->keyfile = resolve(p->f->filename, path);
	p->f->kline = line;
	free(path);
	return p->f->keyfile == NULL ? LS_ERR_NOMEM : 0;
}

/* SCHEMA.NAME, each a bare or "quoted" identifier. */
static int
parse_qualname(struct parser *p, struct filter_table *ft)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_WORD && t->kind != T_QIDENT)
		return expected(p, t, "SCHEMA.TABLE");
	ft->line = t->line;
	ft->col = t->col;
	if ((ft->schema = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_DOT)
		return expected(p, t, "'.' and a table name");
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_WORD && t->kind != T_QIDENT)
		return expected(p, t, "a table name (a table section takes "
		    "no wildcards)");
	if ((ft->name = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	return 0;
}

static struct filter_table *
find_section(const struct filter *f, const char *schema, const char *name)
{
	size_t i;

	for (i = 0; i < f->ntables; i++)
		if (f->tables[i]->schema != NULL && f->tables[i]->name != NULL &&
		    strcmp(f->tables[i]->schema, schema) == 0 &&
		    strcmp(f->tables[i]->name, name) == 0)
			return f->tables[i];
	return NULL;
}

static void
section_free(struct filter_table *ft)
{
	size_t i;

	if (ft == NULL)
		return;
	for (i = 0; i < ft->nrules; i++) {
		free(ft->rules[i].col);
		lit_clear(&ft->rules[i].lit);
		free(ft->rules[i].ctext);
	}
	free(ft->rules);
	node_free(ft->where);
	free(ft->schema);
	free(ft->name);
	free(ft);
}

static int
st_table(struct parser *p, int line, int col)
{
	struct filter *f = p->f;
	struct filter_table *ft;
	size_t i;
	int r;

	if ((ft = calloc(1, sizeof(*ft))) == NULL ||
	    grow(&f->tables, &f->tabcap, f->ntables + 1, sizeof(*f->tables)) != 0) {
		free(ft);
		return LS_ERR_NOMEM;
	}
	if ((r = parse_qualname(p, ft)) != 0) {
		section_free(ft);
		return r;
	}
	if ((i = ns_find(&p->sections, ft->schema, ft->name)) != SIZE_MAX) {
		r = perr(p, ft->line, ft->col, "table %s.%s already has a "
		    "section (line %d)", ft->schema, ft->name,
		    f->tables[i]->line);
		section_free(ft);
		return r;
	}
	ft->f = f;
	f->tables[f->ntables++] = ft;
	p->cur = ft;
	ns_clear(&p->rules);
	return ns_add(&p->sections, f->ntables - 1);
}

/* where, column and id-mode belong to a table section. */
static int
need_section(struct parser *p, int line, int col, const char *kw)
{
	if (p->cur != NULL)
		return 0;
	return perr(p, line, col, "'%s' must follow a 'table SCHEMA.NAME' "
	    "line", kw);
}

static int
st_where(struct parser *p, int line, int col)
{
	int r;

	if ((r = need_section(p, line, col, "where")) != 0)
		return r;
	if (p->cur->where != NULL)
		return perr(p, line, col, "table %s.%s already has a where "
		    "line (line %d); combine the conditions with 'and'",
		    p->cur->schema, p->cur->name, p->cur->wline);
	p->cur->wline = line;
	p->depth = 0;
	return parse_or(p, &p->cur->where);
}

/* drop | null | const LIT | hash */
static int
parse_rule_kind(struct parser *p, struct frule *ru)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	ru->kline = t->line;
	ru->kcol = t->col;
	if (is_kw(p, t, "drop"))
		ru->kind = R_DROP;
	else if (is_kw(p, t, "null"))
		ru->kind = R_NULL;
	else if (is_kw(p, t, "hash"))
		ru->kind = R_HASH;
	else if (is_kw(p, t, "const"))
		ru->kind = R_CONST;
	else
		return expected(p, t, "drop, null, const or hash");
	next(p);
	if (ru->kind != R_CONST)
		return 0;
	if ((r = peek(p, &t)) != 0)
		return r;
	if (is_column(p, t))
		return expected(p, t, "a literal");
	if ((r = parse_lit(p, &ru->lit)) != 0)
		return r;
	if (ru->lit.kind == L_NULL)
		return perr(p, ru->lit.line, ru->lit.col, "write 'column %s "
		    "null' to set the column to NULL", ru->col);
	return 0;
}

static const struct frule *
find_rule(const struct filter_table *ft, const char *col)
{
	size_t i;

	for (i = 0; i < ft->nrules; i++)
		if (strcmp(ft->rules[i].col, col) == 0)
			return &ft->rules[i];
	return NULL;
}

static int
st_column(struct parser *p, int line, int col)
{
	struct filter_table *ft = p->cur;
	struct frule *ru;
	size_t i;
	const struct tok *t;
	int r;

	if ((r = need_section(p, line, col, "column")) != 0 ||
	    (r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_WORD && t->kind != T_QIDENT)
		return expected(p, t, "a column name");
	if (grow(&ft->rules, &ft->rulecap, ft->nrules + 1, sizeof(*ft->rules)) != 0)
		return LS_ERR_NOMEM;
	ru = &ft->rules[ft->nrules];
	memset(ru, 0, sizeof(*ru));
	ru->line = t->line;
	ru->col_no = t->col;
	if ((ru->col = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	if ((i = ns_find(&p->rules, ru->col, NULL)) != SIZE_MAX) {
		r = perr(p, ru->line, ru->col_no, "column %s already has a "
		    "rule (line %d)", ru->col, ft->rules[i].line);
		free(ru->col);
		return r;
	}
	if ((r = ns_add(&p->rules, ft->nrules)) != 0) {
		free(ru->col);
		return r;
	}
	ft->nrules++;
	next(p);
	return parse_rule_kind(p, ru);
}

static int
st_idmode(struct parser *p, int line, int col)
{
	const struct tok *t;
	int r;

	if ((r = need_section(p, line, col, "id-mode")) != 0)
		return r;
	if (p->cur->idmode != FILTER_ID_DEFAULT)
		return perr(p, line, col, "table %s.%s already has an id-mode "
		    "line (line %d)", p->cur->schema, p->cur->name,
		    p->cur->idline);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (is_kw(p, t, "remap"))
		p->cur->idmode = FILTER_ID_REMAP;
	else if (is_kw(p, t, "preserve"))
		p->cur->idmode = FILTER_ID_PRESERVE;
	else
		return expected(p, t, "remap or preserve");
	p->cur->idline = line;
	next(p);
	return 0;
}

static int
parse_statement(struct parser *p)
{
	static const struct {
		const char	*kw;
		int		(*fn)(struct parser *, int, int);
	} st[] = {
		{ "include", st_include }, { "exclude", st_exclude },
		{ "hash-key-file", st_keyfile }, { "table", st_table },
		{ "where", st_where }, { "column", st_column },
		{ "id-mode", st_idmode },
	};
	size_t i, start = p->pos, n;
	int line = p->line, col = (int)(p->pos - p->lstart) + 1;

	while (p->pos < p->len && (is_ident_char((unsigned char)p->s[p->pos])
	    || p->s[p->pos] == '-'))
		p->pos++;
	n = p->pos - start;
	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (word_eq(p->s + start, n, st[i].kw))
			return st[i].fn(p, line, col);
	if (n == 0)
		return expected_here(p, "a statement");
	return perr(p, line, col, "expected include, exclude, hash-key-file, "
	    "table, where, column or id-mode near '%.*s'",
	    (int)(n > 32 ? 32 : n), p->s + start);
}

static int
expect_eol(struct parser *p)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_EOL && t->kind != T_EOF)
		return expected(p, t, "end of line");
	next(p);
	return 0;
}

/* A NUL byte anywhere is refused where it is. */
static int
check_nul(struct parser *p)
{
	const char *z = memchr(p->s, '\0', p->len);
	const char *ls;
	int line = 1;

	if (z == NULL)
		return 0;
	ls = p->s;
	for (const char *q = p->s; q < z; q++)
		if (*q == '\n') {
			line++;
			ls = q + 1;
		}
	return perr(p, line, (int)(z - ls) + 1, "NUL byte in the filter file");
}

/* Every hash needs the key file. */
static int
check_hash_key(struct parser *p)
{
	const struct filter *f = p->f;
	const struct frule *ru;
	size_t i, j;

	if (f->keyfile != NULL)
		return 0;
	for (i = 0; i < f->ntables; i++)
		for (j = 0; j < f->tables[i]->nrules; j++) {
			ru = &f->tables[i]->rules[j];
			if (ru->kind == R_HASH)
				return perr(p, ru->kline, ru->kcol, "column %s "
				    "is hashed but the file has no "
				    "hash-key-file line", ru->col);
		}
	return 0;
}

static int
parse_file(struct parser *p)
{
	int r;

	if ((r = check_nul(p)) != 0)
		return r;
	for (;;) {
		skip_space(p);
		if (p->pos == p->len)
			break;
		if (p->s[p->pos] == '\n') {
			newline(p);
			continue;
		}
		if ((r = parse_statement(p)) != 0 || (r = expect_eol(p)) != 0)
			return r;
	}
	return check_hash_key(p);
}

static void
section_names(const void *ctx, size_t i, const char **a, const char **b)
{
	const struct filter *f = ctx;

	*a = f->tables[i]->schema;
	*b = f->tables[i]->name;
}

static void
rule_names(const void *ctx, size_t i, const char **a, const char **b)
{
	const struct parser *p = ctx;

	*a = p->cur->rules[i].col;
	*b = NULL;
}

/* Serials of filters, never reused, so a scratch can tell its own. */
static atomic_uint_fast64_t filter_serials = 1;

int
filter_parse(const char *text, size_t len, const char *filename,
    struct filter **out, char **errmsg)
{
	struct parser p = { 0 };
	struct filter *f;
	int r;

	*out = NULL;
	if (filename == NULL)
		filename = "<filter>";
	if (len > FILTER_MAX_FILE)
		return ls_errf(errmsg, LS_ERR_TOOBIG, "%s: %zu bytes; a filter "
		    "file holds at most %d", filename, len, FILTER_MAX_FILE);
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->filename = strdup(filename)) == NULL) {
		free(f);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	f->serial = atomic_fetch_add(&filter_serials, 1);
	p.s = text;
	p.len = len;
	p.line = 1;
	p.f = f;
	p.errmsg = errmsg;
	p.sections.ctx = f;
	p.sections.names = section_names;
	p.rules.ctx = &p;
	p.rules.names = rule_names;
	r = parse_file(&p);
	ns_clear(&p.sections);
	ns_clear(&p.rules);
	if (r != 0) {
		if (r == LS_ERR_NOMEM)
			ls_errf(errmsg, r, "%s: out of memory", filename);
		filter_free(f);
		return r;
	}
	*out = f;
	return 0;
}

int
filter_load(const char *path, struct filter **out, char **errmsg)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, r;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ls_errf(errmsg, errno == ENOENT ? LS_ERR_NOTFOUND :
		    LS_ERR_IO, "filter file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "filter file %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (st.st_size > FILTER_MAX_FILE) {
		r = ls_errf(errmsg, LS_ERR_TOOBIG, "filter file %s: %lld "
		    "bytes; at most %d", path, (long long)st.st_size,
		    FILTER_MAX_FILE);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		goto out;
	}
	n = ls_pread_all(fd, buf, (size_t)st.st_size + 1, 0);
	if (n < 0 || n > st.st_size) {
		r = ls_errf(errmsg, n < 0 ? LS_ERR_IO : LS_ERR_INVALID,
		    "filter file %s: %s", path, n < 0 ? strerror(errno) :
		    "changed while being read");
		goto out;
	}
	r = filter_parse(buf, (size_t)n, path, out, errmsg);
out:
	free(buf);
	close(fd);
	return r;
}

static void
warnings_clear(struct filter *f)
{
	size_t i;

	for (i = 0; i < f->nwarnings; i++)
		free(f->warnings[i]);
	free(f->warnings);
	f->warnings = NULL;
	f->nwarnings = 0;
}

void
filter_free(struct filter *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->npats; i++) {
		free(f->pats[i].schema);
		free(f->pats[i].table);
		free(f->pats[i].text);
	}
	for (i = 0; i < f->ntables; i++)
		section_free(f->tables[i]);
	warnings_clear(f);
	free(f->pats);
	free(f->tables);
	free(f->keyfile);
	free(f->filename);
	free(f);
}

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
static const char *
type_name(uint32_t oid, char buf[24])
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
	    type_name(oid, tbuf), what);
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
	if (parse_int(l->text, l->len, &l->i) != 0) {
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
	if (l->kind == L_BOOL || parse_dec(l->text, l->len, &l->dec) != 0) {
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
	if (l->kind == L_STR && parse_bool(l->text, l->len, &l->b) == 0)
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
	if (tc == TC_UUID && parse_uuid(l->text, l->len, l->uuid) != 0) {
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

	if (l->kind != L_STR || parse_time(l->text, l->len, &tv) != 0) {
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
		s = trim(s, &len);
		return xstrndup(s, len);
	case TC_TSTZ:
		if (parse_time(s, len, &tv) == 0 && !tv.has_zone &&
		    tv.us != INT64_MAX && tv.us != INT64_MIN)
			return format_utc(tv.us);
		return xstrndup(s, len);
	default:
		return xstrndup(s, len);
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
		    "it with a value", n->colname, type_name(n->type_oid, tbuf));
	if (n->kind == N_CMP && n->op != OP_EQ && n->op != OP_NE &&
	    (n->tclass == TC_BOOL || n->tclass == TC_OTHER))
		verr(v, n->oline, n->ocol, "column %s is %s: only =, != and "
		    "in apply to it", n->colname, type_name(n->type_oid, tbuf));
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
		    ru->col, type_name(oid, tbuf));
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
	warnings_clear(f);
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
	return f != NULL ? find_section(f, schema, name) : NULL;
}

enum filter_id_mode
filter_id_mode(const struct filter_table *ft)
{
	return ft != NULL ? ft->idmode : FILTER_ID_DEFAULT;
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
		    type_name(x->rel->cols[i].type_oid, t1),
		    type_name(n->type_oid, t2));
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
		if (parse_int(s, len, &i) != 0)
			return -1;
		*c = int_cmp(i, l->i);
		return 0;
	case TC_NUM:
		if (parse_dec(s, len, &d) != 0)
			return -1;
		*c = dec_cmp(&d, &l->dec);
		return 0;
	case TC_BOOL:
		if (parse_bool(s, len, &b) != 0)
			return -1;
		*c = b != l->b;
		return 0;
	case TC_UUID:
		if (parse_uuid(s, len, u) != 0)
			return -1;
		*c = bytes_cmp(u, 32, l->uuid, 32);
		return 0;
	case TC_DATE: case TC_TS: case TC_TSTZ:
		if (parse_time(s, len, &tv) != 0 || (tc == TC_DATE &&
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
	    x->rel->schema, x->rel->name, len, type_name(n->type_oid, tbuf));
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
		if (parse_bool(v->data, v->len, &b) != 0)
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
static int
eval_where(const struct filter_table *ft, const struct ls_relation *rel,
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
	if ((r = eval_where(ft, rel, t, NULL, &tv, &unknown, errmsg)) != 0)
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
	if ((r = eval_where(ft, rel, &c->old, NULL, &tv, NULL, errmsg)) != 0)
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
	if ((r = eval_where(ft, rel, &c->new, fb, &after, &unknown,
	    errmsg)) != 0)
		return r;
	if (after == TV_UNKNOWN)
		return unsent(rel, unknown, errmsg);
	if (c->old_kind == LS_OLD_FULL || key_only(ft->where, rel)) {
		/* No old tuple: the key did not change. */
		old = c->old_kind != LS_OLD_NONE ? &c->old : &c->new;
		if ((r = eval_where(ft, rel, old, NULL, &before, NULL,
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
		e->act[i] = find_rule(ft, e->in.cols[i].name);
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
	if (grow(&s->vals, &s->valcap, n + 1, sizeof(*s->vals)) != 0 ||
	    grow(&s->hbuf, &s->hcap, nhash * 65 + 1, 1) != 0)
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
		ru = ft != NULL ? find_rule(ft, tbl->cols[i].name) : NULL;
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
		for (n = 0; n < 2 && *i + 1 < len && hexval(f[*i + 1]) >= 0;
		    n++)
			v = v * 16 + (unsigned)hexval(f[++*i]);
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
		    hexval(field[i + 1]) >= 0))
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
	if (grow(&s->fpos, &s->fcap, n + 1, sizeof(*s->fpos)) != 0 ||
	    grow(&s->flen, &s->fcap2, n + 1, sizeof(*s->flen)) != 0)
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

	if (grow(&s->dbuf, &s->dcap, len + tbl->ncols + 1, 1) != 0 ||
	    grow(&s->vals, &s->valcap, tbl->ncols + 1, sizeof(*s->vals)) != 0 ||
	    grow(&s->vcols, &s->vcap, tbl->ncols + 1, sizeof(*s->vcols)) != 0)
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
	if (grow(&s->obuf, &s->ocap, copy_out_size(s, e, tbl->ncols) + 2,
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
	if (ft->where != NULL && (r = eval_where(ft, &s->vrel, &t, NULL, &tv,
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
