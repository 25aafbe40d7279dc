/*
 * test_segment.c: segment format v1 — round trips of every record and value
 * kind, big transactions, corruption, chain breaks, encryption, hostile
 * length fields; each with zlib and with zstd bodies, and the codec named in
 * the header.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "common/error.h"
#include "common/util.h"
#include "format/blob.h"
#include "format/compression.h"
#include "format/segment.h"
#include "tap.h"

#define GEN "00000001deadbeef"

static const uint8_t key1[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t key2[32] = "fedcba9876543210fedcba9876543210";

static struct ls_column cols[4] = {
	{ "id", 23, -1, LS_COL_KEY }, { "name", 25, -1, 0 },
	{ "blob", 17, -1, 0 }, { "big", 25, -1, 0 },
};
static struct ls_relation rel = { 16384, "public", "t", 'd', 4, cols };

/* The codec every writer() uses; main() runs the suite once per codec. */
static struct compression comp;

static int
memfd(void)
{
	return memfd_create("seg", MFD_CLOEXEC);
}

static struct segment_writer *
writer(uint64_t segno, const uint8_t *prev, const uint8_t *key)
{
	struct segment_writer_opts o = { 0 };
	struct segment_writer *w = NULL;
	char *err = NULL;

	o.segno = segno;
	o.generation = GEN;
	o.system_id = 7301234567890123456ULL;
	o.database = "app";
	o.prev_sha256 = prev;
	o.key = key;
	o.comp = comp;
	if (segment_writer_new(&o, &w, &err) != 0) {
		diag("writer: %s", err);
		exit(1);
	}
	return w;
}

static int
add(struct segment_writer *w, const struct ls_record *rec)
{
	char *err = NULL;
	int r = segment_writer_add(w, rec, &err);

	if (r != 0)
		diag("add: %s", err);
	free(err);
	return r;
}

static void
add_txn_edges(struct segment_writer *w, char kind, uint64_t lsn)
{
	struct ls_record rec = { .kind = kind };

	rec.u.txn.xid = 700 + (uint32_t)(lsn & 0xff);
	rec.u.txn.commit_lsn = lsn;
	rec.u.txn.end_lsn = lsn + 8;
	rec.u.txn.commit_time = 1700000000000000LL + (int64_t)lsn;
	add(w, &rec);
}

static void
add_insert(struct segment_writer *w, int id, struct ls_value *vals)
{
	struct ls_record rec = { .kind = LS_REC_CHANGE };
	char idbuf[16];

	snprintf(idbuf, sizeof(idbuf), "%d", id);
	vals[0] = (struct ls_value){ LS_VAL_TEXT, (uint32_t)strlen(idbuf), idbuf };
	rec.u.change.kind = LS_CHANGE_INSERT;
	rec.u.change.relid = rel.oid;
	rec.u.change.new = (struct ls_tuple){ 4, vals };
	add(w, &rec);
}

