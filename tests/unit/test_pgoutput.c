/*
 * test_pgoutput.c: the pgoutput decoder, envelope helpers and LSN text form.
 *
 * Messages are built by hand with a small byte builder, decoded from an
 * exact-size heap copy (so ASan sees any over-read, and so that nothing
 * decoded may point into the input), and every field is checked.  Every
 * truncation of every valid message must be rejected.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "pg/pgoutput.h"
#include "tap.h"

#define SXID		UINT32_C(0x9abcdef0)	/* streamed transaction */
#define TXID		UINT32_C(0x80000001)
#define LSN1		UINT64_C(0x16B374D848)
#define LSN2		UINT64_C(0x16B374D8F0)
#define PG_TS		INT64_C(700000000123456)
#define UNIX_TS		(PG_TS + INT64_C(946684800000000))
#define RELID		UINT32_C(16384)

/* A growable byte builder, big-endian like the wire. */
struct bb {
	uint8_t	*buf;
	size_t	 len;
	size_t	 cap;
};

static void
bb_put(struct bb *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		if ((b->buf = realloc(b->buf, b->cap)) == NULL)
			abort();
	}
	if (n > 0)
		memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void
bb_be(struct bb *b, uint64_t v, int n)
{
	uint8_t c;

	while (n-- > 0) {
		c = (uint8_t)(v >> (n * 8));
		bb_put(b, &c, 1);
	}
}

static void bb_u8(struct bb *b, uint8_t v) { bb_be(b, v, 1); }
static void bb_u16(struct bb *b, uint16_t v) { bb_be(b, v, 2); }
static void bb_u32(struct bb *b, uint32_t v) { bb_be(b, v, 4); }
static void bb_u64(struct bb *b, uint64_t v) { bb_be(b, v, 8); }
static void bb_str(struct bb *b, const char *s) { bb_put(b, s, strlen(s) + 1); }

/* Type byte, then the stream xid when streaming. */
static void
bb_start(struct bb *b, char type, bool stream)
{
	b->len = 0;
	bb_u8(b, (uint8_t)type);
	if (stream)
		bb_u32(b, SXID);
}

