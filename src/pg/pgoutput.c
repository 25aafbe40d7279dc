/*
 * pgoutput.c: bounds-checked decoder for pgoutput logical replication
 * messages (protocol 1 and 2, PostgreSQL 15) and the replication envelope.
 *
 * Every read goes through struct rd, which checks the bytes left first.
 * Counts and lengths are checked against the bytes left before anything is
 * allocated.  Strings and values are copied, NUL-terminated, into one arena
 * sized to the message: each copy of n bytes takes n + 1 arena bytes and
 * consumes at least n + 1 input bytes (a NUL, or a kind byte and a length),
 * so an arena of len + 1 bytes always suffices and never moves mid-message.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "pg/pgoutput.h"

/* Do not keep a large arena around after one huge message. */
#define ARENA_KEEP	(64 * 1024)

struct pgo_decoder {
	char		 *arena;
	size_t		  arena_cap;
	size_t		  arena_used;
	struct ls_column *cols;
	size_t		  cols_cap;
	struct ls_value	 *vals[2];	/* old and new tuple */
	size_t		  vals_cap[2];
	uint32_t	 *relids;
	size_t		  relids_cap;
};

/* A bounds-checked reader over one message. */
struct rd {
	struct pgo_decoder *d;
	const uint8_t	   *buf;
	size_t		    len;
	size_t		    off;
	const char	   *what;	/* message name, for errors */
	char		  **errmsg;
};

#define OLD	0
#define NEW	1

static int dec_begin(struct rd *, struct pgo_msg *);
static int dec_commit(struct rd *, struct pgo_msg *);
static int dec_origin(struct rd *, struct pgo_msg *);
static int dec_relation(struct rd *, struct pgo_msg *);
static int dec_type(struct rd *, struct pgo_msg *);
static int dec_insert(struct rd *, struct pgo_msg *);
static int dec_update(struct rd *, struct pgo_msg *);
static int dec_delete(struct rd *, struct pgo_msg *);
static int dec_truncate(struct rd *, struct pgo_msg *);
static int dec_message(struct rd *, struct pgo_msg *);
static int dec_stream_start(struct rd *, struct pgo_msg *);
static int dec_stream_stop(struct rd *, struct pgo_msg *);
static int dec_stream_commit(struct rd *, struct pgo_msg *);
static int dec_stream_abort(struct rd *, struct pgo_msg *);

static const struct msgdef {
	char		 type;
	const char	*name;
	bool		 stream_xid;	/* carries an xid inside a stream */
	int		(*decode)(struct rd *, struct pgo_msg *);
} msgdefs[] = {
	{ PGO_BEGIN,		"Begin",	false,	dec_begin },
	{ PGO_COMMIT,		"Commit",	false,	dec_commit },
	{ PGO_ORIGIN,		"Origin",	false,	dec_origin },
	{ PGO_RELATION,		"Relation",	true,	dec_relation },
	{ PGO_TYPE,		"Type",		true,	dec_type },
	{ PGO_INSERT,		"Insert",	true,	dec_insert },
	{ PGO_UPDATE,		"Update",	true,	dec_update },
	{ PGO_DELETE,		"Delete",	true,	dec_delete },
	{ PGO_TRUNCATE,		"Truncate",	true,	dec_truncate },
	{ PGO_MESSAGE,		"Message",	true,	dec_message },
	{ PGO_STREAM_START,	"Stream Start",	false,	dec_stream_start },
	{ PGO_STREAM_STOP,	"Stream Stop",	false,	dec_stream_stop },
	{ PGO_STREAM_COMMIT,	"Stream Commit", false,	dec_stream_commit },
	{ PGO_STREAM_ABORT,	"Stream Abort",	false,	dec_stream_abort },
};