/* Every kind of record and value. */
static void
write_all_kinds(struct segment_writer *w)
{
	struct ls_record rec = { .kind = LS_REC_RELATION };
	struct ls_value v[4], o[4];
	uint32_t relids[1] = { 16384 };

	rec.u.rel = rel;
	add(w, &rec);
	add_txn_edges(w, LS_REC_BEGIN, 0x1000);
	v[1] = (struct ls_value){ LS_VAL_TEXT, 0, "" };		/* empty string */
	v[2] = (struct ls_value){ LS_VAL_BINARY, 3, "\x00\x01\xff" };
	v[3] = (struct ls_value){ LS_VAL_NULL, 0, NULL };
	add_insert(w, 1, v);
	memset(&rec, 0, sizeof(rec));
	rec.kind = LS_REC_CHANGE;
	rec.u.change.kind = LS_CHANGE_UPDATE;
	rec.u.change.relid = rel.oid;
	rec.u.change.old_kind = LS_OLD_KEY;
	o[0] = (struct ls_value){ LS_VAL_TEXT, 1, "1" };
	o[1] = o[2] = o[3] = (struct ls_value){ LS_VAL_NULL, 0, NULL };
	rec.u.change.old = (struct ls_tuple){ 4, o };
	v[0] = (struct ls_value){ LS_VAL_TEXT, 1, "2" };
	v[3] = (struct ls_value){ LS_VAL_UNCHANGED, 0, NULL };
	rec.u.change.new = (struct ls_tuple){ 4, v };
	add(w, &rec);
	rec.u.change.kind = LS_CHANGE_DELETE;
	rec.u.change.old_kind = LS_OLD_FULL;
	add(w, &rec);
	memset(&rec.u.change, 0, sizeof(rec.u.change));
	rec.u.change.kind = LS_CHANGE_TRUNCATE;
	rec.u.change.trunc_flags = LS_TRUNCATE_CASCADE | LS_TRUNCATE_RESTART_IDENTITY;
	rec.u.change.nrelids = 1;
	rec.u.change.relids = relids;
	add(w, &rec);
	memset(&rec, 0, sizeof(rec));
	rec.kind = LS_REC_MESSAGE;
	rec.u.msg = (struct ls_message){ 0x1001, true, "app", 5, "hi\0yo" };
	add(w, &rec);
	add_txn_edges(w, LS_REC_COMMIT, 0x1000);
	add_txn_edges(w, LS_REC_BEGIN, 0x2000);		/* empty transaction */
	add_txn_edges(w, LS_REC_COMMIT, 0x2000);
	memset(&rec, 0, sizeof(rec));
	rec.kind = LS_REC_SEQUENCE;
	rec.u.seq = (struct ls_sequence){ "public", "t_id_seq", -42, true, 0x2008 };
	add(w, &rec);
	rec.kind = LS_REC_MESSAGE;
	rec.u.msg = (struct ls_message){ 0x2009, false, "ddl", 3, "abc" };
	add(w, &rec);
}

static int
finish(struct segment_writer *w, uint8_t sha[32], struct segment_header *h)
{
	char *err = NULL;
	int fd = memfd();

	if (segment_writer_finish(w, fd, h, sha, &err) != 0) {
		diag("finish: %s", err);
		exit(1);
	}
	segment_writer_free(w);
	return fd;
}

static int
val_eq(const struct ls_value *a, char kind, const char *data, uint32_t len)
{
	return a->kind == kind && a->len == len &&
	    (len == 0 || memcmp(a->data, data, len) == 0) &&
	    (kind != LS_VAL_TEXT || a->data[len] == '\0');
}

