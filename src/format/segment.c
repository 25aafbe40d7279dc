/*
 * segment.c: segment format v1 writer and reader (spec:
 * schema/segment-format.md).
 *
 * Writer: records are packed with msgpack-c, framed with a 4-byte length and
 * deflated into an anonymous spool file; finish() writes prefix + header,
 * then copies (and, with a key, encrypts) the spool, then the trailer.
 * Reader: pread, SHA-256, decrypt, inflate straight into a record buffer
 * that grows only as bytes actually arrive; records are decoded with the
 * bounds-checked mp cursor and checked for structure as they go.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "common/error.h"
#include "common/util.h"
#include "format/container.h"
#include "format/mp.h"
#include "format/relset.h"
#include "format/segment.h"

#define MAGIC		"LSEG"
#define MAX_COLUMNS	1664		/* PostgreSQL's MaxTupleAttributeNumber */
#define UNCHANGED_EXT	0		/* msgpack ext type of unchanged TOAST */

/* Header keys, each with a bit in the seen mask; the first HK_REQUIRED
 * are required, the heartbeat pair is optional (both or neither). */
enum {
	HK_SEGNO, HK_GENERATION, HK_SYSTEM_ID, HK_DATABASE, HK_FIRST_LSN,
	HK_LAST_LSN, HK_END_LSN, HK_FIRST_TIME, HK_LAST_TIME, HK_CREATED,
	HK_TXNS, HK_CHANGES, HK_RECORDS, HK_PREV, HK_REQUIRED,
	HK_HB_LSN = HK_REQUIRED, HK_HB_TIME, HK_COUNT
};
static const char *const header_keys[HK_COUNT] = {
	"segno", "generation", "system_id", "database", "first_lsn",
	"last_lsn", "end_lsn", "first_time", "last_time", "created",
	"txns", "changes", "records", "prev_sha256", "heartbeat_lsn",
	"heartbeat_time"
};

void
segment_object_key(const char *generation, uint64_t segno, char out[64])
{
	snprintf(out, 64, "%s/seg/%016" PRIx64, generation, segno);
}

static int
valid_generation(const char *g, size_t len)
{
	size_t i;

	if (len != 16)
		return 0;
	for (i = 0; i < 16; i++)
		if (!((g[i] >= '0' && g[i] <= '9') || (g[i] >= 'a' && g[i] <= 'f')))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Writer                                                               */
/* ------------------------------------------------------------------ */

struct segment_writer {
	uint64_t	 segno;
	char		 generation[17];
	uint64_t	 system_id;
	char		 database[64];
	uint8_t		 prev[32];
	bool		 has_prev;

	struct container_writer cw;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	uint64_t	 records, txns, changes;
	uint64_t	 first_lsn, last_lsn, end_lsn;
	int64_t		 first_time, last_time;
	bool		 has_heartbeat;
	uint64_t	 heartbeat_lsn;
	int64_t		 heartbeat_time;
	bool		 in_txn;
	struct ls_txn	 cur;
	uint64_t	 cur_changes;
	struct relset	 rels;
	bool		 failed;	/* after any error the writer is unusable */
};

int
segment_writer_new(const struct segment_writer_opts *o,
    struct segment_writer **out, char **errmsg)
{
	struct segment_writer *w;
	int r;

	if (o->segno == 0 || o->generation == NULL ||
	    !valid_generation(o->generation, strlen(o->generation)) ||
	    o->database == NULL || strlen(o->database) >= 64 ||
	    (o->segno > 1 && o->prev_sha256 == NULL))
		return ls_errf(errmsg, LS_ERR_INVALID, "segment writer: bad options");
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	w->segno = o->segno;
	memcpy(w->generation, o->generation, 17);
	w->system_id = o->system_id;
	snprintf(w->database, sizeof(w->database), "%s", o->database);
	if ((w->has_prev = o->prev_sha256 != NULL))
		memcpy(w->prev, o->prev_sha256, 32);
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
	if ((r = container_writer_init(&w->cw, o->spool_dir, &o->comp, o->key,
	    errmsg)) != 0) {
		segment_writer_free(w);
		return r;
	}
	*out = w;
	return 0;
}

void
segment_writer_free(struct segment_writer *w)
{
	if (w == NULL)
		return;
	container_writer_cleanup(&w->cw);
	msgpack_sbuffer_destroy(&w->sb);
	relset_clear(&w->rels);
	free(w);
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s != NULL ? s : "", len);
}

static void
pack_kind(msgpack_packer *pk, char kind)
{
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, &kind, 1);
}

static void
pack_tuple(msgpack_packer *pk, const struct ls_tuple *t)
{
	const struct ls_value *v;
	uint16_t i;

	msgpack_pack_array(pk, t->ncols);
	for (i = 0; i < t->ncols; i++) {
		v = &t->vals[i];
		switch (v->kind) {
		case LS_VAL_TEXT:
			msgpack_pack_str(pk, v->len);
			msgpack_pack_str_body(pk, v->data, v->len);
			break;
		case LS_VAL_BINARY:
			msgpack_pack_bin(pk, v->len);
			msgpack_pack_bin_body(pk, v->data, v->len);
			break;
		case LS_VAL_UNCHANGED:
			msgpack_pack_ext(pk, 0, UNCHANGED_EXT);
			break;
		default:
			msgpack_pack_nil(pk);
		}
	}
}

static void
pack_relation(msgpack_packer *pk, const struct ls_relation *rel)
{
	const struct ls_column *c;
	uint16_t i;

	msgpack_pack_array(pk, 6);
	pack_kind(pk, 'R');
	msgpack_pack_uint32(pk, rel->oid);
	pack_str(pk, rel->schema);
	pack_str(pk, rel->name);
	pack_kind(pk, rel->replident);
	msgpack_pack_array(pk, rel->ncols);
	for (i = 0; i < rel->ncols; i++) {
		c = &rel->cols[i];
		msgpack_pack_array(pk, 4);
		pack_str(pk, c->name);
		msgpack_pack_uint32(pk, c->type_oid);
		msgpack_pack_int32(pk, c->typmod);
		msgpack_pack_uint8(pk, c->flags);
	}
}