/* Grow *p to hold n elements of size sz; contents are not kept. */
static int
scratch_reserve(void **p, size_t *cap, size_t n, size_t sz, char **errmsg)
{
	void *np;

	if (n <= *cap)
		return 0;
	if (n > SIZE_MAX / sz)
		return ls_errf(errmsg, LS_ERR_NOMEM, "pgoutput: %zu elements "
		    "of %zu bytes overflow", n, sz);
	if ((np = malloc(n * sz)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "pgoutput: cannot "
		    "allocate %zu bytes of scratch memory", n * sz);
	free(*p);
	*p = np;
	*cap = n;
	return 0;
}

/* Size the arena for a message of len bytes. */
static int
arena_reset(struct pgo_decoder *d, size_t len, char **errmsg)
{
	void *p = d->arena;
	int r;

	d->arena_used = 0;
	if (len == SIZE_MAX)
		return ls_errf(errmsg, LS_ERR_TOOBIG, "pgoutput: message too big");
	if (d->arena_cap > ARENA_KEEP && len + 1 < d->arena_cap / 4) {
		free(d->arena);
		p = d->arena = NULL;
		d->arena_cap = 0;
	}
	r = scratch_reserve(&p, &d->arena_cap, len + 1, 1, errmsg);
	d->arena = p;
	return r;
}

int
pgo_decoder_new(struct pgo_decoder **out, char **errmsg)
{
	struct pgo_decoder *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "pgoutput: cannot "
		    "allocate a decoder");
	*out = d;
	return 0;
}

void
pgo_decoder_free(struct pgo_decoder *d)
{
	if (d == NULL)
		return;
	free(d->arena);
	free(d->cols);
	free(d->vals[OLD]);
	free(d->vals[NEW]);
	free(d->relids);
	free(d);
}

/* Reader primitives. */

static size_t
rd_left(const struct rd *r)
{
	return r->len - r->off;
}

static int
rd_need(struct rd *r, size_t n)
{
	if (rd_left(r) >= n)
		return 0;
	return ls_errf(r->errmsg, LS_ERR_CORRUPT, "pgoutput: truncated %s "
	    "message at offset %zu (need %zu bytes, have %zu)",
	    r->what, r->off, n, rd_left(r));
}

/* Report a field at offset at that does not make sense. */
static int __attribute__((format(printf, 3, 4)))
rd_bad(struct rd *r, size_t at, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	ls_errf(r->errmsg, LS_ERR_CORRUPT, "pgoutput: corrupt %s message "
	    "at offset %zu: %s", r->what, at, s != NULL ? s : "bad field");
	free(s);
	return LS_ERR_CORRUPT;
}

/* Read an n-byte big-endian unsigned integer. */
static int
rd_be(struct rd *r, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;
	int rc;

	if ((rc = rd_need(r, n)) != 0)
		return rc;
	for (i = 0; i < n; i++)
		x = (x << 8) | r->buf[r->off + i];
	r->off += n;
	*v = x;
	return 0;
}

/* Two's complement to signed without implementation-defined casts. */
static int64_t
to_signed(uint64_t x, unsigned bits)
{
	uint64_t sign = UINT64_C(1) << (bits - 1);

	if ((x & sign) == 0)
		return (int64_t)x;
	if (bits == 64)
		return -(int64_t)(~x) - 1;
	return (int64_t)x - (int64_t)(sign << 1);
}

/* rd_NAME(r, &v): an n-byte big-endian field into TYPE, CONV(x) of it. */
#define RD_FIELD(name, type, n, conv)					\
static int								\
rd_##name(struct rd *r, type *v)					\
{									\
	uint64_t x;							\
	int rc;								\
									\
	if ((rc = rd_be(r, n, &x)) == 0)				\
		*v = (type)(conv);					\
	return rc;							\
}

RD_FIELD(u8, uint8_t, 1, x)
RD_FIELD(u32, uint32_t, 4, x)
RD_FIELD(i16, int16_t, 2, to_signed(x, 16))
RD_FIELD(i32, int32_t, 4, to_signed(x, 32))
RD_FIELD(i64, int64_t, 8, to_signed(x, 64))

static int
rd_u64(struct rd *r, uint64_t *v)
{
	return rd_be(r, 8, v);
}

/* Read a PostgreSQL timestamp and convert it to Unix-epoch microseconds. */
static int
rd_time(struct rd *r, int64_t *v)
{
	size_t at = r->off;
	int64_t t;
	int rc;

	if ((rc = rd_i64(r, &t)) != 0)
		return rc;
	if (t > INT64_MAX - PGO_EPOCH_OFFSET_US)
		return rd_bad(r, at, "timestamp %lld out of range",
		    (long long)t);
	*v = t + PGO_EPOCH_OFFSET_US;
	return 0;
}