static void
test_round_trip(const uint8_t *key)
{
	struct segment_reader *r = NULL;
	struct segment_header h;
	struct ls_record rec;
	uint8_t sha[32];
	char *err = NULL;
	int fd, n = 0, good = 1;

	struct segment_writer *w = writer(1, NULL, key);

	write_all_kinds(w);
	fd = finish(w, sha, &h);
	ok(h.txns == 2 && h.changes == 4 && h.records == 12 &&
	    h.first_lsn == 0x1000 && h.last_lsn == 0x2000 && h.end_lsn == 0x2008,
	    "%s %s: header counts and LSN range", compression_name(comp.codec),
	    key ? "encrypted" : "plain");
	ok(h.codec == comp.codec, "written header names %s",
	    compression_name(comp.codec));
	n = segment_reader_open(fd, "segment 1", key, &r, &err);
	ok(n == 0, "reader opens (%s)", err ? err : "ok");
	ok(r != NULL && segment_reader_header(r)->codec == comp.codec,
	    "read header names %s", compression_name(comp.codec));
	n = 0;
	while (r != NULL && segment_reader_next(r, &rec, &err) == 1) {
		n++;
		switch (n) {
		case 1:
			good &= rec.kind == 'R' && rec.u.rel.oid == 16384 &&
			    !strcmp(rec.u.rel.schema, "public") &&
			    rec.u.rel.ncols == 4 && rec.u.rel.replident == 'd' &&
			    !strcmp(rec.u.rel.cols[3].name, "big") &&
			    rec.u.rel.cols[0].flags == LS_COL_KEY &&
			    rec.u.rel.cols[2].type_oid == 17 &&
			    rec.u.rel.cols[1].typmod == -1;
			break;
		case 3:
			good &= rec.kind == 'X' && rec.u.change.kind == 'I' &&
			    val_eq(&rec.u.change.new.vals[0], 't', "1", 1) &&
			    val_eq(&rec.u.change.new.vals[1], 't', "", 0) &&
			    val_eq(&rec.u.change.new.vals[2], 'b', "\x00\x01\xff", 3) &&
			    val_eq(&rec.u.change.new.vals[3], 'n', NULL, 0);
			break;
		case 4:
			good &= rec.u.change.kind == 'U' &&
			    rec.u.change.old_kind == 'K' &&
			    val_eq(&rec.u.change.old.vals[0], 't', "1", 1) &&
			    val_eq(&rec.u.change.old.vals[1], 'n', NULL, 0) &&
			    val_eq(&rec.u.change.new.vals[3], 'u', NULL, 0) &&
			    val_eq(&rec.u.change.new.vals[1], 't', "", 0);
			break;
		case 5:
			good &= rec.u.change.kind == 'D' &&
			    rec.u.change.old_kind == 'O';
			break;
		case 6:
			good &= rec.u.change.kind == 'T' &&
			    rec.u.change.trunc_flags == 3 &&
			    rec.u.change.nrelids == 1 &&
			    rec.u.change.relids[0] == 16384;
			break;
		case 7:
			good &= rec.kind == 'M' && rec.u.msg.transactional &&
			    rec.u.msg.len == 5 &&
			    !memcmp(rec.u.msg.content, "hi\0yo", 5);
			break;
		case 8:
			good &= rec.kind == 'C' && rec.u.txn.nchanges == 4 &&
			    rec.u.txn.end_lsn == 0x1008;
			break;
		case 9:
			good &= rec.kind == 'B' && rec.u.txn.commit_lsn == 0x2000 &&
			    rec.u.txn.commit_time == 1700000000000000LL + 0x2000;
			break;
		case 10:
			good &= rec.kind == 'C' && rec.u.txn.nchanges == 0;
			break;
		case 11:
			good &= rec.kind == 'S' && rec.u.seq.last_value == -42 &&
			    rec.u.seq.is_called && !strcmp(rec.u.seq.name, "t_id_seq");
			break;
		case 12:
			good &= rec.kind == 'M' && !rec.u.msg.transactional &&
			    !strcmp(rec.u.msg.prefix, "ddl");
			break;
		}
	}
	ok(n == 12, "read every record back (%d)", n);
	ok(good, "every record and value kind round-trips exactly");
	ok(r != NULL && segment_reader_next(r, &rec, &err) == 0,
	    "end of segment verified");
	segment_reader_free(r);
	close(fd);
	free(err);
}

/* A 100,000-change transaction streams through with bounded memory. */
static void
test_big_txn(void)
{
	struct segment_writer *w = writer(1, NULL, NULL);
	struct ls_record rec = { .kind = LS_REC_RELATION };
	struct ls_value v[4];
	struct segment_header h;
	uint8_t sha[32];
	char *err = NULL;
	int fd, i;

	rec.u.rel = rel;
	add(w, &rec);
	add_txn_edges(w, LS_REC_BEGIN, 0x5000);
	v[1] = (struct ls_value){ LS_VAL_TEXT, 11, "hello world" };
	v[2] = (struct ls_value){ LS_VAL_BINARY, 4, "\x01\x02\x03\x04" };
	v[3] = (struct ls_value){ LS_VAL_NULL, 0, NULL };
	for (i = 0; i < 100000; i++)
		add_insert(w, i, v);
	add_txn_edges(w, LS_REC_COMMIT, 0x5000);
	fd = finish(w, sha, &h);
	ok(h.changes == 100000 && h.txns == 1, "%s: 100,000-change transaction "
	    "written (%" PRIu64 " bytes)", compression_name(comp.codec), h.total_len);
	i = segment_verify_fd(fd, "big", NULL, &h, NULL, &err);
	ok(i == 0, "100,000-change transaction verifies (%s)", err ? err : "ok");
	close(fd);
	free(err);
}

