/*
 * filter_value.c: character helpers and the parsers of values (literals and
 * PostgreSQL's text output): integers, decimals, booleans, uuids, instants.
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

/* Grow *arr (of elem-byte items) to hold at least n; 0 or -1. */
int
filter_grow(void *arr, size_t *cap, size_t n, size_t elem)
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

int
filter_sb_putc(struct sbuf *sb, char c)
{
	if (filter_grow(&sb->b, &sb->cap, sb->len + 2, 1) != 0)
		return -1;
	sb->b[sb->len++] = c;
	sb->b[sb->len] = '\0';
	return 0;
}

char *
filter_xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char
filter_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool
filter_is_ident_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	    c >= 0x80;
}

bool
filter_is_ident_char(unsigned char c)
{
	return filter_is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

bool
filter_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool
filter_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Case-insensitive comparison of s[len] with the lowercase word w. */
bool
filter_word_eq(const char *s, size_t len, const char *w)
{
	size_t i;

	if (strlen(w) != len)
		return false;
	for (i = 0; i < len; i++)
		if (filter_lower(s[i]) != w[i])
			return false;
	return true;
}

/* Trim ASCII spaces from both ends of s[*len]. */
const char *
filter_trim(const char *s, size_t *len)
{
	while (*len > 0 && (s[0] == ' ' || filter_is_space(s[0]))) {
		s++;
		(*len)--;
	}
	while (*len > 0 && (s[*len - 1] == ' ' || filter_is_space(s[*len - 1])))
		(*len)--;
	return s;
}

/*
 * Values.  The parsers below read both literals and the text output of
 * PostgreSQL; they return 0 or -1 and never allocate.
 */

/* [spaces][+-]digits[spaces] as an int64. */
int
filter_parse_int(const char *s, size_t len, int64_t *out)
{
	uint64_t v = 0, lim;
	bool neg = false;
	size_t i = 0;

	s = filter_trim(s, &len);
	if (len > 0 && (s[0] == '-' || s[0] == '+'))
		neg = s[i++] == '-';
	if (i == len)
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (!filter_is_digit(s[i]))
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

	if (filter_word_eq(s, len, "nan")) {
		d->rank = 3;
		return true;
	}
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		sign = s[0] == '-' ? -1 : 1;
		s++;
		len--;
	}
	if (!filter_word_eq(s, len, "infinity") && !filter_word_eq(s, len, "inf"))
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
		if (!filter_is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*exp = neg ? -v : v;
	return 0;
}

/* Decimal text: [+-]digits[.digits][e[+-]digits], or a special. */
int
filter_parse_dec(const char *s, size_t len, struct dec *d)
{
	size_t i = 0, ndig = 0, intdig = 0, first = 0;
	int64_t exp = 0;
	bool dot = false, nz = false;

	s = filter_trim(s, &len);
	memset(d, 0, sizeof(*d));
	if (parse_dec_special(s, len, d))
		return 0;
	d->rank = 1;
	d->sign = 1;
	if (len > 0 && (s[0] == '+' || s[0] == '-'))
		d->sign = s[i++] == '-' ? -1 : 1;
	for (; i < len && (filter_is_digit(s[i]) || (s[i] == '.' && !dot)); i++) {
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

int
filter_dec_cmp(const struct dec *a, const struct dec *b)
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
int
filter_parse_bool(const char *s, size_t len, bool *b)
{
	static const char *const yes[] = { "t", "true", "y", "yes", "on", "1" };
	static const char *const no[] = { "f", "false", "n", "no", "off", "0" };
	size_t i;

	s = filter_trim(s, &len);
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (filter_word_eq(s, len, yes[i]) || filter_word_eq(s, len, no[i])) {
			*b = filter_word_eq(s, len, yes[i]);
			return 0;
		}
	}
	return -1;
}

int
filter_hexval(char c)
{
	if (filter_is_digit(c))
		return c - '0';
	c = filter_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* [{]32 hex digits, '-' allowed after each group of four[}], lowercased. */
int
filter_parse_uuid(const char *s, size_t len, char out[32])
{
	size_t i, n = 0;

	s = filter_trim(s, &len);
	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		s++;
		len -= 2;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '-' && n > 0 && n % 4 == 0 && n < 32 &&
		    i + 1 < len && s[i + 1] != '-')
			continue;
		if (filter_hexval(s[i]) < 0 || n == 32)
			return -1;
		out[n++] = filter_lower(s[i]);
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
	while (t->i < t->len && filter_is_digit(t->s[t->i]) &&
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
		if (t->i >= t->len || !filter_is_digit(t->s[t->i]))
			return -1;
		for (; t->i < t->len && filter_is_digit(t->s[t->i]); t->i++) {
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
	if (t->len - t->i >= 3 && filter_word_eq(t->s + t->i, 3, "utc")) {
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
	} else if (t->i < t->len && filter_is_digit(t->s[t->i]) &&
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
	if (j == t->i || t->len - j != 2 || !filter_word_eq(t->s + j, 2, "bc"))
		return 0;
	if (*year < 1)
		return -1;
	*year = 1 - *year;
	t->i = t->len;
	return 0;
}

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
	    (t->len - j >= 3 && filter_word_eq(t->s + j, 3, "utc"));
}

/* PostgreSQL ISO dates and timestamps, infinity, BC. */
int
filter_parse_time(const char *s, size_t len, struct tvalue *tv)
{
	struct tparse t = { 0 };
	int64_t y, mo, d, tod = 0, off = 0;

	s = filter_trim(s, &len);
	memset(tv, 0, sizeof(*tv));
	if (filter_word_eq(s, len, "infinity") || filter_word_eq(s, len, "+infinity") ||
	    filter_word_eq(s, len, "-infinity")) {
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
	    filter_is_digit(s[t.i + 1])) {
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