/* Copy the next n bytes into the arena, NUL-terminated. */
static int
rd_copy(struct rd *r, size_t n, const char **sp)
{
	struct pgo_decoder *d = r->d;
	char *s;
	int rc;

	if ((rc = rd_need(r, n)) != 0)
		return rc;
	if (d->arena_cap - d->arena_used < n + 1)
		return ls_errf(r->errmsg, LS_ERR_INTERNAL, "pgoutput: arena "
		    "exhausted decoding %s message", r->what);
	s = d->arena + d->arena_used;
	if (n > 0)
		memcpy(s, r->buf + r->off, n);
	s[n] = '\0';
	d->arena_used += n + 1;
	r->off += n;
	*sp = s;
	return 0;
}

/* Read a NUL-terminated String. */
static int
rd_str(struct rd *r, const char **sp)
{
	const uint8_t *p = r->buf + r->off, *nul;
	int rc;

	if ((nul = memchr(p, '\0', rd_left(r))) == NULL)
		return ls_errf(r->errmsg, LS_ERR_CORRUPT, "pgoutput: truncated "
		    "%s message at offset %zu (string not terminated in the "
		    "%zu bytes left)", r->what, r->off, rd_left(r));
	if ((rc = rd_copy(r, (size_t)(nul - p), sp)) != 0)
		return rc;
	r->off++;
	return 0;
}

/* Read a namespace String; the empty string stands for pg_catalog. */
static int
rd_schema(struct rd *r, const char **sp)
{
	int rc;

	if ((rc = rd_str(r, sp)) == 0 && **sp == '\0')
		*sp = "pg_catalog";
	return rc;
}

/*
 * Check a count read at offset at against the bytes left: each item takes
 * at least minsz bytes.
 */
static int
rd_count(struct rd *r, size_t at, int64_t n, size_t minsz, const char *what)
{
	if (n < 0)
		return rd_bad(r, at, "negative %s %lld", what, (long long)n);
	if ((uint64_t)n > rd_left(r) / minsz)
		return rd_bad(r, at, "%s %lld exceeds the %zu bytes left",
		    what, (long long)n, rd_left(r));
	return 0;
}

/* Read an Int32 length followed by that many bytes. */
static int
rd_data(struct rd *r, uint32_t *lenp, const char **sp)
{
	size_t at = r->off;
	int32_t n;
	int rc;

	if ((rc = rd_i32(r, &n)) != 0 ||
	    (rc = rd_count(r, at, n, 1, "length")) != 0)
		return rc;
	*lenp = (uint32_t)n;
	return rd_copy(r, (size_t)n, sp);
}

/* Read the streamed transaction's xid when in a stream. */
static int
rd_stream_xid(struct rd *r, struct pgo_msg *m)
{
	int rc;

	if ((rc = rd_u32(r, &m->xid)) == 0)
		m->has_xid = true;
	return rc;
}

/* Read a tag byte that must be one of the characters in ok. */
static int
rd_tag(struct rd *r, const char *ok, const char *what, char *tag)
{
	size_t at = r->off;
	uint8_t c;
	int rc;

	if ((rc = rd_u8(r, &c)) != 0)
		return rc;
	if (c == '\0' || strchr(ok, c) == NULL)
		return rd_bad(r, at, "%s is 0x%02x, expected one of \"%s\"",
		    what, c, ok);
	*tag = (char)c;
	return 0;
}

/* TupleData. */

static int
rd_value(struct rd *r, struct ls_value *v)
{
	int rc;

	memset(v, 0, sizeof(*v));
	if ((rc = rd_tag(r, "nutb", "column kind", &v->kind)) != 0)
		return rc;
	if (v->kind == LS_VAL_NULL || v->kind == LS_VAL_UNCHANGED)
		return 0;
	return rd_data(r, &v->len, &v->data);
}

static int
rd_tuple(struct rd *r, int which, struct ls_tuple *t)
{
	struct pgo_decoder *d = r->d;
	size_t at = r->off;
	void *p = d->vals[which];
	int16_t n, i;
	int rc;

	if ((rc = rd_i16(r, &n)) != 0 ||
	    (rc = rd_count(r, at, n, 1, "column count")) != 0)
		return rc;
	rc = scratch_reserve(&p, &d->vals_cap[which], (size_t)n,
	    sizeof(struct ls_value), r->errmsg);
	d->vals[which] = p;
	if (rc != 0)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = rd_value(r, &d->vals[which][i])) != 0)
			return rc;
	}
	t->ncols = (uint16_t)n;
	t->vals = n > 0 ? d->vals[which] : NULL;
	return 0;
}

/* Message bodies, after the type byte (and stream xid). */