/* Copy an object into a fresh memfd, return the fd and its bytes. */
static uint8_t *
slurp(int fd, size_t *len)
{
	struct stat st;
	uint8_t *buf;

	fstat(fd, &st);
	*len = (size_t)st.st_size;
	buf = malloc(*len);
	ls_pread_all(fd, buf, *len, 0);
	return buf;
}

static int
spill(const uint8_t *buf, size_t len)
{
	int fd = memfd();

	ls_write_all(fd, buf, len);
	return fd;
}

static int
verify_buf(const uint8_t *buf, size_t len, const uint8_t *key, char **err)
{
	int fd = spill(buf, len);
	int r = segment_verify_fd(fd, "segment 0000000000000001", key, NULL,
	    NULL, err);

	close(fd);
	return r;
}

static void
test_every_byte(void)
{
	struct segment_writer *w = writer(1, NULL, NULL);
	struct segment_header h;
	uint8_t sha[32], *buf;
	size_t len, i;
	int fd, missed = 0, x;
	char *err = NULL;

	write_all_kinds(w);
	fd = finish(w, sha, &h);
	buf = slurp(fd, &len);
	close(fd);
	for (i = 0; i < len; i++) {
		for (x = 0; x < 3; x++) {
			uint8_t save = buf[i];
			buf[i] ^= x == 0 ? 0x01 : x == 1 ? 0x80 : 0xff;
			if (verify_buf(buf, len, NULL, &err) == 0)
				missed++;
			buf[i] = save;
		}
	}
	ok(missed == 0, "every single-byte corruption of a %zu-byte segment "
	    "is detected (%d missed)", len, missed);
	ok(err != NULL && strstr(err, "segment 0000000000000001") != NULL,
	    "errors name the object: %s", err ? err : "(none)");
	for (i = 0, missed = 0; i < len; i++)
		if (verify_buf(buf, i, NULL, NULL) == 0)
			missed++;
	ok(missed == 0, "every truncation is detected");
	ok(verify_buf(buf, len, NULL, NULL) == 0, "the untouched copy verifies");
	free(buf);
	free(err);
}

/* Rewrite the SHA-256 trailer so that only the GCM tag can object. */
static void
reseal(uint8_t *buf, size_t len)
{
	EVP_Digest(buf, len - 32, buf + len - 32, NULL, EVP_sha256(), NULL);
}

static void
test_encryption(void)
{
	struct segment_writer *w = writer(1, NULL, key1);
	struct segment_header h;
	uint8_t sha[32], *buf;
	size_t len;
	char *err = NULL;
	int fd, r;

	write_all_kinds(w);
	fd = finish(w, sha, &h);
	buf = slurp(fd, &len);
	close(fd);
	r = verify_buf(buf, len, key1, &err);
	ok(h.encrypted && r == 0, "right key round-trips");
	r = verify_buf(buf, len, key2, &err);
	ok(r == LS_ERR_AUTH && strstr(err, "wrong --key-file") != NULL,
	    "wrong key fails: %s", err);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_AUTH && strstr(err, "--key-file") != NULL,
	    "missing key fails: %s", err);
	/* body byte flipped, trailer recomputed: only GCM can see it */
	buf[len - 32 - 16 - 5] ^= 0x10;
	reseal(buf, len);
	r = verify_buf(buf, len, key1, &err);
	ok(r == LS_ERR_AUTH || r == LS_ERR_CORRUPT, "tampered body fails: %s", err);
	buf[len - 32 - 16 - 5] ^= 0x10;
	/* header field changed in place (database "app" -> "apq") */
	{
		uint8_t *p = memmem(buf, len, "app", 3);
		p[2] = 'q';
		reseal(buf, len);
		r = verify_buf(buf, len, key1, &err);
		ok(r == LS_ERR_AUTH && strstr(err, "tampered") != NULL,
		    "tampered header fails authentication: %s", err);
		p[2] = 'p';
		reseal(buf, len);
	}
	ok(verify_buf(buf, len, key1, NULL) == 0, "restored copy verifies");
	free(buf);
	free(err);
}