static void
pack_change(msgpack_packer *pk, const struct ls_change *c)
{
	uint32_t i;

	switch (c->kind) {
	case LS_CHANGE_INSERT:
		msgpack_pack_array(pk, 3);
		pack_kind(pk, 'I');
		msgpack_pack_uint32(pk, c->relid);
		pack_tuple(pk, &c->new);
		break;
	case LS_CHANGE_UPDATE:
		msgpack_pack_array(pk, 5);
		pack_kind(pk, 'U');
		msgpack_pack_uint32(pk, c->relid);
		if (c->old_kind == LS_OLD_NONE) {
			msgpack_pack_nil(pk);
			msgpack_pack_nil(pk);
		} else {
			pack_kind(pk, c->old_kind);
			pack_tuple(pk, &c->old);
		}
		pack_tuple(pk, &c->new);
		break;
	case LS_CHANGE_DELETE:
		msgpack_pack_array(pk, 4);
		pack_kind(pk, 'D');
		msgpack_pack_uint32(pk, c->relid);
		pack_kind(pk, c->old_kind);
		pack_tuple(pk, &c->old);
		break;
	case LS_CHANGE_TRUNCATE:
		msgpack_pack_array(pk, 3);
		pack_kind(pk, 'T');
		msgpack_pack_uint8(pk, c->trunc_flags);
		msgpack_pack_array(pk, c->nrelids);
		for (i = 0; i < c->nrelids; i++)
			msgpack_pack_uint32(pk, c->relids[i]);
		break;
	}
}

static void
pack_record(msgpack_packer *pk, const struct ls_record *rec)
{
	const struct ls_txn *t = &rec->u.txn;

	switch (rec->kind) {
	case LS_REC_RELATION:
		pack_relation(pk, &rec->u.rel);
		break;
	case LS_REC_BEGIN:
		msgpack_pack_array(pk, 6);
		pack_kind(pk, 'B');
		msgpack_pack_uint32(pk, t->xid);
		msgpack_pack_uint64(pk, t->commit_lsn);
		msgpack_pack_uint64(pk, t->end_lsn);
		msgpack_pack_int64(pk, t->commit_time);
		if (t->origin != NULL)
			pack_str(pk, t->origin);
		else
			msgpack_pack_nil(pk);
		break;
	case LS_REC_COMMIT:
		msgpack_pack_array(pk, 4);
		pack_kind(pk, 'C');
		msgpack_pack_uint64(pk, t->commit_lsn);
		msgpack_pack_uint64(pk, t->end_lsn);
		msgpack_pack_uint64(pk, t->nchanges);
		break;
	case LS_REC_CHANGE:
		pack_change(pk, &rec->u.change);
		break;
	case LS_REC_SEQUENCE:
		msgpack_pack_array(pk, 6);
		pack_kind(pk, 'S');
		pack_str(pk, rec->u.seq.schema);
		pack_str(pk, rec->u.seq.name);
		msgpack_pack_int64(pk, rec->u.seq.last_value);
		if (rec->u.seq.is_called)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		msgpack_pack_uint64(pk, rec->u.seq.lsn);
		break;
	case LS_REC_MESSAGE:
		msgpack_pack_array(pk, 5);
		pack_kind(pk, 'M');
		msgpack_pack_uint64(pk, rec->u.msg.lsn);
		if (rec->u.msg.transactional)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		pack_str(pk, rec->u.msg.prefix);
		msgpack_pack_bin(pk, rec->u.msg.len);
		msgpack_pack_bin_body(pk, rec->u.msg.content, rec->u.msg.len);
		break;
	}
}

/* Check that a change fits the relations added so far. */
static int
valid_tuple(const struct ls_tuple *t)
{
	const struct ls_value *v;
	uint16_t i;

	for (i = 0; i < t->ncols; i++) {
		v = &t->vals[i];
		if (v->kind != LS_VAL_NULL && v->kind != LS_VAL_UNCHANGED &&
		    v->kind != LS_VAL_TEXT && v->kind != LS_VAL_BINARY)
			return 0;
		if (v->kind == LS_VAL_TEXT && memchr(v->data, '\0', v->len) != NULL)
			return 0;
	}
	return 1;
}

static int
check_change(const struct relset *rels, const struct ls_change *c)
{
	uint16_t ncols;
	uint32_t i;

	if (c->kind == LS_CHANGE_TRUNCATE) {
		for (i = 0; i < c->nrelids; i++)
			if (!relset_get(rels, c->relids[i], &ncols))
				return -1;
		return c->nrelids > 0 && c->trunc_flags <= 3 ? 0 : -1;
	}
	if (c->kind != LS_CHANGE_INSERT && c->kind != LS_CHANGE_UPDATE &&
	    c->kind != LS_CHANGE_DELETE)
		return -1;
	if (!relset_get(rels, c->relid, &ncols))
		return -1;
	if (c->old_kind != LS_OLD_NONE && c->old_kind != LS_OLD_KEY &&
	    c->old_kind != LS_OLD_FULL)
		return -1;
	if (c->kind == LS_CHANGE_DELETE)
		return c->old_kind != LS_OLD_NONE && c->old.ncols == ncols &&
		    valid_tuple(&c->old) ? 0 : -1;
	if (c->kind == LS_CHANGE_INSERT && c->old_kind != LS_OLD_NONE)
		return -1;
	if (c->old_kind != LS_OLD_NONE &&
	    (c->old.ncols != ncols || !valid_tuple(&c->old)))
		return -1;
	return c->new.ncols == ncols && valid_tuple(&c->new) ? 0 : -1;
}