static int
dec_begin(struct rd *r, struct pgo_msg *m)
{
	struct ls_txn *t = &m->u.txn;
	int rc;

	if ((rc = rd_u64(r, &t->commit_lsn)) != 0 ||
	    (rc = rd_time(r, &t->commit_time)) != 0 ||
	    (rc = rd_u32(r, &t->xid)) != 0)
		return rc;
	m->xid = t->xid;
	m->has_xid = true;
	return 0;
}

/* The part shared by Commit and Stream Commit. */
static int
rd_commit(struct rd *r, struct pgo_msg *m)
{
	struct ls_txn *t = &m->u.txn;
	int rc;

	if ((rc = rd_u8(r, &m->flags)) != 0 ||
	    (rc = rd_u64(r, &t->commit_lsn)) != 0 ||
	    (rc = rd_u64(r, &t->end_lsn)) != 0)
		return rc;
	return rd_time(r, &t->commit_time);
}

static int
dec_commit(struct rd *r, struct pgo_msg *m)
{
	return rd_commit(r, m);
}

static int
dec_origin(struct rd *r, struct pgo_msg *m)
{
	int rc;

	if ((rc = rd_u64(r, &m->u.origin.lsn)) != 0)
		return rc;
	return rd_str(r, &m->u.origin.name);
}

static int
rd_column(struct rd *r, struct ls_column *c)
{
	int rc;

	if ((rc = rd_u8(r, &c->flags)) != 0 ||
	    (rc = rd_str(r, &c->name)) != 0 ||
	    (rc = rd_u32(r, &c->type_oid)) != 0)
		return rc;
	return rd_i32(r, &c->typmod);
}

/* flags, name (at least its NUL), type oid, typmod */
#define RELCOL_MIN	(1 + 1 + 4 + 4)

static int
dec_relation(struct rd *r, struct pgo_msg *m)
{
	struct ls_relation *rel = &m->u.rel;
	struct pgo_decoder *d = r->d;
	void *p = d->cols;
	size_t at;
	int16_t n, i;
	int rc;

	if ((rc = rd_u32(r, &rel->oid)) != 0 ||
	    (rc = rd_schema(r, &rel->schema)) != 0 ||
	    (rc = rd_str(r, &rel->name)) != 0 ||
	    (rc = rd_tag(r, "dnfi", "replica identity",
	    &rel->replident)) != 0)
		return rc;
	at = r->off;
	if ((rc = rd_i16(r, &n)) != 0 ||
	    (rc = rd_count(r, at, n, RELCOL_MIN, "column count")) != 0)
		return rc;
	rc = scratch_reserve(&p, &d->cols_cap, (size_t)n,
	    sizeof(struct ls_column), r->errmsg);
	d->cols = p;
	if (rc != 0)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = rd_column(r, &d->cols[i])) != 0)
			return rc;
	}
	rel->ncols = (uint16_t)n;
	rel->cols = n > 0 ? d->cols : NULL;
	return 0;
}

static int
dec_type(struct rd *r, struct pgo_msg *m)
{
	int rc;

	if ((rc = rd_u32(r, &m->u.type.oid)) != 0 ||
	    (rc = rd_schema(r, &m->u.type.schema)) != 0)
		return rc;
	return rd_str(r, &m->u.type.name);
}

static int
dec_insert(struct rd *r, struct pgo_msg *m)
{
	struct ls_change *c = &m->u.change;
	char tag;
	int rc;

	c->kind = LS_CHANGE_INSERT;
	if ((rc = rd_u32(r, &c->relid)) != 0 ||
	    (rc = rd_tag(r, "N", "tuple tag", &tag)) != 0)
		return rc;
	return rd_tuple(r, NEW, &c->new);
}

static int
dec_update(struct rd *r, struct pgo_msg *m)
{
	struct ls_change *c = &m->u.change;
	char tag;
	int rc;

	c->kind = LS_CHANGE_UPDATE;
	if ((rc = rd_u32(r, &c->relid)) != 0 ||
	    (rc = rd_tag(r, "KON", "tuple tag", &tag)) != 0)
		return rc;
	if (tag != 'N') {
		c->old_kind = tag;
		if ((rc = rd_tuple(r, OLD, &c->old)) != 0 ||
		    (rc = rd_tag(r, "N", "new tuple tag", &tag)) != 0)
			return rc;
	}
	return rd_tuple(r, NEW, &c->new);
}