static void
test_unencrypted_with_key(void)
{
	struct segment_writer *w = writer(1, NULL, NULL);
	struct segment_header h;
	uint8_t sha[32];
	char *err = NULL;
	int fd = (write_all_kinds(w), finish(w, sha, &h));

	int r = segment_verify_fd(fd, "s", key1, NULL, NULL, &err);

	ok(r == LS_ERR_AUTH, "plain segment refused when a key is configured: %s",
	    err);
	close(fd);
	free(err);
}

static void
test_chain(void)
{
	struct segment_header h1, h2, h3;
	uint8_t s1[32], s2[32], s3[32], bogus[32];
	struct segment_writer *w;
	char *err = NULL;
	int fd, r;

	w = writer(1, NULL, NULL);
	add_txn_edges(w, LS_REC_BEGIN, 0x100);
	add_txn_edges(w, LS_REC_COMMIT, 0x100);
	close(finish(w, s1, &h1));
	w = writer(2, s1, NULL);
	add_txn_edges(w, LS_REC_BEGIN, 0x200);
	add_txn_edges(w, LS_REC_COMMIT, 0x200);
	close(finish(w, s2, &h2));
	ok(segment_check_chain(&h1, s1, &h2, &err) == 0, "2 follows 1");
	memset(bogus, 0xab, sizeof(bogus));
	w = writer(3, bogus, NULL);
	add_txn_edges(w, LS_REC_BEGIN, 0x300);
	add_txn_edges(w, LS_REC_COMMIT, 0x300);
	fd = finish(w, s3, &h3);
	r = segment_check_chain(&h2, s2, &h3, &err);
	ok(r == LS_ERR_CHAIN && strstr(err, "0000000000000003") &&
	    strstr(err, "0000000000000002"), "chain break names both segments: %s",
	    err);
	r = segment_check_chain(&h1, s1, &h3, &err);
	ok(r == LS_ERR_CHAIN && strstr(err, "gap"), "gap reported: %s", err);
	close(fd);
	free(err);
}

/*
 * Build an object by hand: a header naming codec, the stored body z as
 * given (zlen bytes, already compressed).
 */
static uint8_t *
forge_raw(const uint8_t *z, size_t zlen, const char *codec, uint64_t records,
    uint16_t version, size_t *outlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t *out;
	size_t n;
	const char *names[] = { "segno", "system_id", "first_lsn", "last_lsn",
	    "end_lsn", "first_time", "last_time", "created", "txns", "changes" };
	int i;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 17);
	for (i = 0; i < 10; i++) {
		msgpack_pack_str_with_body(&pk, names[i], strlen(names[i]));
		msgpack_pack_uint64(&pk, i == 0 ? 1 : 0);
	}
	msgpack_pack_str_with_body(&pk, "records", 7);
	msgpack_pack_uint64(&pk, records);
	msgpack_pack_str_with_body(&pk, "generation", 10);
	msgpack_pack_str_with_body(&pk, GEN, 16);
	msgpack_pack_str_with_body(&pk, "database", 8);
	msgpack_pack_str_with_body(&pk, "db", 2);
	msgpack_pack_str_with_body(&pk, "prev_sha256", 11);
	msgpack_pack_nil(&pk);
	msgpack_pack_str_with_body(&pk, "compression", 11);
	msgpack_pack_str_with_body(&pk, codec, strlen(codec));
	msgpack_pack_str_with_body(&pk, "body_len", 8);
	msgpack_pack_uint64(&pk, zlen);
	msgpack_pack_str_with_body(&pk, "encryption", 10);
	msgpack_pack_nil(&pk);
	n = 12 + sb.size + zlen + 32;
	out = calloc(1, n);
	memcpy(out, "LSEG", 4);
	out[5] = (uint8_t)version;
	out[4] = (uint8_t)(version >> 8);
	out[10] = (uint8_t)(sb.size >> 8);
	out[11] = (uint8_t)sb.size;
	memcpy(out + 12, sb.data, sb.size);
	memcpy(out + 12 + sb.size, z, zlen);
	reseal(out, n);
	msgpack_sbuffer_destroy(&sb);
	*outlen = n;
	return out;
}