/* Enforce record order; update counters.  0 or -1. */
static int
writer_track(struct segment_writer *w, const struct ls_record *rec)
{
	const struct ls_txn *t = &rec->u.txn;

	switch (rec->kind) {
	case LS_REC_RELATION:
		if (rec->u.rel.oid == 0 || rec->u.rel.ncols > MAX_COLUMNS || rec->u.rel.replident == '\0' ||
		    strchr("dnfi", rec->u.rel.replident) == NULL)
			return -1;
		return relset_put(&w->rels, rec->u.rel.oid, rec->u.rel.ncols);
	case LS_REC_BEGIN:
		if (w->in_txn || t->end_lsn < t->commit_lsn ||
		    (w->txns > 0 && t->commit_lsn <= w->last_lsn))
			return -1;
		w->in_txn = true;
		w->cur = *t;
		w->cur_changes = 0;
		return 0;
	case LS_REC_CHANGE:
		if (!w->in_txn || check_change(&w->rels, &rec->u.change) != 0)
			return -1;
		w->cur_changes++;
		w->changes++;
		return 0;
	case LS_REC_COMMIT:
		if (!w->in_txn || t->commit_lsn != w->cur.commit_lsn ||
		    t->end_lsn != w->cur.end_lsn)
			return -1;
		if (w->txns++ == 0) {
			w->first_lsn = w->cur.commit_lsn;
			w->first_time = w->cur.commit_time;
		}
		w->last_lsn = w->cur.commit_lsn;
		w->end_lsn = w->cur.end_lsn;
		w->last_time = w->cur.commit_time;
		w->in_txn = false;
		return 0;
	case LS_REC_MESSAGE:
		return rec->u.msg.transactional == w->in_txn ? 0 : -1;
	case LS_REC_SEQUENCE:
		return w->in_txn ? -1 : 0;
	}
	return -1;
}

int
segment_writer_add(struct segment_writer *w, const struct ls_record *rec,
    char **errmsg)
{
	struct ls_record fixed;
	uint8_t len[4];
	int r;

	if (w->failed)
		return ls_errf(errmsg, LS_ERR_INVALID, "segment %016" PRIx64
		    ": writer already failed", w->segno);
	w->failed = true;		/* until this record is fully written */
	if (writer_track(w, rec) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "segment %016" PRIx64
		    ": record '%c' out of order or inconsistent", w->segno,
		    rec->kind);
	if (rec->kind == LS_REC_COMMIT) {	/* the count is the writer's */
		fixed = *rec;
		fixed.u.txn.nchanges = w->cur_changes;
		rec = &fixed;
	}
	msgpack_sbuffer_clear(&w->sb);
	pack_record(&w->pk, rec);
	if (w->sb.size > SEGMENT_RECORD_MAX)
		return ls_errf(errmsg, LS_ERR_TOOBIG, "segment %016" PRIx64
		    ": record of %zu bytes exceeds the 1 GiB limit", w->segno,
		    w->sb.size);
	len[0] = (uint8_t)(w->sb.size >> 24);
	len[1] = (uint8_t)(w->sb.size >> 16);
	len[2] = (uint8_t)(w->sb.size >> 8);
	len[3] = (uint8_t)w->sb.size;
	w->records++;
	if ((r = container_writer_write(&w->cw, len, 4, errmsg)) != 0 ||
	    (r = container_writer_write(&w->cw, w->sb.data, w->sb.size,
	    errmsg)) != 0)
		return r;
	w->failed = false;
	return 0;
}

void
segment_writer_heartbeat(struct segment_writer *w, uint64_t lsn, int64_t time)
{
	w->has_heartbeat = true;
	w->heartbeat_lsn = lsn;
	w->heartbeat_time = time;
}

bool
segment_writer_has_relation(const struct segment_writer *w, uint32_t oid)
{
	uint16_t n;

	return relset_get(&w->rels, oid, &n) == 1;
}

uint64_t
segment_writer_bytes(const struct segment_writer *w)
{
	return container_writer_bytes(&w->cw);
}

uint64_t
segment_writer_txns(const struct segment_writer *w)
{
	return w->txns;
}

bool
segment_writer_in_txn(const struct segment_writer *w)
{
	return w->in_txn;
}

static void
pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void
pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	pack_str(pk, k);
	msgpack_pack_int64(pk, v);
}

/* The header map, into w->sb. */
static void
pack_header(struct segment_writer *w, const struct segment_header *h,
    const struct container_crypto *cc)
{
	msgpack_packer *pk = &w->pk;

	msgpack_sbuffer_clear(&w->sb);
	/* + the container's three */
	msgpack_pack_map(pk, HK_REQUIRED + 3 + (h->has_heartbeat ? 2 : 0));
	pack_kv_uint(pk, "segno", h->segno);
	pack_str(pk, "generation");
	pack_str(pk, h->generation);
	pack_kv_uint(pk, "system_id", h->system_id);
	pack_str(pk, "database");
	pack_str(pk, h->database);
	pack_kv_uint(pk, "first_lsn", h->first_lsn);
	pack_kv_uint(pk, "last_lsn", h->last_lsn);
	pack_kv_uint(pk, "end_lsn", h->end_lsn);
	pack_kv_int(pk, "first_time", h->first_time);
	pack_kv_int(pk, "last_time", h->last_time);
	pack_kv_int(pk, "created", h->created);
	pack_kv_uint(pk, "txns", h->txns);
	pack_kv_uint(pk, "changes", h->changes);
	pack_kv_uint(pk, "records", h->records);
	pack_str(pk, "prev_sha256");
	if (h->has_prev)
		msgpack_pack_bin_with_body(pk, h->prev_sha256, 32);
	else
		msgpack_pack_nil(pk);
	if (h->has_heartbeat) {
		pack_kv_uint(pk, "heartbeat_lsn", h->heartbeat_lsn);
		pack_kv_int(pk, "heartbeat_time", h->heartbeat_time);
	}
	container_pack_common(pk, h->codec, h->body_len, cc);
}