static int
dec_delete(struct rd *r, struct pgo_msg *m)
{
	struct ls_change *c = &m->u.change;
	int rc;

	c->kind = LS_CHANGE_DELETE;
	if ((rc = rd_u32(r, &c->relid)) != 0 ||
	    (rc = rd_tag(r, "KO", "old tuple tag", &c->old_kind)) != 0)
		return rc;
	return rd_tuple(r, OLD, &c->old);
}

#define TRUNCATE_FLAGS	(LS_TRUNCATE_CASCADE | LS_TRUNCATE_RESTART_IDENTITY)

static int
dec_truncate(struct rd *r, struct pgo_msg *m)
{
	struct ls_change *c = &m->u.change;
	struct pgo_decoder *d = r->d;
	void *p = d->relids;
	size_t at = r->off;
	int32_t n, i;
	int rc;

	c->kind = LS_CHANGE_TRUNCATE;
	if ((rc = rd_i32(r, &n)) != 0 ||
	    (rc = rd_count(r, at, n, 4, "relation count")) != 0)
		return rc;
	at = r->off;
	if ((rc = rd_u8(r, &m->flags)) != 0)
		return rc;
	if ((m->flags & ~TRUNCATE_FLAGS) != 0)
		return rd_bad(r, at, "unknown option bits 0x%02x", m->flags);
	c->trunc_flags = m->flags;
	rc = scratch_reserve(&p, &d->relids_cap, (size_t)n, sizeof(uint32_t),
	    r->errmsg);
	d->relids = p;
	if (rc != 0)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = rd_u32(r, &d->relids[i])) != 0)
			return rc;
	}
	c->nrelids = (uint32_t)n;
	c->relids = n > 0 ? d->relids : NULL;
	return 0;
}

#define MESSAGE_TRANSACTIONAL	0x01

static int
dec_message(struct rd *r, struct pgo_msg *m)
{
	struct ls_message *msg = &m->u.message;
	size_t at = r->off;
	int rc;

	if ((rc = rd_u8(r, &m->flags)) != 0)
		return rc;
	if ((m->flags & ~MESSAGE_TRANSACTIONAL) != 0)
		return rd_bad(r, at, "unknown flag bits 0x%02x", m->flags);
	msg->transactional = (m->flags & MESSAGE_TRANSACTIONAL) != 0;
	if ((rc = rd_u64(r, &msg->lsn)) != 0 ||
	    (rc = rd_str(r, &msg->prefix)) != 0)
		return rc;
	return rd_data(r, &msg->len, &msg->content);
}

static int
dec_stream_start(struct rd *r, struct pgo_msg *m)
{
	size_t at;
	uint8_t first;
	int rc;

	if ((rc = rd_stream_xid(r, m)) != 0)
		return rc;
	at = r->off;
	if ((rc = rd_u8(r, &first)) != 0)
		return rc;
	if (first > 1)
		return rd_bad(r, at, "first-segment flag is %u, expected 0 "
		    "or 1", first);
	m->u.stream_start.first_segment = first == 1;
	return 0;
}

static int
dec_stream_stop(struct rd *r, struct pgo_msg *m)
{
	return 0;
}

static int
dec_stream_commit(struct rd *r, struct pgo_msg *m)
{
	int rc;

	if ((rc = rd_stream_xid(r, m)) != 0)
		return rc;
	m->u.txn.xid = m->xid;
	return rd_commit(r, m);
}

static int
dec_stream_abort(struct rd *r, struct pgo_msg *m)
{
	int rc;

	if ((rc = rd_stream_xid(r, m)) != 0)
		return rc;
	return rd_u32(r, &m->u.stream_abort.subxid);
}

static const struct msgdef *
find_msgdef(char type)
{
	size_t i;

	for (i = 0; i < sizeof(msgdefs) / sizeof(msgdefs[0]); i++) {
		if (msgdefs[i].type == type)
			return &msgdefs[i];
	}
	return NULL;
}

const char *
pgo_type_name(char type)
{
	const struct msgdef *def = find_msgdef(type);

	return def != NULL ? def->name : NULL;
}

static int
unknown_type(uint8_t c, char **errmsg)
{
	if (isprint(c))
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: unknown "
		    "message type '%c' (0x%02x)", c, c);
	return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: unknown message "
	    "type 0x%02x", c);
}