/* forge_raw with body_plain compressed by zlib. */
static uint8_t *
forge(const uint8_t *body_plain, size_t plen, uint64_t records, uint16_t version,
    size_t *outlen)
{
	uLongf zlen = compressBound(plen);
	uint8_t *z = malloc(zlen), *out;

	compress(z, &zlen, body_plain, plen);
	out = forge_raw(z, zlen, "zlib", records, version, outlen);
	free(z);
	return out;
}

/* The header names the codec; a zstd body must be exactly one frame. */
static void
test_codec_header(void)
{
	uint8_t one[64], two[128], *buf, *p;
	size_t n1, len;
	char *err = NULL;
	int r;

	n1 = ZSTD_compress(one, sizeof(one), "", 0, 3);
	memcpy(two, one, n1);
	memcpy(two + n1, one, n1);
	buf = forge_raw(one, n1, "zstd", 0, 1, &len);
	ok(verify_buf(buf, len, NULL, &err) == 0, "a one-frame zstd body "
	    "(another encoder's) verifies");
	free(buf);
	buf = forge_raw(two, 2 * n1, "zstd", 0, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT && strstr(err, "does not end") != NULL,
	    "a second zstd frame after the first is refused: %s", err);
	free(buf);
	buf = forge_raw((const uint8_t *)"\x50\x2a\x4d\x18\0\0\0\0", 8, "zstd", 0,
	    1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT && strstr(err, "not a zstd frame") != NULL,
	    "a skippable frame instead of a zstd frame is refused: %s", err);
	free(buf);
	buf = forge_raw(one, n1 - 1, "zstd", 0, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT, "a truncated zstd frame is refused: %s", err);
	free(buf);
	buf = forge_raw(one, n1, "zlib", 0, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT && strstr(err, "zlib") != NULL,
	    "a zstd body under \"zlib\" is refused: %s", err);
	free(buf);
	buf = forge(one, 0, 0, 1, &len);
	p = memmem(buf, len, "zlib", 4);
	memcpy(p, "zstd", 4);
	reseal(buf, len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT && strstr(err, "zstd") != NULL,
	    "a zlib body under \"zstd\" is refused: %s", err);
	memcpy(p, "lz4x", 4);
	reseal(buf, len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT && strstr(err, "neither zlib nor zstd") != NULL,
	    "an unknown codec is refused: %s", err);
	free(buf);
	free(err);
}

/* --compression values. */
static void
test_compression_parse(void)
{
	static const struct {
		const char	*text;
		int		 ok, codec, level;
	} cases[] = {
		{ "zlib", 1, COMPRESSION_ZLIB, 0 },
		{ "zstd", 1, COMPRESSION_ZSTD, 0 },
		{ "zstd:1", 1, COMPRESSION_ZSTD, 1 },
		{ "zstd:19", 1, COMPRESSION_ZSTD, 19 },
		{ "zlib:9", 1, COMPRESSION_ZLIB, 9 },
		{ "zlib:10", 0, 0, 0 }, { "zstd:20", 0, 0, 0 },
		{ "zstd:0", 0, 0, 0 }, { "zstd:", 0, 0, 0 },
		{ "zstd:-1", 0, 0, 0 }, { "zstd:3x", 0, 0, 0 },
		{ "zstd: 3", 0, 0, 0 }, { "lz4", 0, 0, 0 }, { "", 0, 0, 0 },
		{ "ZSTD", 0, 0, 0 }, { "zstdx", 0, 0, 0 },
	};
	struct compression c;
	char *err = NULL, fmt[16];
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c.codec = COMPRESSION_ZLIB;
		c.level = -1;
		int r = compression_parse(cases[i].text, &c, &err);
		if (cases[i].ok ? r != 0 || (int)c.codec != cases[i].codec ||
		    c.level != cases[i].level : r != LS_ERR_INVALID ||
		    (strstr(err, "zlib or zstd") == NULL &&
		    strstr(err, "whole number") == NULL)) {
			diag("compression \"%s\": r=%d codec=%d level=%d (%s)",
			    cases[i].text, r, (int)c.codec, c.level,
			    err ? err : "");
			bad++;
		}
	}
	ok(bad == 0, "compression_parse: %zu good and bad values", i);
	c = (struct compression){ COMPRESSION_ZSTD, 0 };
	compression_format(&c, fmt);
	ok(strcmp(fmt, "zstd:3") == 0, "default zstd level shown as %s", fmt);
	free(err);
}