static void
bb_free(struct bb *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/* A column value to build: kind, data, len. */
struct tv {
	char		 kind;
	const char	*data;
	uint32_t	 len;
};

static void
bb_tuple(struct bb *b, const struct tv *v, uint16_t n)
{
	uint16_t i;

	bb_u16(b, n);
	for (i = 0; i < n; i++) {
		bb_u8(b, (uint8_t)v[i].kind);
		if (v[i].kind == 't' || v[i].kind == 'b') {
			bb_u32(b, v[i].len);
			bb_put(b, v[i].data, v[i].len);
		}
	}
}

static const struct tv row1[] = {
	{ 'n', NULL, 0 },
	{ 'u', NULL, 0 },
	{ 't', "hello", 5 },
	{ 'b', "\x00\x01\xff", 3 },
	{ 't', "", 0 },
};
#define ROW1_N	5
static const struct tv key1[] = { { 't', "42", 2 } };
static const struct tv old1[] = {
	{ 't', "42", 2 }, { 'n', NULL, 0 }, { 't', "old", 3 },
};

static struct pgo_decoder *dec;
static char *err;

/* Decode the first len bytes of b from an exact-size copy. */
static int
decode_n(const struct bb *b, size_t len, bool stream, struct pgo_msg *m)
{
	uint8_t *copy;
	int rc;

	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(copy, b->buf, len);
	free(err);
	err = NULL;
	rc = pgo_decode(dec, copy, len, stream, m, &err);
	memset(copy, 0xa5, len);	/* nothing decoded may point here */
	free(copy);
	return rc;
}

static int peek_mismatches;

/* pgo_peek must agree with what pgo_decode made of the same bytes. */
static void
check_peek(const struct bb *b, bool stream, const struct pgo_msg *m)
{
	struct pgo_peek pk;

	if (pgo_peek(b->buf, b->len, stream, &pk, NULL) != 0 ||
	    pk.type != m->type || (pk.has_xid && (!m->has_xid ||
	    pk.xid != m->xid)) || (m->type == PGO_MESSAGE &&
	    pk.transactional != m->u.message.transactional)) {
		diag("pgo_peek disagrees with pgo_decode on a %s message",
		    pgo_type_name(m->type));
		peek_mismatches++;
	}
}

static int
decode(const struct bb *b, bool stream, struct pgo_msg *m)
{
	int rc = decode_n(b, b->len, stream, m);

	if (rc != 0)
		diag("unexpected error: %s", err != NULL ? err : "(none)");
	else
		check_peek(b, stream, m);
	return rc;
}

/* Every proper prefix of b must be rejected with a message. */
static void
check_prefixes(const struct bb *b, bool stream, const char *what)
{
	struct pgo_msg m;
	size_t n, bad = 0;

	for (n = 0; n < b->len; n++) {
		if (decode_n(b, n, stream, &m) == LS_ERR_CORRUPT &&
		    err != NULL)
			continue;
		if (bad++ == 0)
			diag("%s: prefix of %zu bytes not rejected", what, n);
	}
	ok(bad == 0, "%s%s: all %zu truncations rejected", what,
	    stream ? " (stream)" : "", b->len);
}

/* The message decodes only with an error naming want. */
static void
check_reject(const struct bb *b, bool stream, const char *want,
    const char *what)
{
	struct pgo_msg m;
	int rc = decode_n(b, b->len, stream, &m);

	ok(rc == LS_ERR_CORRUPT && err != NULL && strstr(err, want) != NULL,
	    "rejects %s: %s", what, err != NULL ? err : "(no error)");
}

static int
val_is(const struct ls_value *v, const struct tv *want)
{
	if (v->kind != want->kind)
		return 0;
	if (want->kind == 'n' || want->kind == 'u')
		return v->data == NULL && v->len == 0;
	return v->len == want->len && v->data != NULL &&
	    memcmp(v->data, want->data, want->len) == 0 &&
	    v->data[want->len] == '\0';
}

static int
tuple_is(const struct ls_tuple *t, const struct tv *want, uint16_t n)
{
	uint16_t i;

	if (t->ncols != n)
		return 0;
	for (i = 0; i < n; i++) {
		if (!val_is(&t->vals[i], &want[i]))
			return 0;
	}
	return 1;
}

static int
xid_ok(const struct pgo_msg *m, bool stream)
{
	return stream ? m->has_xid && m->xid == SXID :
	    !m->has_xid && m->xid == 0;
}

/* Transaction boundaries. */

static void
test_begin_commit(struct bb *b)
{
	struct pgo_msg m;

	bb_start(b, 'B', false);
	bb_u64(b, LSN1);
	bb_u64(b, (uint64_t)PG_TS);
	bb_u32(b, TXID);
	ok(decode(b, false, &m) == 0 && m.type == PGO_BEGIN &&
	    m.u.txn.commit_lsn == LSN1 && m.u.txn.end_lsn == 0 &&
	    m.u.txn.commit_time == UNIX_TS && m.u.txn.xid == TXID &&
	    m.has_xid && m.xid == TXID && m.u.txn.origin == NULL,
	    "Begin: final LSN, Unix commit time, xid");
	check_prefixes(b, false, "Begin");

	bb_start(b, 'C', false);
	bb_u8(b, 0);
	bb_u64(b, LSN1);
	bb_u64(b, LSN2);
	bb_u64(b, (uint64_t)-1);	/* one microsecond before 2000 */
	ok(decode(b, false, &m) == 0 && m.type == PGO_COMMIT &&
	    m.flags == 0 && m.u.txn.commit_lsn == LSN1 &&
	    m.u.txn.end_lsn == LSN2 &&
	    m.u.txn.commit_time == INT64_C(946684799999999) &&
	    !m.has_xid && m.xid == 0 && m.u.txn.xid == 0,
	    "Commit: flags, commit LSN, end LSN, time");
	check_prefixes(b, false, "Commit");
	ok(decode(b, true, &m) == 0 && !m.has_xid,
	    "Commit inside a stream carries no stream xid");
}

static void
test_origin(struct bb *b)
{
	struct pgo_msg m;

	bb_start(b, 'O', false);
	bb_u64(b, LSN2);
	bb_str(b, "node_a");
	ok(decode(b, false, &m) == 0 && m.type == PGO_ORIGIN &&
	    m.u.origin.lsn == LSN2 &&
	    strcmp(m.u.origin.name, "node_a") == 0 && !m.has_xid,
	    "Origin: LSN and name");
	check_prefixes(b, false, "Origin");
}

/* Schema and types. */

static void
build_relation(struct bb *b, bool stream, const char *ns)
{
	bb_start(b, 'R', stream);
	bb_u32(b, RELID);
	bb_str(b, ns);
	bb_str(b, "orders");
	bb_u8(b, 'i');
	bb_u16(b, 3);
	bb_u8(b, 1); bb_str(b, "id"); bb_u32(b, 23); bb_u32(b, UINT32_MAX);
	bb_u8(b, 0); bb_str(b, "body"); bb_u32(b, 25); bb_u32(b, UINT32_MAX);
	bb_u8(b, 0); bb_str(b, "amount"); bb_u32(b, 1700); bb_u32(b, 655366);
}

static void
test_relation(struct bb *b, bool stream)
{
	struct pgo_msg m;
	const struct ls_relation *r = &m.u.rel;

	build_relation(b, stream, "public");
	ok(decode(b, stream, &m) == 0 && m.type == PGO_RELATION &&
	    xid_ok(&m, stream) && r->oid == RELID &&
	    strcmp(r->schema, "public") == 0 &&
	    strcmp(r->name, "orders") == 0 && r->replident == 'i' &&
	    r->ncols == 3, "Relation%s: oid, names, identity, ncols",
	    stream ? " (stream)" : "");
	ok(r->ncols == 3 && r->cols[0].flags == LS_COL_KEY &&
	    strcmp(r->cols[0].name, "id") == 0 && r->cols[0].type_oid == 23 &&
	    r->cols[0].typmod == -1 && r->cols[1].flags == 0 &&
	    strcmp(r->cols[1].name, "body") == 0 && r->cols[1].type_oid == 25 &&
	    strcmp(r->cols[2].name, "amount") == 0 &&
	    r->cols[2].type_oid == 1700 && r->cols[2].typmod == 655366,
	    "Relation%s: columns with key flag, type, typmod",
	    stream ? " (stream)" : "");
	check_prefixes(b, stream, "Relation");

	build_relation(b, stream, "");
	ok(decode(b, stream, &m) == 0 &&
	    strcmp(m.u.rel.schema, "pg_catalog") == 0,
	    "Relation%s: empty namespace is pg_catalog",
	    stream ? " (stream)" : "");
}

static void
test_type(struct bb *b, bool stream)
{
	struct pgo_msg m;

	bb_start(b, 'Y', stream);
	bb_u32(b, 90001);
	bb_str(b, "app");
	bb_str(b, "mood");
	ok(decode(b, stream, &m) == 0 && m.type == PGO_TYPE &&
	    xid_ok(&m, stream) && m.u.type.oid == 90001 &&
	    strcmp(m.u.type.schema, "app") == 0 &&
	    strcmp(m.u.type.name, "mood") == 0,
	    "Type%s: oid, schema, name", stream ? " (stream)" : "");
	check_prefixes(b, stream, "Type");

	bb_start(b, 'Y', stream);
	bb_u32(b, 16);
	bb_str(b, "");
	bb_str(b, "bool");
	ok(decode(b, stream, &m) == 0 &&
	    strcmp(m.u.type.schema, "pg_catalog") == 0 &&
	    strcmp(m.u.type.name, "bool") == 0,
	    "Type%s: empty namespace is pg_catalog", stream ? " (stream)" : "");
}

/* Row changes. */

static void
build_insert(struct bb *b, bool stream)
{
	bb_start(b, 'I', stream);
	bb_u32(b, RELID);
	bb_u8(b, 'N');
	bb_tuple(b, row1, ROW1_N);
}

static void
test_insert(struct bb *b, bool stream)
{
	struct pgo_msg m;
	const struct ls_change *c = &m.u.change;

	build_insert(b, stream);
	ok(decode(b, stream, &m) == 0 && m.type == PGO_INSERT &&
	    xid_ok(&m, stream) && c->kind == LS_CHANGE_INSERT &&
	    c->relid == RELID && c->old_kind == LS_OLD_NONE &&
	    c->old.ncols == 0 && tuple_is(&c->new, row1, ROW1_N),
	    "Insert%s: null, unchanged, text, binary, empty text distinct",
	    stream ? " (stream)" : "");
	check_prefixes(b, stream, "Insert");
}

/* Update with old tuple kind old (0, 'K' or 'O'). */
static void
build_update(struct bb *b, bool stream, char old)
{
	bb_start(b, 'U', stream);
	bb_u32(b, RELID);
	if (old == 'K') {
		bb_u8(b, 'K');
		bb_tuple(b, key1, 1);
	} else if (old == 'O') {
		bb_u8(b, 'O');
		bb_tuple(b, old1, 3);
	}
	bb_u8(b, 'N');
	bb_tuple(b, row1, ROW1_N);
}

static void
test_update(struct bb *b, bool stream, char old)
{
	struct pgo_msg m;
	const struct ls_change *c = &m.u.change;
	int old_ok;

	build_update(b, stream, old);
	if (decode(b, stream, &m) != 0) {
		ok(0, "Update decodes");
		return;
	}
	if (old == 'K')
		old_ok = c->old_kind == 'K' && tuple_is(&c->old, key1, 1);
	else if (old == 'O')
		old_ok = c->old_kind == 'O' && tuple_is(&c->old, old1, 3);
	else
		old_ok = c->old_kind == 0 && c->old.ncols == 0;
	ok(m.type == PGO_UPDATE && xid_ok(&m, stream) &&
	    c->kind == LS_CHANGE_UPDATE && c->relid == RELID && old_ok &&
	    tuple_is(&c->new, row1, ROW1_N), "Update%s with old '%c': fields",
	    stream ? " (stream)" : "", old ? old : '-');
	check_prefixes(b, stream, old == 'K' ? "Update K" :
	    old == 'O' ? "Update O" : "Update");
}

static void
build_delete(struct bb *b, bool stream, char old)
{
	bb_start(b, 'D', stream);
	bb_u32(b, RELID);
	bb_u8(b, (uint8_t)old);
	if (old == 'K')
		bb_tuple(b, key1, 1);
	else
		bb_tuple(b, old1, 3);
}

static void
test_delete(struct bb *b, bool stream, char old)
{
	struct pgo_msg m;
	const struct ls_change *c = &m.u.change;

	build_delete(b, stream, old);
	ok(decode(b, stream, &m) == 0 && m.type == PGO_DELETE &&
	    xid_ok(&m, stream) && c->kind == LS_CHANGE_DELETE &&
	    c->relid == RELID && c->old_kind == old &&
	    (old == 'K' ? tuple_is(&c->old, key1, 1) :
	    tuple_is(&c->old, old1, 3)) && c->new.ncols == 0,
	    "Delete%s with old '%c': fields", stream ? " (stream)" : "", old);
	check_prefixes(b, stream, old == 'K' ? "Delete K" : "Delete O");
}

static void
build_truncate(struct bb *b, bool stream, uint8_t flags, uint32_t n)
{
	uint32_t i;

	bb_start(b, 'T', stream);
	bb_u32(b, n);
	bb_u8(b, flags);
	for (i = 0; i < n; i++)
		bb_u32(b, RELID + i);
}

static void
test_truncate(struct bb *b, bool stream)
{
	struct pgo_msg m;
	const struct ls_change *c = &m.u.change;

	build_truncate(b, stream, LS_TRUNCATE_CASCADE |
	    LS_TRUNCATE_RESTART_IDENTITY, 3);
	ok(decode(b, stream, &m) == 0 && m.type == PGO_TRUNCATE &&
	    xid_ok(&m, stream) && c->kind == LS_CHANGE_TRUNCATE &&
	    c->trunc_flags == 3 && c->nrelids == 3 && c->relids[0] == RELID &&
	    c->relids[1] == RELID + 1 && c->relids[2] == RELID + 2,
	    "Truncate%s: cascade + restart identity, 3 relids",
	    stream ? " (stream)" : "");
	check_prefixes(b, stream, "Truncate");

	build_truncate(b, stream, LS_TRUNCATE_RESTART_IDENTITY, 1);
	ok(decode(b, stream, &m) == 0 && c->trunc_flags ==
	    LS_TRUNCATE_RESTART_IDENTITY && c->nrelids == 1 &&
	    c->relids[0] == RELID, "Truncate%s: restart identity only",
	    stream ? " (stream)" : "");
	build_truncate(b, stream, 0, 2);
	ok(decode(b, stream, &m) == 0 && c->trunc_flags == 0 &&
	    c->nrelids == 2 && c->relids[1] == RELID + 1,
	    "Truncate%s: no flags", stream ? " (stream)" : "");
}

static void
build_message(struct bb *b, bool stream, bool transactional)
{
	bb_start(b, 'M', stream);
	bb_u8(b, transactional ? 1 : 0);
	bb_u64(b, LSN2);
	bb_str(b, "logship");
	bb_u32(b, 4);
	bb_put(b, "a\0bc", 4);
}

static void
test_message(struct bb *b, bool stream, bool transactional)
{
	struct pgo_msg m;
	const struct ls_message *msg = &m.u.message;

	build_message(b, stream, transactional);
	ok(decode(b, stream, &m) == 0 && m.type == PGO_MESSAGE &&
	    xid_ok(&m, stream) && msg->transactional == transactional &&
	    m.flags == (transactional ? 1 : 0) && msg->lsn == LSN2 &&
	    strcmp(msg->prefix, "logship") == 0 && msg->len == 4 &&
	    memcmp(msg->content, "a\0bc", 4) == 0 && msg->content[4] == '\0',
	    "Message%s %s: lsn, prefix, content", stream ? " (stream)" : "",
	    transactional ? "transactional" : "non-transactional");
	check_prefixes(b, stream, "Message");
}

/* Streaming control messages. */

static void
test_stream_control(struct bb *b)
{
	struct pgo_msg m;

	bb_start(b, 'S', false);
	bb_u32(b, SXID);
	bb_u8(b, 1);
	ok(decode(b, false, &m) == 0 && m.type == PGO_STREAM_START &&
	    m.has_xid && m.xid == SXID && m.u.stream_start.first_segment,
	    "Stream Start: xid, first segment");
	check_prefixes(b, false, "Stream Start");
	b->buf[5] = 0;
	ok(decode(b, false, &m) == 0 && !m.u.stream_start.first_segment,
	    "Stream Start: later segment");

	bb_start(b, 'E', false);
	ok(decode(b, true, &m) == 0 && m.type == PGO_STREAM_STOP &&
	    !m.has_xid, "Stream Stop");
	check_prefixes(b, true, "Stream Stop");

	bb_start(b, 'c', false);
	bb_u32(b, SXID);
	bb_u8(b, 0);
	bb_u64(b, LSN1);
	bb_u64(b, LSN2);
	bb_u64(b, (uint64_t)PG_TS);
	ok(decode(b, false, &m) == 0 && m.type == PGO_STREAM_COMMIT &&
	    m.has_xid && m.xid == SXID && m.u.txn.xid == SXID &&
	    m.flags == 0 && m.u.txn.commit_lsn == LSN1 &&
	    m.u.txn.end_lsn == LSN2 && m.u.txn.commit_time == UNIX_TS,
	    "Stream Commit: xid, commit LSN, end LSN, time");
	check_prefixes(b, false, "Stream Commit");

	bb_start(b, 'A', false);
	bb_u32(b, SXID);
	bb_u32(b, SXID + 7);
	ok(decode(b, false, &m) == 0 && m.type == PGO_STREAM_ABORT &&
	    m.has_xid && m.xid == SXID &&
	    m.u.stream_abort.subxid == SXID + 7,
	    "Stream Abort: xid, subxid");
	check_prefixes(b, false, "Stream Abort");
}

/* Malformed input. */

static void
test_bad_counts(struct bb *b)
{
	bb_start(b, 'I', false);
	bb_u32(b, RELID);
	bb_u8(b, 'N');
	bb_u16(b, 32767);
	bb_u8(b, 'n');
	bb_u8(b, 'n');
	check_reject(b, false, "column count 32767 exceeds the 2 bytes left",
	    "ncols 32767 with 2 bytes");

	b->len -= 4;
	bb_u16(b, 0xffff);
	check_reject(b, false, "negative column count -1", "ncols -1");

	build_relation(b, false, "public");
	b->buf[1 + 4 + 7 + 7 + 1] = 0x7f;	/* ncols high byte */
	check_reject(b, false, "column count 32515 exceeds", "Relation ncols");

	build_truncate(b, false, 0, 2);
	b->buf[1] = 0x7f;
	check_reject(b, false, "relation count 2130706434 exceeds",
	    "Truncate nrelids");
	b->buf[1] = 0xff;
	check_reject(b, false, "negative relation count", "negative nrelids");
}

static void
bb_insert_text_len(struct bb *b, uint32_t len)
{
	bb_start(b, 'I', false);
	bb_u32(b, RELID);
	bb_u8(b, 'N');
	bb_u16(b, 1);
	bb_u8(b, 't');
	bb_u32(b, len);
	bb_put(b, "abc", 3);
}

static void
test_bad_lengths(struct bb *b)
{
	struct pgo_msg m;
	int rc;

	bb_insert_text_len(b, 0x7fffffff);
	check_reject(b, false, "length 2147483647 exceeds the 3 bytes left",
	    "text length 0x7fffffff");
	bb_insert_text_len(b, 0xffffffff);
	check_reject(b, false, "negative length -1", "text length -1");
	bb_insert_text_len(b, 0x80000000);
	check_reject(b, false, "negative length", "text length 0x80000000");

	build_message(b, false, true);
	b->len -= 4 + 4;
	bb_u32(b, 0x7fffffff);
	bb_put(b, "a\0bc", 4);
	check_reject(b, false, "length 2147483647", "Message length");

	/* the exact message format */
	bb_start(b, 'I', false);
	bb_u32(b, RELID);
	bb_u8(b, 'N');
	bb_u16(b, 2);
	bb_u8(b, 'b');
	bb_u32(b, 3);
	bb_put(b, "xyz", 3);
	bb_u8(b, 't');
	bb_u32(b, 4);
	rc = decode_n(b, 19, false, &m);
	ok(rc == LS_ERR_CORRUPT && err != NULL &&
	    strcmp(err, "pgoutput: truncated Insert message at offset 17 "
	    "(need 4 bytes, have 2)") == 0, "truncation message: %s",
	    err != NULL ? err : "(none)");
}

static void
test_bad_tags(struct bb *b)
{
	build_insert(b, false);
	b->buf[5] = 'K';
	check_reject(b, false, "tuple tag is 0x4b", "Insert without 'N'");
	build_insert(b, false);
	b->buf[8] = 'x';
	check_reject(b, false, "column kind is 0x78", "unknown column kind");
	build_update(b, false, 'K');
	b->buf[5 + 1 + 2 + 1 + 4 + 2] = 'O';
	check_reject(b, false, "new tuple tag is 0x4f", "Update K then O");
	build_delete(b, false, 'N');
	check_reject(b, false, "old tuple tag is 0x4e", "Delete with 'N'");
	build_relation(b, false, "public");
	b->buf[1 + 4 + 7 + 7] = 'z';
	check_reject(b, false, "replica identity is 0x7a", "replident 'z'");
	build_truncate(b, false, 4, 1);
	check_reject(b, false, "unknown option bits 0x04", "Truncate flag 4");
	build_message(b, false, false);
	b->buf[1] = 2;
	check_reject(b, false, "unknown flag bits 0x02", "Message flag 2");
	bb_start(b, 'S', false);
	bb_u32(b, SXID);
	bb_u8(b, 2);
	check_reject(b, false, "first-segment flag is 2", "Stream Start 2");
	bb_start(b, 'B', false);
	bb_u64(b, LSN1);
	bb_u64(b, INT64_MAX);
	bb_u32(b, TXID);
	check_reject(b, false, "out of range", "Begin time at infinity");
}

static void
test_bad_framing(struct bb *b)
{
	struct pgo_msg m;
	int rc;

	bb_start(b, 'X', false);
	bb_u32(b, 0);
	check_reject(b, false, "unknown message type 'X' (0x58)", "type 'X'");
	bb_start(b, 0, false);
	check_reject(b, false, "unknown message type 0x00", "type 0x00");
	b->len = 0;
	check_reject(b, false, "empty message", "empty message");

	build_insert(b, false);
	bb_u8(b, 0);
	check_reject(b, false, "1 trailing byte after Insert message",
	    "trailing byte");
	build_update(b, false, 'O');
	bb_put(b, "junk", 4);
	check_reject(b, false, "4 trailing bytes after Update", "trailing junk");
	bb_start(b, 'E', false);
	bb_u8(b, 0);
	check_reject(b, false, "trailing", "Stream Stop with a byte");

	build_insert(b, true);
	rc = decode_n(b, b->len, false, &m);
	ok(rc == LS_ERR_CORRUPT,
	    "streamed Insert decoded outside a stream is rejected: %s",
	    err != NULL ? err : "(none)");
	build_insert(b, false);
	rc = decode_n(b, b->len, true, &m);
	ok(rc == LS_ERR_CORRUPT,
	    "plain Insert decoded as streamed is rejected: %s",
	    err != NULL ? err : "(none)");
}

/* Scratch memory is reused and follows the message size. */
static void
test_reuse(struct bb *b)
{
	struct pgo_msg m;
	struct tv big = { 't', NULL, 200000 };
	char *data;

	if ((data = malloc(big.len)) == NULL)
		abort();
	memset(data, 'q', big.len);
	big.data = data;
	bb_start(b, 'I', false);
	bb_u32(b, RELID);
	bb_u8(b, 'N');
	bb_tuple(b, &big, 1);
	ok(decode(b, false, &m) == 0 && tuple_is(&m.u.change.new, &big, 1),
	    "Insert with a 200000-byte text value");
	build_update(b, false, 'O');
	ok(decode(b, false, &m) == 0 &&
	    tuple_is(&m.u.change.old, old1, 3) &&
	    tuple_is(&m.u.change.new, row1, ROW1_N),
	    "small Update decodes after a big Insert");
	build_insert(b, false);
	ok(decode_n(b, 3, false, &m) != 0 && decode(b, false, &m) == 0 &&
	    tuple_is(&m.u.change.new, row1, ROW1_N),
	    "Insert decodes after a failed decode");
	free(data);
}

/* Envelope. */

static void
test_xlogdata(struct bb *b)
{
	uint64_t start = 0, end = 0;
	int64_t t = 0;
	const uint8_t *p = NULL;
	size_t plen = 0, i, bad = 0;
	int rc;

	bb_start(b, 'w', false);
	bb_u64(b, LSN1);
	bb_u64(b, LSN2);
	bb_u64(b, (uint64_t)PG_TS);
	bb_put(b, "Epayload", 8);
	rc = pgo_parse_xlogdata(b->buf, b->len, &start, &end, &t, &p, &plen,
	    &err);
	ok(rc == 0 && start == LSN1 && end == LSN2 && t == PG_TS &&
	    p == b->buf + 25 && plen == 8 && memcmp(p, "Epayload", 8) == 0,
	    "XLogData: start, end, send time, payload");
	ok(pgo_parse_xlogdata(b->buf, 25, &start, &end, &t, &p, &plen,
	    &err) == 0 && plen == 0, "XLogData with an empty payload");
	for (i = 0; i < 25; i++) {
		if (pgo_parse_xlogdata(b->buf, i, &start, &end, &t, &p, &plen,
		    &err) != LS_ERR_CORRUPT)
			bad++;
	}
	ok(bad == 0, "XLogData: every truncated header rejected");
	b->buf[0] = 'k';
	rc = pgo_parse_xlogdata(b->buf, b->len, &start, &end, &t, &p, &plen,
	    &err);
	ok(rc == LS_ERR_CORRUPT && strstr(err, "expected 'w'") != NULL,
	    "XLogData: wrong type rejected: %s", err);
}

static void
test_keepalive(struct bb *b)
{
	uint64_t end = 0;
	int64_t t = 0;
	bool reply = false;
	size_t i, bad = 0;

	bb_start(b, 'k', false);
	bb_u64(b, LSN2);
	bb_u64(b, (uint64_t)PG_TS);
	bb_u8(b, 1);
	ok(pgo_parse_keepalive(b->buf, b->len, &end, &t, &reply, &err) == 0 &&
	    end == LSN2 && t == PG_TS && reply,
	    "keepalive: WAL end, send time, reply requested");
	b->buf[17] = 0;
	ok(pgo_parse_keepalive(b->buf, b->len, &end, &t, &reply, &err) == 0 &&
	    !reply, "keepalive: no reply requested");
	for (i = 0; i < 18; i++) {
		if (pgo_parse_keepalive(b->buf, i, &end, &t, &reply, &err) !=
		    LS_ERR_CORRUPT)
			bad++;
	}
	ok(bad == 0, "keepalive: every truncation rejected");
	bb_u8(b, 0);
	ok(pgo_parse_keepalive(b->buf, b->len, &end, &t, &reply, &err) ==
	    LS_ERR_CORRUPT, "keepalive: trailing byte rejected");
	b->buf[0] = 'w';
	ok(pgo_parse_keepalive(b->buf, 18, &end, &t, &reply, &err) ==
	    LS_ERR_CORRUPT, "keepalive: wrong type rejected");
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
test_status(void)
{
	uint8_t out[PGO_STATUS_LEN];
	size_t n;

	memset(out, 0xee, sizeof(out));
	n = pgo_build_status(out, LSN2 + 1, LSN2, LSN1, PG_TS, true);
	ok(n == 34 && out[0] == 'r' && get_be64(out + 1) == LSN2 + 1 &&
	    get_be64(out + 9) == LSN2 && get_be64(out + 17) == LSN1 &&
	    (int64_t)get_be64(out + 25) == PG_TS && out[33] == 1,
	    "status update: 34 bytes, positions, clock, reply");
	n = pgo_build_status(out, 0, 0, 0, -5, false);
	ok(n == 34 && get_be64(out + 1) == 0 && out[33] == 0 &&
	    get_be64(out + 25) == (uint64_t)-5,
	    "status update: zeros, negative clock, no reply");
}

/* LSN text form. */

static void
test_lsn(void)
{
	static const char *bad[] = {
		"", "/", "0/", "/0", "16B374D848", "1/2/3", "g/0", " 1/0",
		"1/0 ", "123456789/0", "0/123456789", "+1/0", "1/-0", "1 /0",
		"0x1/0", "1/0\n",
	};
	char buf[32];
	uint64_t v = 0;
	size_t i, nbad = 0;

	ok(ls_lsn_parse("0/0", &v) == 0 && v == 0, "LSN 0/0");
	ok(ls_lsn_parse("16/B374D848", &v) == 0 && v == LSN1,
	    "LSN 16/B374D848");
	ok(ls_lsn_parse("ffffffff/b374d848", &v) == 0 &&
	    v == UINT64_C(0xffffffffb374d848), "LSN lower case, 8 digits");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ls_lsn_parse(bad[i], &v) != LS_ERR_INVALID) {
			diag("accepted \"%s\"", bad[i]);
			nbad++;
		}
	}
	ok(nbad == 0 && ls_lsn_parse(NULL, &v) == LS_ERR_INVALID,
	    "invalid LSN strings rejected");
	ls_lsn_format(0, buf);
	ok(strcmp(buf, "0/0") == 0, "format 0/0");
	ls_lsn_format(LSN1, buf);
	ok(strcmp(buf, "16/B374D848") == 0, "format 16/B374D848");
	ls_lsn_format(UINT64_MAX, buf);
	ok(strcmp(buf, "FFFFFFFF/FFFFFFFF") == 0 &&
	    ls_lsn_parse(buf, &v) == 0 && v == UINT64_MAX,
	    "format and parse round trip");
}