int
pgo_decode(struct pgo_decoder *d, const uint8_t *buf, size_t len,
    bool in_stream, struct pgo_msg *out, char **errmsg)
{
	struct rd r = { d, buf, len, 0, "pgoutput", errmsg };
	const struct msgdef *def;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: empty "
		    "message (need 1 byte for the type, have 0)");
	if ((def = find_msgdef((char)buf[0])) == NULL)
		return unknown_type(buf[0], errmsg);
	if ((rc = arena_reset(d, len, errmsg)) != 0)
		return rc;
	out->type = def->type;
	r.what = def->name;
	r.off = 1;
	if (in_stream && def->stream_xid &&
	    (rc = rd_stream_xid(&r, out)) != 0)
		return rc;
	if ((rc = def->decode(&r, out)) != 0)
		return rc;
	if (r.off != len)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: %zu trailing "
		    "byte%s after %s message at offset %zu", len - r.off,
		    len - r.off == 1 ? "" : "s", def->name, r.off);
	return 0;
}

int
pgo_peek(const uint8_t *buf, size_t len, bool in_stream, struct pgo_peek *out,
    char **errmsg)
{
	struct rd r = { NULL, buf, len, 1, "pgoutput", errmsg };
	const struct msgdef *def;
	uint8_t flags;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: empty "
		    "message (need 1 byte for the type, have 0)");
	if ((def = find_msgdef((char)buf[0])) == NULL)
		return unknown_type(buf[0], errmsg);
	out->type = def->type;
	r.what = def->name;
	if (in_stream && def->stream_xid) {
		if ((rc = rd_u32(&r, &out->xid)) != 0)
			return rc;
		out->has_xid = true;
	}
	if (def->type == PGO_MESSAGE) {
		if ((rc = rd_u8(&r, &flags)) != 0)
			return rc;
		out->transactional = (flags & MESSAGE_TRANSACTIONAL) != 0;
	}
	return 0;
}

/* The replication protocol envelope. */

#define XLOGDATA_HDR	(1 + 8 + 8 + 8)
#define KEEPALIVE_LEN	(1 + 8 + 8 + 1)

int
pgo_parse_xlogdata(const uint8_t *buf, size_t len, uint64_t *wal_start,
    uint64_t *wal_end, int64_t *send_time, const uint8_t **payload,
    size_t *payload_len, char **errmsg)
{
	struct rd r = { NULL, buf, len, 0, "XLogData", errmsg };
	uint8_t type;
	int rc;

	if ((rc = rd_u8(&r, &type)) != 0)
		return rc;
	if (type != 'w')
		return rd_bad(&r, 0, "type is 0x%02x, expected 'w'", type);
	if ((rc = rd_u64(&r, wal_start)) != 0 ||
	    (rc = rd_u64(&r, wal_end)) != 0 ||
	    (rc = rd_i64(&r, send_time)) != 0)
		return rc;
	*payload = buf + XLOGDATA_HDR;
	*payload_len = len - XLOGDATA_HDR;
	return 0;
}

int
pgo_parse_keepalive(const uint8_t *buf, size_t len, uint64_t *wal_end,
    int64_t *send_time, bool *reply_requested, char **errmsg)
{
	struct rd r = { NULL, buf, len, 0, "keepalive", errmsg };
	uint8_t type, reply;
	int rc;

	if ((rc = rd_u8(&r, &type)) != 0)
		return rc;
	if (type != 'k')
		return rd_bad(&r, 0, "type is 0x%02x, expected 'k'", type);
	if ((rc = rd_u64(&r, wal_end)) != 0 ||
	    (rc = rd_i64(&r, send_time)) != 0 ||
	    (rc = rd_u8(&r, &reply)) != 0)
		return rc;
	if (len != KEEPALIVE_LEN)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: %zu trailing "
		    "byte%s after keepalive message", len - KEEPALIVE_LEN,
		    len - KEEPALIVE_LEN == 1 ? "" : "s");
	*reply_requested = reply != 0;
	return 0;
}

static uint8_t *
put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		*p++ = (uint8_t)(v >> (i * 8));
	}
	return p;
}

size_t
pgo_build_status(uint8_t out[PGO_STATUS_LEN], uint64_t written,
    uint64_t flushed, uint64_t applied, int64_t now_pg_us, bool reply)
{
	uint8_t *p = out;

	*p++ = 'r';
	p = put_be64(p, written);
	p = put_be64(p, flushed);
	p = put_be64(p, applied);
	p = put_be64(p, (uint64_t)now_pg_us);
	*p++ = reply ? 1 : 0;
	return (size_t)(p - out);
}