static int
collect(void *arg, const void *buf, size_t len)
{
	*(uint64_t *)arg += len;
	return 0;
}

/* Base chunks (blobs) carry the codec too; zstd with a key works. */
static void
test_blob_codecs(void)
{
	static char text[200000];
	struct compression zs = { COMPRESSION_ZSTD, 0 };
	struct blob_writer *b = NULL;
	uint8_t sha[32], *buf;
	uint64_t got = 0;
	char *err = NULL;
	size_t i, len;
	int fd, r;

	for (i = 0; i < sizeof(text); i++)
		text[i] = "abc\tdef\n0123"[i % 12];
	fd = memfd();
	r = blob_writer_new("copy", key1, NULL, &zs, &b, &err);
	if (r == 0)
		r = blob_writer_write(b, text, sizeof(text), &err);
	if (r == 0)
		r = blob_writer_finish(b, fd, sha, &err);
	blob_writer_free(b);
	ok(r == 0, "zstd blob with a key written (%s)", err ? err : "ok");
	buf = slurp(fd, &len);
	ok(memmem(buf, len, "zstd", 4) != NULL && len < sizeof(text) / 10,
	    "blob header names zstd; %zu bytes for %zu", len, sizeof(text));
	r = blob_read_fd(fd, "chunk", key1, "copy", collect, &got, NULL, &err);
	ok(r == 0 && got == sizeof(text), "zstd blob with a key reads back "
	    "(%" PRIu64 " bytes: %s)", got, err ? err : "ok");
	r = blob_read_fd(fd, "chunk", key2, "copy", NULL, NULL, NULL, &err);
	ok(r == LS_ERR_AUTH, "zstd blob with another key refused: %s", err);
	close(fd);
	free(buf);
	free(err);
}

static void
test_hostile(void)
{
	/* a frame claiming 0x3fffffff bytes, then a few */
	uint8_t huge_frame[] = { 0x3f, 0xff, 0xff, 0xff, 0x91, 0xa1, 'S' };
	/* a record: array32 claiming 4 billion elements */
	uint8_t huge_array[] = { 0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff };
	/* a record: str32 claiming 4 GiB */
	uint8_t huge_str[] = { 0, 0, 0, 7, 0x92, 0xa1, 'R', 0xdb, 0xff, 0xff, 0xff };
	uint8_t empty[1];
	uint8_t *buf;
	size_t len;
	char *err = NULL;
	int r;

	buf = forge(huge_frame, sizeof(huge_frame), 1, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT, "huge frame length: %s", err);
	free(buf);
	buf = forge(huge_array, sizeof(huge_array), 1, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT, "huge array count: %s", err);
	free(buf);
	buf = forge(huge_str, sizeof(huge_str), 1, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT, "huge string length: %s", err);
	free(buf);
	buf = forge(empty, 0, 1000000000, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT, "a billion records promised, none given: %s", err);
	free(buf);
	buf = forge(empty, 0, 0, 2, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_VERSION && strstr(err, "version 2"), "wrong version: %s", err);
	free(buf);
	buf = forge(empty, 0, 0, 1, &len);
	r = verify_buf(buf, len, NULL, &err);
	ok(r == 0, "forged empty segment is valid");
	buf[8] = 0xff;		/* header length 0xff.... */
	r = verify_buf(buf, len, NULL, &err);
	ok(r == LS_ERR_CORRUPT && strstr(err, "header length"),
	    "huge header length: %s", err);
	free(buf);
	free(err);
}

