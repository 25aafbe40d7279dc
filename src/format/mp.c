/*
 * mp.c: bounds-checked msgpack reading (see mp.h).  Each reader parses the
 * next object's header with need(), never reading past cur->end.
 */
#include <string.h>

#include "common/error.h"
#include "format/mp.h"

static size_t
left(const struct mp_cur *c)
{
	return (size_t)(c->end - c->p);
}

static uint64_t
be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Read an n-byte big-endian field at offset off; 0 if it does not fit. */
static int
field(const struct mp_cur *c, size_t off, int n, uint64_t *v)
{
	if (left(c) < off + (size_t)n)
		return LS_ERR_CORRUPT;
	*v = be(c->p + off, n);
	return 0;
}

enum mp_type
mp_peek(const struct mp_cur *c)
{
	uint8_t b;

	if (left(c) == 0)
		return MP_NONE;
	b = c->p[0];
	if (b <= 0x7f || b == 0xcc || b == 0xcd || b == 0xce || b == 0xcf)
		return MP_UINT;
	if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3))
		return MP_INT;
	if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
		return MP_MAP;
	if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
		return MP_ARRAY;
	if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
		return MP_STR;
	if (b >= 0xc4 && b <= 0xc6)
		return MP_BIN;
	if (b == 0xc0)
		return MP_NIL;
	if (b == 0xc2 || b == 0xc3)
		return MP_BOOL;
	if (b == 0xca || b == 0xcb)
		return MP_FLOAT;
	if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8))
		return MP_EXT;
	return MP_NONE;		/* 0xc1: never used */
}

/* Container header: count in *n, header size in *hl. */
static int
container(const struct mp_cur *c, enum mp_type want, uint32_t *n, size_t *hl)
{
	uint8_t b;
	uint64_t v;
	int wide;

	if (mp_peek(c) != want)
		return LS_ERR_CORRUPT;
	b = c->p[0];
	if ((b & 0xe0) == 0x80) {	/* fixmap 0x80, fixarray 0x90 */
		*n = b & 0x0f;
		*hl = 1;
		return 0;
	}
	wide = (b == 0xdd || b == 0xdf) ? 4 : 2;
	if (field(c, 1, wide, &v) != 0)
		return LS_ERR_CORRUPT;
	*n = (uint32_t)v;
	*hl = 1 + (size_t)wide;
	return 0;
}

static int
counted(struct mp_cur *c, enum mp_type want, uint32_t *n)
{
	size_t hl;
	uint32_t cnt;
	uint64_t min;

	if (container(c, want, &cnt, &hl) != 0)
		return LS_ERR_CORRUPT;
	/* Each element takes at least one byte (two for a map entry). */
	min = want == MP_MAP ? 2 * (uint64_t)cnt : cnt;
	if (min > left(c) - hl)
		return LS_ERR_CORRUPT;
	c->p += hl;
	*n = cnt;
	return 0;
}

int
mp_array(struct mp_cur *c, uint32_t *n)
{
	return counted(c, MP_ARRAY, n);
}

int
mp_map(struct mp_cur *c, uint32_t *n)
{
	return counted(c, MP_MAP, n);
}

int
mp_nil(struct mp_cur *c)
{
	if (mp_peek(c) != MP_NIL)
		return LS_ERR_CORRUPT;
	c->p++;
	return 0;
}

int
mp_bool(struct mp_cur *c, bool *v)
{
	if (mp_peek(c) != MP_BOOL)
		return LS_ERR_CORRUPT;
	*v = c->p[0] == 0xc3;
	c->p++;
	return 0;
}

/* Integer of either signedness: magnitude in *u, sign in *neg. */
static int
integer(struct mp_cur *c, uint64_t *u, int *neg, size_t *len)
{
	uint8_t b;
	uint64_t v;
	int n;

	if (left(c) == 0)
		return LS_ERR_CORRUPT;
	b = c->p[0];
	*neg = 0;
	if (b <= 0x7f || b >= 0xe0) {
		*neg = b >= 0xe0;
		*u = *neg ? (uint64_t)(-(int64_t)(int8_t)b) : b;
		*len = 1;
		return 0;
	}
	if (b >= 0xcc && b <= 0xcf)
		n = 1 << (b - 0xcc);
	else if (b >= 0xd0 && b <= 0xd3)
		n = 1 << (b - 0xd0);
	else
		return LS_ERR_CORRUPT;
	if (field(c, 1, n, &v) != 0)
		return LS_ERR_CORRUPT;
	*len = 1 + (size_t)n;
	if (b >= 0xd0) {
		int64_t s = n == 1 ? (int8_t)v : n == 2 ? (int16_t)v :
		    n == 4 ? (int32_t)v : (int64_t)v;
		if (s < 0) {
			*neg = 1;
			*u = (uint64_t)0 - (uint64_t)s;
			return 0;
		}
		v = (uint64_t)s;
	}
	*u = v;
	return 0;
}