static void
fill_header(const struct segment_writer *w, const struct container_crypto *cc,
    struct segment_header *h)
{
	memset(h, 0, sizeof(*h));
	h->version = SEGMENT_VERSION;
	h->segno = w->segno;
	memcpy(h->generation, w->generation, 17);
	h->system_id = w->system_id;
	memcpy(h->database, w->database, sizeof(h->database));
	h->first_lsn = w->first_lsn;
	h->last_lsn = w->last_lsn;
	h->end_lsn = w->end_lsn;
	h->first_time = w->first_time;
	h->last_time = w->last_time;
	h->created = ls_now_us();
	h->txns = w->txns;
	h->changes = w->changes;
	h->records = w->records;
	h->has_heartbeat = w->has_heartbeat;
	h->heartbeat_lsn = w->heartbeat_lsn;
	h->heartbeat_time = w->heartbeat_time;
	if ((h->has_prev = w->has_prev))
		memcpy(h->prev_sha256, w->prev, 32);
	h->body_len = container_writer_bytes(&w->cw);
	h->codec = w->cw.codec;
	h->encrypted = cc->encrypted;
	memcpy(h->nonce, cc->nonce, sizeof(h->nonce));
	memcpy(h->key_id, cc->key_id, sizeof(h->key_id));
}

int
segment_writer_finish(struct segment_writer *w, int out_fd,
    struct segment_header *hp, uint8_t sha256_out[32], char **errmsg)
{
	struct container_crypto cc;
	struct segment_header h;
	int r;

