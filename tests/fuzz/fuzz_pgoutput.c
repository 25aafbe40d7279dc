/*
 * fuzz_pgoutput.c: libFuzzer target for the pgoutput decoder and the
 * replication envelope parsers, and pgo_peek against pgo_decode.
 *
 * Input: one byte whose low bit is in_stream, then the message.  The same
 * bytes are also tried as an XLogData message (whose payload is decoded in
 * turn), a keepalive, and an LSN string.  Whatever decodes is walked in full
 * so that ASan sees every pointer the decoder hands out, and its invariants
 * are checked with abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "pg/pgoutput.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void
check(bool cond)
{
	if (!cond)
		abort();
}

static void
walk_str(const char *s)
{
	check(s != NULL);
	sink += strlen(s);
}

static void
walk_tuple(const struct ls_tuple *t)
{
	const struct ls_value *v;
	uint16_t i;

	for (i = 0; i < t->ncols; i++) {
		v = &t->vals[i];
		if (v->kind == LS_VAL_NULL || v->kind == LS_VAL_UNCHANGED) {
			check(v->data == NULL && v->len == 0);
			continue;
		}
		check(v->kind == LS_VAL_TEXT || v->kind == LS_VAL_BINARY);
		check(v->data != NULL && v->data[v->len] == '\0');
		sink += (unsigned char)v->data[0];
	}
}

static void
walk_relation(const struct ls_relation *r)
{
	uint16_t i;

	walk_str(r->schema);
	walk_str(r->name);
	for (i = 0; i < r->ncols; i++) {
		walk_str(r->cols[i].name);
		sink += r->cols[i].type_oid;
	}
}

static void
walk_change(const struct ls_change *c)
{
	uint32_t i;

	walk_tuple(&c->old);
	walk_tuple(&c->new);
	for (i = 0; i < c->nrelids; i++)
		sink += c->relids[i];
	check(c->kind != LS_CHANGE_DELETE || c->old_kind != LS_OLD_NONE);
	check(c->kind != LS_CHANGE_TRUNCATE ||
	    (c->trunc_flags & ~(LS_TRUNCATE_CASCADE |
	    LS_TRUNCATE_RESTART_IDENTITY)) == 0);
}

static void
walk(const struct pgo_msg *m)
{
	check(pgo_type_name(m->type) != NULL);
	switch (m->type) {
	case PGO_ORIGIN:
		walk_str(m->u.origin.name);
		break;
	case PGO_RELATION:
		walk_relation(&m->u.rel);
		break;
	case PGO_TYPE:
		walk_str(m->u.type.schema);
		walk_str(m->u.type.name);
		break;
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
	case PGO_TRUNCATE:
		walk_change(&m->u.change);
		break;
	case PGO_MESSAGE:
		walk_str(m->u.message.prefix);
		check(m->u.message.content[m->u.message.len] == '\0');
		break;
	}
}

/*
 * Decode one message; the error message must be set exactly on failure.
 * Whatever decodes peeks (pgo_peek) to the same classification.
 */
static void
decode(struct pgo_decoder *d, const uint8_t *buf, size_t len, bool in_stream)
{
	struct pgo_peek pk;
	struct pgo_msg m;
	char *err = NULL;
	int rc, prc;

	prc = pgo_peek(buf, len, in_stream, &pk, &err);
	check(prc == 0 ? err == NULL : prc < 0 && err != NULL);
	free(err);
	err = NULL;
	rc = pgo_decode(d, buf, len, in_stream, &m, &err);
	check(rc == 0 ? err == NULL : rc < 0 && err != NULL);
	if (rc == 0) {
		walk(&m);
		check(prc == 0 && pk.type == m.type &&
		    (!pk.has_xid || (m.has_xid && pk.xid == m.xid)) &&
		    (m.type != PGO_MESSAGE ||
		    pk.transactional == m.u.message.transactional));
	}
	free(err);
}

static void
envelope(struct pgo_decoder *d, const uint8_t *buf, size_t len,
    bool in_stream)
{
	uint64_t start, end;
	int64_t t;
	const uint8_t *payload;
	size_t plen;
	bool reply;
	char *err = NULL;

	if (pgo_parse_xlogdata(buf, len, &start, &end, &t, &payload, &plen,
	    &err) == 0) {
		check(payload + plen == buf + len);
		decode(d, payload, plen, in_stream);
	}
	free(err);
	err = NULL;
	pgo_parse_keepalive(buf, len, &end, &t, &reply, &err);
	free(err);
}

static void
lsn(const uint8_t *buf, size_t len)
{
	char *s, out[32];
	uint64_t v, v2;

	if (len > 64 || (s = malloc(len + 1)) == NULL)
		return;
	memcpy(s, buf, len);
	s[len] = '\0';
	if (ls_lsn_parse(s, &v) == 0) {
		ls_lsn_format(v, out);
		check(ls_lsn_parse(out, &v2) == 0 && v2 == v);
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgo_decoder *d = NULL;
	bool in_stream;

	if (size < 1 || pgo_decoder_new(&d, NULL) != 0)
		return 0;
	in_stream = (data[0] & 1) != 0;
	decode(d, data + 1, size - 1, in_stream);
	decode(d, data + 1, size - 1, !in_stream);
	envelope(d, data + 1, size - 1, in_stream);
	lsn(data + 1, size - 1);
	pgo_decoder_free(d);
	return 0;
}