int
mp_uint(struct mp_cur *c, uint64_t *out)
{
	uint64_t u;
	int neg;
	size_t len;

	if (integer(c, &u, &neg, &len) != 0 || neg)
		return LS_ERR_CORRUPT;
	*out = u;
	c->p += len;
	return 0;
}

int
mp_int(struct mp_cur *c, int64_t *out)
{
	uint64_t u;
	int neg;
	size_t len;

	if (integer(c, &u, &neg, &len) != 0)
		return LS_ERR_CORRUPT;
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		return LS_ERR_CORRUPT;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	c->p += len;
	return 0;
}

/* str/bin: the length field and the payload must fit. */
static int
bytes(struct mp_cur *c, enum mp_type want, const uint8_t **b, uint32_t *len)
{
	uint8_t t;
	uint64_t v;
	int n;

	if (mp_peek(c) != want)
		return LS_ERR_CORRUPT;
	t = c->p[0];
	if ((t & 0xe0) == 0xa0) {
		v = t & 0x1f;
		n = 0;
	} else {
		n = want == MP_STR ? 1 << (t - 0xd9) : 1 << (t - 0xc4);
		if (field(c, 1, n, &v) != 0)
			return LS_ERR_CORRUPT;
	}
	if (v > left(c) - 1 - (size_t)n)
		return LS_ERR_CORRUPT;
	*b = c->p + 1 + n;
	*len = (uint32_t)v;
	c->p += 1 + (size_t)n + v;
	return 0;
}

int
mp_str(struct mp_cur *c, const char **s, uint32_t *len)
{
	return bytes(c, MP_STR, (const uint8_t **)s, len);
}

int
mp_bin(struct mp_cur *c, const uint8_t **b, uint32_t *len)
{
	return bytes(c, MP_BIN, b, len);
}

int
mp_ext(struct mp_cur *c, int8_t *type, const uint8_t **b, uint32_t *len)
{
	uint8_t t;
	uint64_t v;
	size_t hl;

	if (mp_peek(c) != MP_EXT)
		return LS_ERR_CORRUPT;
	t = c->p[0];
	if (t >= 0xd4) {		/* fixext 1, 2, 4, 8, 16 */
		v = (uint64_t)1 << (t - 0xd4);
		hl = 1;
	} else {
		hl = 1 + ((size_t)1 << (t - 0xc7));
		if (field(c, 1, (int)hl - 1, &v) != 0)
			return LS_ERR_CORRUPT;
	}
	if (left(c) < hl + 1 || v > left(c) - hl - 1)
		return LS_ERR_CORRUPT;
	*type = (int8_t)c->p[hl];
	*b = c->p + hl + 1;
	*len = (uint32_t)v;
	c->p += hl + 1 + v;
	return 0;
}

int
mp_skip(struct mp_cur *c, int depth)
{
	struct mp_cur save = *c;
	uint32_t n, i;
	const uint8_t *b;
	uint64_t u;
	int64_t s;
	int8_t et;
	bool bo;
	int r = LS_ERR_CORRUPT, mult;

	if (depth <= 0)
		return LS_ERR_CORRUPT;
	switch (mp_peek(c)) {
	case MP_NIL:	r = mp_nil(c); break;
	case MP_BOOL:	r = mp_bool(c, &bo); break;
	case MP_UINT:	r = mp_uint(c, &u); break;
	case MP_INT:	r = mp_int(c, &s); break;
	case MP_STR:	r = mp_str(c, (const char **)&b, &n); break;
	case MP_BIN:	r = mp_bin(c, &b, &n); break;
	case MP_EXT:	r = mp_ext(c, &et, &b, &n); break;
	case MP_FLOAT:
		n = c->p[0] == 0xca ? 4 : 8;
		if (left(c) >= 1 + n) {
			c->p += 1 + n;
			r = 0;
		}
		break;
	case MP_ARRAY:
	case MP_MAP:
		mult = mp_peek(c) == MP_MAP ? 2 : 1;
		r = mult == 2 ? mp_map(c, &n) : mp_array(c, &n);
		for (i = 0; r == 0 && i < n * (uint64_t)mult; i++)
			r = mp_skip(c, depth - 1);
		break;
	case MP_NONE:
		break;
	}
	if (r != 0)
		*c = save;
	return r;
}