static void
test_writer_rules(void)
{
	struct segment_writer *w = writer(1, NULL, NULL);
	struct ls_record rec = { .kind = LS_REC_CHANGE };
	struct ls_value v[4] = { { LS_VAL_NULL, 0, NULL } };
	char *err = NULL;
	int fd, r;

	rec.u.change.kind = LS_CHANGE_INSERT;
	rec.u.change.relid = 99;
	rec.u.change.new = (struct ls_tuple){ 4, v };
	ok(segment_writer_add(w, &rec, &err) == LS_ERR_INVALID,
	    "change outside a transaction refused");
	add_txn_edges(w, LS_REC_BEGIN, 0x10);
	ok(segment_writer_add(w, &rec, &err) == LS_ERR_INVALID,
	    "change to an undefined relation refused");
	ok(segment_writer_finish(w, (fd = memfd()), NULL, (uint8_t[32]){ 0 },
	    &err) == LS_ERR_INVALID, "finish inside a transaction refused");
	close(fd);
	segment_writer_free(w);
	free(err);
	err = NULL;

	/* finished once, a writer takes nothing more and no second finish */
	w = writer(1, NULL, NULL);
	add_txn_edges(w, LS_REC_BEGIN, 0x10);
	add_txn_edges(w, LS_REC_COMMIT, 0x10);
	ok(segment_writer_finish(w, (fd = memfd()), NULL, (uint8_t[32]){ 0 },
	    &err) == 0, "%s: a whole segment finishes", compression_name(comp.codec));
	close(fd);
	r = segment_writer_finish(w, (fd = memfd()), NULL, (uint8_t[32]){ 0 },
	    &err);
	ok(r == LS_ERR_INVALID, "%s: a second finish is refused (%s)",
	    compression_name(comp.codec), err != NULL ? err : "no error");
	close(fd);
	free(err);
	err = NULL;
	rec.kind = LS_REC_BEGIN;
	rec.u.txn = (struct ls_txn){ 0 };
	ok(segment_writer_add(w, &rec, &err) != 0,
	    "%s: a record after the finish is refused", compression_name(comp.codec));
	segment_writer_free(w);
	free(err);
}

/* The optional heartbeat keys: written, read back, absent by default. */
static void
test_heartbeat(void)
{
	struct segment_writer *w;
	struct segment_header h, back;
	uint8_t sha[32], buf[4096];
	char *err = NULL;
	size_t need = 0;
	ssize_t n;
	int fd;

	w = writer(1, NULL, NULL);
	segment_writer_heartbeat(w, 0x16B374D848ULL, 1796540741732683LL);
	fd = finish(w, sha, &h);
	ok(h.has_heartbeat && h.txns == 0, "heartbeat segment: header filled");
	n = pread(fd, buf, sizeof(buf), 0);
	ok(n > 0 && segment_parse_header(buf, (size_t)n, "hb", &back, &need,
	    &err) == 0 && back.has_heartbeat &&
	    back.heartbeat_lsn == 0x16B374D848ULL &&
	    back.heartbeat_time == 1796540741732683LL,
	    "heartbeat_lsn and heartbeat_time read back");
	ok(segment_verify_fd(fd, "hb", NULL, NULL, NULL, &err) == 0,
	    "a heartbeat segment verifies");
	close(fd);
	w = writer(1, NULL, NULL);
	fd = finish(w, sha, &h);
	n = pread(fd, buf, sizeof(buf), 0);
	ok(n > 0 && segment_parse_header(buf, (size_t)n, "plain", &back, &need,
	    &err) == 0 && !back.has_heartbeat && back.heartbeat_time == 0,
	    "a segment without heartbeat keys has none");
	close(fd);
	free(err);
}

int
main(void)
{
	static const enum compression_codec codecs[] = { COMPRESSION_ZLIB,
	    COMPRESSION_ZSTD };
	size_t i;

	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		comp = (struct compression){ codecs[i], 0 };
		test_round_trip(NULL);
		test_round_trip(key1);
		test_big_txn();
		test_every_byte();
		test_encryption();
		test_unencrypted_with_key();
		test_chain();
	}
	comp = (struct compression){ COMPRESSION_ZSTD, 19 };
	test_round_trip(key1);
	comp = (struct compression){ COMPRESSION_ZLIB, 0 };
	test_hostile();
	test_writer_rules();
	test_heartbeat();
	test_codec_header();
	test_compression_parse();
	test_blob_codecs();
	return tap_done();
}