	if (w->in_txn || w->failed)
		return ls_errf(errmsg, LS_ERR_INVALID, "segment %016" PRIx64
		    ": finish inside a transaction, after an error or a second "
		    "time", w->segno);
	/*
	 * A writer finishes once, whether or not the emit succeeds: sealed, its
	 * body is complete, and a second seal would append an empty zstd frame
	 * that the reader rejects (the agent frees a writer whose upload
	 * failed; it must never store it again).
	 */
	w->failed = true;
	if ((r = container_writer_seal(&w->cw, &cc, errmsg)) != 0)
		return r;
	fill_header(w, &cc, &h);
	pack_header(w, &h, &cc);
	if ((r = container_writer_emit(&w->cw, out_fd, MAGIC, &cc, w->sb.data,
	    w->sb.size, sha256_out, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "segment %016" PRIx64, w->segno);
	h.header_len = w->sb.size;
	h.total_len = container_total_len(h.header_len, h.body_len, h.encrypted);
	if (hp != NULL)
		*hp = h;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Header parsing                                                       */
/* ------------------------------------------------------------------ */

static int
hdr_key(const char *k, uint32_t len)
{
	int i;

	for (i = 0; i < HK_COUNT; i++)
		if (strlen(header_keys[i]) == len && memcmp(header_keys[i], k, len) == 0)
			return i;
	return -1;
}

static int
hdr_string(struct mp_cur *c, char *dst, size_t cap)
{
	const char *s;
	uint32_t len;

	if (mp_str(c, &s, &len) != 0 || len >= cap || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

static int
hdr_value(struct mp_cur *c, int key, struct segment_header *h)
{
	const uint8_t *b;
	uint32_t len;

	switch (key) {
	case HK_SEGNO:		return mp_uint(c, &h->segno);
	case HK_SYSTEM_ID:	return mp_uint(c, &h->system_id);
	case HK_FIRST_LSN:	return mp_uint(c, &h->first_lsn);
	case HK_LAST_LSN:	return mp_uint(c, &h->last_lsn);
	case HK_END_LSN:	return mp_uint(c, &h->end_lsn);
	case HK_FIRST_TIME:	return mp_int(c, &h->first_time);
	case HK_LAST_TIME:	return mp_int(c, &h->last_time);
	case HK_CREATED:	return mp_int(c, &h->created);
	case HK_TXNS:		return mp_uint(c, &h->txns);
	case HK_CHANGES:	return mp_uint(c, &h->changes);
	case HK_RECORDS:	return mp_uint(c, &h->records);
	case HK_HB_LSN:		return mp_uint(c, &h->heartbeat_lsn);
	case HK_HB_TIME:	return mp_int(c, &h->heartbeat_time);
	case HK_DATABASE:
		return hdr_string(c, h->database, sizeof(h->database));
	case HK_GENERATION:
		if (hdr_string(c, h->generation, sizeof(h->generation)) != 0)
			return -1;
		return valid_generation(h->generation, strlen(h->generation)) ? 0 : -1;
	case HK_PREV:
		if (mp_peek(c) == MP_NIL) {
			h->has_prev = false;
			return mp_nil(c);
		}
		h->has_prev = true;
		if (mp_bin(c, &b, &len) != 0 || len != 32)
			return -1;
		memcpy(h->prev_sha256, b, 32);
		return 0;
	}
	return -1;
}

static int
parse_header_map(const uint8_t *buf, size_t len, struct segment_header *h,
    const char **why)
{
	struct mp_cur c = { buf, buf + len };
	struct container_crypto cc = { 0 };
	uint32_t n, i, klen;
	uint32_t seen = 0, common = 0;
	const char *k;
	int key, r;

	*why = "header is not a msgpack map";
	if (mp_map(&c, &n) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		*why = "malformed header entry";
		if (mp_str(&c, &k, &klen) != 0)
			return -1;
		if (klen == 11 && memcmp(k, "compression", 11) == 0)
			*why = "compression is neither zlib nor zstd (a newer "
			    "logship wrote it? upgrade logship)";
		r = container_parse_common(&c, k, klen, &h->codec, &h->body_len,
		    &cc, &common);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if ((key = hdr_key(k, klen)) < 0) {
			if (mp_skip(&c, 8) != 0)	/* unknown keys are skipped */
				return -1;
			continue;
		}
		*why = header_keys[key];
		if ((seen & (1u << key)) || hdr_value(&c, key, h) != 0)
			return -1;
		seen |= 1u << key;
	}
	*why = "trailing bytes after the header map";
	if (c.p != c.end)
		return -1;
	*why = "a required header field is missing";
	if ((seen & ((1u << HK_REQUIRED) - 1)) != (1u << HK_REQUIRED) - 1 ||
	    common != CONTAINER_COMMON_ALL)
		return -1;
	*why = "heartbeat_lsn and heartbeat_time must come together";
	if (!(seen & (1u << HK_HB_LSN)) != !(seen & (1u << HK_HB_TIME)))
		return -1;
	h->has_heartbeat = (seen & (1u << HK_HB_LSN)) != 0;
	h->encrypted = cc.encrypted;
	memcpy(h->nonce, cc.nonce, sizeof(h->nonce));
	memcpy(h->key_id, cc.key_id, sizeof(h->key_id));
	return 0;
}

/* Semantic checks on a parsed header. */
static const char *
header_problem(const struct segment_header *h)
{
	if (h->segno == 0)
		return "segno is 0";
	if (h->has_prev != (h->segno > 1))
		return "prev_sha256 must be present exactly when segno > 1";
	if (h->records < h->txns * 2 || h->txns > h->records)
		return "record count is smaller than the transactions need";
	if (h->txns > 0 && (h->first_lsn > h->last_lsn || h->end_lsn < h->last_lsn))
		return "LSN range is inverted";
	return NULL;
}

/* Parse and check the header map of hlen bytes. */
static int
parse_header(const uint8_t *hbuf, size_t hlen, bool flag_encrypted,
    const char *name, struct segment_header *h, char **errmsg)
{
	const char *why;

	memset(h, 0, sizeof(*h));
	if (parse_header_map(hbuf, hlen, h, &why) != 0)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: bad header: %s",
		    name, why);
	if (h->encrypted != flag_encrypted)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: bad header: "
		    "encryption flag and header disagree", name);
	if ((why = header_problem(h)) != NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: bad header: %s",
		    name, why);
	h->version = SEGMENT_VERSION;
	h->header_len = hlen;
	h->total_len = container_total_len(hlen, h->body_len, h->encrypted);
	return 0;
}

int
segment_parse_header(const uint8_t *buf, size_t len, const char *name,
    struct segment_header *h, size_t *need, char **errmsg)
{
	uint32_t hlen;
	bool enc;
	int r;

	memset(h, 0, sizeof(*h));
	r = container_parse_prefix(buf, len, MAGIC, name, &hlen, &enc, need,
	    errmsg);
	if (r != 0)
		return r;
	return parse_header(buf + SEGMENT_PREFIX_LEN, hlen, enc, name, h, errmsg);
}

/* ------------------------------------------------------------------ */
/* Reader                                                               */
/* ------------------------------------------------------------------ */

struct segment_reader {
	struct container_reader c;
	struct segment_header h;

	uint8_t		*rec;		/* current record's bytes */
	size_t		 rec_cap;
	char		*arena;		/* NUL-terminated copies */
	size_t		 arena_cap, arena_used;
	struct ls_value	*vals;		/* new tuple, then old tuple */
	struct ls_column *cols;
	uint32_t	*relids;
	size_t		 relids_cap;

	uint64_t	 nrec, txns, changes;
	uint64_t	 first_lsn, last_lsn, end_lsn;
	bool		 in_txn;
	struct ls_txn	 cur;
	uint64_t	 cur_changes;
	struct relset	 rels;
	uint8_t		 sha[32];	/* trailer, once done */
	bool		 done;
};

int
segment_reader_open(int fd, const char *name, const uint8_t *key,
    struct segment_reader **out, char **errmsg)
{
	struct segment_reader *r;
	struct container_crypto cc;
	uint8_t *hbuf = NULL;
	size_t hlen = 0;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "%s: out of memory", name);
	rc = container_reader_init(&r->c, fd, name, key, MAGIC, &hbuf, &hlen,
	    errmsg);
	if (rc == 0)
		rc = parse_header(hbuf, hlen, r->c.flag_encrypted, name, &r->h,
		    errmsg);
	if (rc == 0) {
		cc.encrypted = r->h.encrypted;
		memcpy(cc.nonce, r->h.nonce, sizeof(cc.nonce));
		memcpy(cc.key_id, r->h.key_id, sizeof(cc.key_id));
		rc = container_reader_start(&r->c, r->h.codec, r->h.body_len, &cc,
		    hbuf, hlen, errmsg);
	}
	free(hbuf);
	if (rc != 0) {
		segment_reader_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

const struct segment_header *
segment_reader_header(const struct segment_reader *r)
{
	return &r->h;
}

void
segment_reader_free(struct segment_reader *r)
{
	if (r == NULL)
		return;
	container_reader_cleanup(&r->c);
	relset_clear(&r->rels);
	free(r->rec);
	free(r->arena);
	free(r->vals);
	free(r->cols);
	free(r->relids);
	free(r);
}

static int
body_read(struct segment_reader *r, void *dst, size_t len, char **errmsg)
{
	size_t got;

	return container_read(&r->c, dst, len, &got, true, errmsg);
}

/* Read the next framed record into r->rec; *len its size. */
static int
next_frame(struct segment_reader *r, size_t *len, char **errmsg)
{
	uint8_t lb[4];
	size_t want, got = 0, step;
	uint8_t *bigger;
	int rc;

	if ((rc = body_read(r, lb, 4, errmsg)) != 0)
		return rc == LS_ERR_CORRUPT ? container_fail(&r->c, errmsg, rc,
		    "compressed body ends inside record %" PRIu64, r->nrec + 1) : rc;
	want = (size_t)lb[0] << 24 | (size_t)lb[1] << 16 | (size_t)lb[2] << 8 | lb[3];
	if (want == 0 || want > SEGMENT_RECORD_MAX)
		return container_fail(&r->c, errmsg, LS_ERR_CORRUPT, "record %" PRIu64
		    " has length %zu (limit %u)", r->nrec + 1, want,
		    SEGMENT_RECORD_MAX);
	/* Grow only as bytes arrive, so a lying length costs nothing. */
	while (got < want) {
		step = want - got < (1u << 20) ? want - got : (1u << 20);
		if (got + step > r->rec_cap) {
			if ((bigger = realloc(r->rec, got + step)) == NULL)
				return container_fail(&r->c, errmsg, LS_ERR_NOMEM, "out of memory");
			r->rec = bigger;
			r->rec_cap = got + step;
		}
		if ((rc = body_read(r, r->rec + got, step, errmsg)) != 0)
			return rc;
		got += step;
	}
	*len = want;
	return 0;
}

/* Copy a msgpack string into the arena, NUL-terminated. */
static int
dec_str(struct segment_reader *r, struct mp_cur *c, const char **out)
{
	const char *s;
	uint32_t len;
	char *dst;

	if (mp_str(c, &s, &len) != 0 || r->arena_used + len + 1 > r->arena_cap ||
	    memchr(s, '\0', len) != NULL)
		return -1;
	dst = r->arena + r->arena_used;
	memcpy(dst, s, len);
	dst[len] = '\0';
	r->arena_used += len + 1;
	*out = dst;
	return 0;
}

static int
dec_strornil(struct segment_reader *r, struct mp_cur *c, const char **out)
{
	*out = NULL;
	if (mp_peek(c) == MP_NIL)
		return mp_nil(c);
	return dec_str(r, c, out);
}

static int
dec_u32(struct mp_cur *c, uint32_t *out)
{
	uint64_t v;

	if (mp_uint(c, &v) != 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A one-character string. */
static int
dec_char(struct mp_cur *c, char *out)
{
	const char *s;
	uint32_t len;

	if (mp_str(c, &s, &len) != 0 || len != 1)
		return -1;
	*out = s[0];
	return 0;
}

static int
dec_value(struct segment_reader *r, struct mp_cur *c, struct ls_value *v)
{
	const uint8_t *b = NULL;
	uint32_t len = 0;
	int8_t et = 0;

	v->data = NULL;
	v->len = 0;
	switch (mp_peek(c)) {
	case MP_NIL:
		v->kind = LS_VAL_NULL;
		return mp_nil(c);
	case MP_STR:
		v->kind = LS_VAL_TEXT;
		if (dec_str(r, c, &v->data) != 0)	/* refuses embedded NULs */
			return -1;
		v->len = (uint32_t)strlen(v->data);
		return 0;
	case MP_BIN:
		v->kind = LS_VAL_BINARY;
		if (mp_bin(c, &b, &v->len) != 0)
			return -1;
		v->data = (const char *)b;
		return 0;
	case MP_EXT:
		v->kind = LS_VAL_UNCHANGED;
		if (mp_ext(c, &et, &b, &len) != 0 || et != UNCHANGED_EXT || len != 0)
			return -1;
		return 0;
	default:
		return -1;
	}
}

/* A tuple of exactly ncols values into vals. */
static int
dec_tuple(struct segment_reader *r, struct mp_cur *c, uint16_t ncols,
    struct ls_value *vals, struct ls_tuple *t)
{
	uint32_t n, i;

	if (mp_array(c, &n) != 0 || n != ncols)
		return -1;
	for (i = 0; i < n; i++)
		if (dec_value(r, c, &vals[i]) != 0)
			return -1;
	t->ncols = ncols;
	t->vals = vals;
	return 0;
}

static int
dec_relation(struct segment_reader *r, struct mp_cur *c, struct ls_relation *rel)
{
	uint32_t n, i, m;
	uint64_t flags;
	int64_t typmod;

	if (dec_u32(c, &rel->oid) != 0 || rel->oid == 0 ||
	    dec_str(r, c, &rel->schema) != 0 || dec_str(r, c, &rel->name) != 0 ||
	    dec_char(c, &rel->replident) != 0 ||
	    strchr("dnfi", rel->replident) == NULL || rel->replident == '\0' ||
	    mp_array(c, &n) != 0 || n > MAX_COLUMNS)
		return -1;
	for (i = 0; i < n; i++) {
		struct ls_column *col = &r->cols[i];
		if (mp_array(c, &m) != 0 || m != 4 ||
		    dec_str(r, c, &col->name) != 0 ||
		    dec_u32(c, &col->type_oid) != 0 ||
		    mp_int(c, &typmod) != 0 || typmod < INT32_MIN ||
		    typmod > INT32_MAX || mp_uint(c, &flags) != 0 || flags > 255)
			return -1;
		col->typmod = (int32_t)typmod;
		col->flags = (uint8_t)flags;
	}
	rel->ncols = (uint16_t)n;
	rel->cols = r->cols;
	return relset_put(&r->rels, rel->oid, rel->ncols) == 0 ? 0 : -1;
}

static int
dec_old(struct segment_reader *r, struct mp_cur *c, uint16_t ncols,
    struct ls_change *ch, bool optional)
{
	ch->old_kind = LS_OLD_NONE;
	if (optional && mp_peek(c) == MP_NIL) {
		if (mp_nil(c) != 0 || mp_nil(c) != 0)
			return -1;
		return 0;
	}
	if (dec_char(c, &ch->old_kind) != 0 ||
	    (ch->old_kind != LS_OLD_KEY && ch->old_kind != LS_OLD_FULL))
		return -1;
	return dec_tuple(r, c, ncols, r->vals + MAX_COLUMNS, &ch->old);
}

static int
dec_truncate(struct segment_reader *r, struct mp_cur *c, struct ls_change *ch)
{
	uint64_t flags;
	uint32_t n, i;
	uint16_t ncols;
	uint32_t *bigger;

	if (mp_uint(c, &flags) != 0 || flags > 3 || mp_array(c, &n) != 0 || n == 0)
		return -1;
	if (n > r->relids_cap) {
		if ((bigger = realloc(r->relids, n * sizeof(*bigger))) == NULL)
			return -1;
		r->relids = bigger;
		r->relids_cap = n;
	}
	for (i = 0; i < n; i++)
		if (dec_u32(c, &r->relids[i]) != 0 ||
		    !relset_get(&r->rels, r->relids[i], &ncols))
			return -1;
	ch->trunc_flags = (uint8_t)flags;
	ch->nrelids = n;
	ch->relids = r->relids;
	return 0;
}

static int
dec_change(struct segment_reader *r, struct mp_cur *c, char kind, uint32_t n,
    struct ls_change *ch)
{
	uint16_t ncols;

	memset(ch, 0, sizeof(*ch));
	ch->kind = kind;
	if (kind == LS_CHANGE_TRUNCATE)
		return n == 3 ? dec_truncate(r, c, ch) : -1;
	if (dec_u32(c, &ch->relid) != 0 || !relset_get(&r->rels, ch->relid, &ncols))
		return -1;
	switch (kind) {
	case LS_CHANGE_INSERT:
		return n == 3 ? dec_tuple(r, c, ncols, r->vals, &ch->new) : -1;
	case LS_CHANGE_UPDATE:
		if (n != 5 || dec_old(r, c, ncols, ch, true) != 0)
			return -1;
		return dec_tuple(r, c, ncols, r->vals, &ch->new);
	case LS_CHANGE_DELETE:
		return n == 4 ? dec_old(r, c, ncols, ch, false) : -1;
	}
	return -1;
}

static int
dec_txn(struct mp_cur *c, char kind, uint32_t n, struct segment_reader *r,
    struct ls_txn *t)
{
	int64_t ts;

	memset(t, 0, sizeof(*t));
	if (kind == LS_REC_COMMIT)
		return n == 4 && mp_uint(c, &t->commit_lsn) == 0 &&
		    mp_uint(c, &t->end_lsn) == 0 &&
		    mp_uint(c, &t->nchanges) == 0 ? 0 : -1;
	if (n != 6 || dec_u32(c, &t->xid) != 0 || mp_uint(c, &t->commit_lsn) != 0 ||
	    mp_uint(c, &t->end_lsn) != 0 || mp_int(c, &ts) != 0 ||
	    dec_strornil(r, c, &t->origin) != 0)
		return -1;
	t->commit_time = ts;
	return 0;
}

static int
dec_misc(struct segment_reader *r, struct mp_cur *c, char kind, uint32_t n,
    struct ls_record *rec)
{
	const uint8_t *b;

	if (kind == LS_REC_SEQUENCE) {
		struct ls_sequence *s = &rec->u.seq;
		return n == 6 && dec_str(r, c, &s->schema) == 0 &&
		    dec_str(r, c, &s->name) == 0 &&
		    mp_int(c, &s->last_value) == 0 &&
		    mp_bool(c, &s->is_called) == 0 &&
		    mp_uint(c, &s->lsn) == 0 ? 0 : -1;
	}
	if (n != 5 || mp_uint(c, &rec->u.msg.lsn) != 0 ||
	    mp_bool(c, &rec->u.msg.transactional) != 0 ||
	    dec_str(r, c, &rec->u.msg.prefix) != 0 ||
	    mp_bin(c, &b, &rec->u.msg.len) != 0)
		return -1;
	rec->u.msg.content = (const char *)b;
	return 0;
}

/* Decode one record's msgpack into rec (syntax only). */
static int
dec_record(struct segment_reader *r, size_t len, struct ls_record *rec)
{
	struct mp_cur c = { r->rec, r->rec + len };
	uint32_t n;
	char kind;
	int rc = -1;

	if (mp_array(&c, &n) != 0 || n < 1 || dec_char(&c, &kind) != 0)
		return -1;
	switch (kind) {
	case 'R':
		rec->kind = LS_REC_RELATION;
		rc = n == 6 ? dec_relation(r, &c, &rec->u.rel) : -1;
		break;
	case 'B':
	case 'C':
		rec->kind = kind;
		rc = dec_txn(&c, kind, n, r, &rec->u.txn);
		break;
	case 'I':
	case 'U':
	case 'D':
	case 'T':
		rec->kind = LS_REC_CHANGE;
		rc = dec_change(r, &c, kind, n, &rec->u.change);
		break;
	case 'S':
	case 'M':
		rec->kind = kind;
		rc = dec_misc(r, &c, kind, n, rec);
		break;
	}
	return rc == 0 && c.p == c.end ? 0 : -1;
}

/* Structural rules across records (the writer's rules, re-checked). */
static const char *
check_order(struct segment_reader *r, const struct ls_record *rec)
{
	const struct ls_txn *t = &rec->u.txn;

	switch (rec->kind) {
	case LS_REC_BEGIN:
		if (r->in_txn)
			return "BEGIN inside a transaction";
		if (t->end_lsn < t->commit_lsn ||
		    (r->txns > 0 && t->commit_lsn <= r->last_lsn))
			return "transaction out of commit order";
		r->in_txn = true;
		r->cur = *t;
		r->cur.origin = NULL;
		r->cur_changes = 0;
		return NULL;
	case LS_REC_COMMIT:
		if (!r->in_txn || t->commit_lsn != r->cur.commit_lsn ||
		    t->end_lsn != r->cur.end_lsn || t->nchanges != r->cur_changes)
			return "COMMIT does not match its BEGIN";
		if (r->txns++ == 0)
			r->first_lsn = t->commit_lsn;
		r->last_lsn = t->commit_lsn;
		r->end_lsn = t->end_lsn;
		r->in_txn = false;
		return NULL;
	case LS_REC_CHANGE:
		if (!r->in_txn)
			return "change outside a transaction";
		r->cur_changes++;
		r->changes++;
		return NULL;
	case LS_REC_MESSAGE:
		return rec->u.msg.transactional == r->in_txn ? NULL :
		    "message on the wrong side of a transaction boundary";
	case LS_REC_SEQUENCE:
		return r->in_txn ? "sequence sample inside a transaction" : NULL;
	default:
		return NULL;	/* relations may appear anywhere */
	}
}

/* After the last record: counts, stream end, tag, trailer. */
static int
reader_finish(struct segment_reader *r, char **errmsg)
{
	int rc;

	if (r->in_txn || r->txns != r->h.txns || r->changes != r->h.changes ||
	    (r->txns > 0 && (r->first_lsn != r->h.first_lsn ||
	    r->last_lsn != r->h.last_lsn || r->end_lsn != r->h.end_lsn)))
		return container_fail(&r->c, errmsg, LS_ERR_CORRUPT, "records "
		    "disagree with the header (transactions, changes or LSN "
		    "range)");
	if ((rc = container_reader_finish(&r->c, r->sha, errmsg)) != 0)
		return rc;
	r->done = true;
	return 0;
}

static int
ensure_scratch(struct segment_reader *r, size_t len)
{
	char *bigger;

	if (r->vals == NULL) {
		r->vals = calloc(2 * MAX_COLUMNS, sizeof(*r->vals));
		r->cols = calloc(MAX_COLUMNS, sizeof(*r->cols));
		if (r->vals == NULL || r->cols == NULL)
			return -1;
	}
	/* every string costs its bytes plus a NUL: at most 2 * len */
	if (2 * len + 16 > r->arena_cap) {
		if ((bigger = realloc(r->arena, 2 * len + 16)) == NULL)
			return -1;
		r->arena = bigger;
		r->arena_cap = 2 * len + 16;
	}
	r->arena_used = 0;
	return 0;
}

int
segment_reader_next(struct segment_reader *r, struct ls_record *rec,
    char **errmsg)
{
	const char *why;
	size_t len = 0;
	int rc;

	if (r->c.failed)
		return container_fail(&r->c, errmsg, r->c.failed, "reader already "
		    "failed");
	if (r->done)
		return 0;
	if (r->nrec == r->h.records)
		return reader_finish(r, errmsg);
	if ((rc = next_frame(r, &len, errmsg)) != 0)
		return rc;
	if (ensure_scratch(r, len) != 0)
		return container_fail(&r->c, errmsg, LS_ERR_NOMEM, "out of memory");
	memset(rec, 0, sizeof(*rec));
	r->nrec++;
	if (dec_record(r, len, rec) != 0)
		return container_fail(&r->c, errmsg, LS_ERR_CORRUPT, "record %" PRIu64
		    " does not decode", r->nrec);
	if ((why = check_order(r, rec)) != NULL)
		return container_fail(&r->c, errmsg, LS_ERR_CORRUPT, "record %" PRIu64
		    ": %s", r->nrec, why);
	return 1;
}

int
segment_verify_fd(int fd, const char *name, const uint8_t *key,
    struct segment_header *h, uint8_t sha256[32], char **errmsg)
{
	struct segment_reader *r = NULL;
	struct ls_record rec;
	int rc;

	if ((rc = segment_reader_open(fd, name, key, &r, errmsg)) != 0)
		return rc;
	while ((rc = segment_reader_next(r, &rec, errmsg)) == 1)
		;
	if (rc == 0) {
		if (h != NULL)
			*h = r->h;
		if (sha256 != NULL)
			memcpy(sha256, r->sha, 32);
	}
	segment_reader_free(r);
	return rc;
}

int
segment_check_chain(const struct segment_header *prev, const uint8_t prev_sha[32],
    const struct segment_header *cur, char **errmsg)
{
	char have[65], want[65];

	if (cur->segno != prev->segno + 1)
		return ls_errf(errmsg, LS_ERR_CHAIN, "segment %016" PRIx64
		    " follows segment %016" PRIx64 ": gap in the numbering",
		    cur->segno, prev->segno);
	if (strcmp(cur->generation, prev->generation) != 0 ||
	    cur->system_id != prev->system_id ||
	    strcmp(cur->database, prev->database) != 0)
		return ls_errf(errmsg, LS_ERR_CHAIN, "segment %016" PRIx64
		    " (generation %s, system %" PRIu64 ", database %s) does not "
		    "belong with segment %016" PRIx64 " (%s, %" PRIu64 ", %s)",
		    cur->segno, cur->generation, cur->system_id, cur->database,
		    prev->segno, prev->generation, prev->system_id, prev->database);
	if (!cur->has_prev || memcmp(cur->prev_sha256, prev_sha, 32) != 0) {
		ls_hex(prev_sha, 32, have);
		ls_hex(cur->prev_sha256, 32, want);
		return ls_errf(errmsg, LS_ERR_CHAIN, "segment %016" PRIx64
		    ": hash chain broken: it names previous sha256 %.16s… but "
		    "segment %016" PRIx64 " has sha256 %.16s…", cur->segno,
		    want, prev->segno, have);
	}
	if (prev->txns > 0 && cur->txns > 0 && cur->first_lsn <= prev->last_lsn)
		return ls_errf(errmsg, LS_ERR_CHAIN, "segment %016" PRIx64
		    " starts at or before the end of segment %016" PRIx64
		    " (commit LSNs overlap)", cur->segno, prev->segno);
	return 0;
}