static void
test_names(void)
{
	ok(strcmp(pgo_type_name('c'), "Stream Commit") == 0 &&
	    strcmp(pgo_type_name('I'), "Insert") == 0 &&
	    pgo_type_name('x') == NULL, "message type names");
}

/* pgo_peek: the fields the agent classifies by, and its refusals. */
static void
test_peek(struct bb *b)
{
	struct pgo_peek pk;
	char *e = NULL;
	int r;

	ok(peek_mismatches == 0, "pgo_peek agrees with pgo_decode on every "
	    "message decoded above (%d mismatches)", peek_mismatches);
	build_insert(b, true);
	ok(pgo_peek(b->buf, 5, true, &pk, NULL) == 0 && pk.type == PGO_INSERT &&
	    pk.has_xid, "peek needs only the type and the streamed xid");
	r = pgo_peek(b->buf, 4, true, &pk, &e);
	ok(r == LS_ERR_CORRUPT && e != NULL && strstr(e, "truncated Insert") !=
	    NULL, "peek refuses a short streamed xid: %s", e ? e : "(none)");
	free(e);
	e = NULL;
	r = pgo_peek((const uint8_t *)"Z", 1, false, &pk, &e);
	ok(r == LS_ERR_CORRUPT && e != NULL &&
	    strstr(e, "unknown message type") != NULL,
	    "peek refuses an unknown type: %s", e ? e : "(none)");
	free(e);
	e = NULL;
	ok(pgo_peek((const uint8_t *)"M", 1, false, &pk, &e) == LS_ERR_CORRUPT,
	    "peek refuses a Message without its flags byte");
	free(e);
	ok(pgo_peek((const uint8_t *)"", 0, false, &pk, NULL) == LS_ERR_CORRUPT,
	    "peek refuses an empty message");
}

int
main(void)
{
	struct bb b = { NULL, 0, 0 };
	int s;

	if (pgo_decoder_new(&dec, &err) != 0)
		return 1;
	test_begin_commit(&b);
	test_origin(&b);
	for (s = 0; s < 2; s++) {
		test_relation(&b, s);
		test_type(&b, s);
		test_insert(&b, s);
		test_update(&b, s, 0);
		test_update(&b, s, 'K');
		test_update(&b, s, 'O');
		test_delete(&b, s, 'K');
		test_delete(&b, s, 'O');
		test_truncate(&b, s);
		test_message(&b, s, true);
		test_message(&b, s, false);
	}
	test_stream_control(&b);
	test_bad_counts(&b);
	test_bad_lengths(&b);
	test_bad_tags(&b);
	test_bad_framing(&b);
	test_reuse(&b);
	test_xlogdata(&b);
	test_keepalive(&b);
	test_status();
	test_lsn();
	test_names();
	test_peek(&b);
	pgo_decoder_free(dec);
	pgo_decoder_free(NULL);
	free(err);
	bb_free(&b);
	return tap_done();
}
