/*
 * mkstore: write a test store with the segment writer — logship.json and
 * NSEG chained segments, each holding a few transactions with every record
 * and value kind.  Used by the integration tests of the inspection commands.
 *
 *	mkstore STORE_URL NSEG [KEY_FILE]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "format/segment.h"
#include "repo/catalog.h"
#include "store/store.h"

#define GEN "0000000100000001"

static struct ls_column cols[3] = {
	{ "id", 23, -1, LS_COL_KEY }, { "note", 25, -1, 0 }, { "raw", 17, -1, 0 },
};
static struct ls_relation rel = { 16384, "public", "items", 'd', 3, cols };

static void
must(int r, const char *what, char *err)
{
	if (r != 0) {
		fprintf(stderr, "mkstore: %s: %s\n", what, err ? err : ls_strerror(r));
		exit(1);
	}
}

static void
add(struct segment_writer *w, const struct ls_record *rec)
{
	char *err = NULL;

	must(segment_writer_add(w, rec, &err), "add", err);
}

static void
txn(struct segment_writer *w, uint64_t lsn, int id)
{
	struct ls_record r = { .kind = LS_REC_BEGIN };
	struct ls_value v[3], o[3];
	char idbuf[16];

	r.u.txn = (struct ls_txn){ (uint32_t)(1000 + id), lsn, lsn + 0x28,
	    1763700000000000LL + id * 1000000LL, NULL, 0 };
	add(w, &r);
	snprintf(idbuf, sizeof(idbuf), "%d", id);
	v[0] = (struct ls_value){ LS_VAL_TEXT, (uint32_t)strlen(idbuf), idbuf };
	v[1] = (struct ls_value){ LS_VAL_TEXT, 0, "" };
	v[2] = (struct ls_value){ LS_VAL_BINARY, 3, "\x00\xfe\xff" };
	r.kind = LS_REC_CHANGE;
	r.u.change = (struct ls_change){ .kind = LS_CHANGE_INSERT, .relid = rel.oid,
	    .new = { 3, v } };
	add(w, &r);
	o[0] = v[0];
	o[1] = o[2] = (struct ls_value){ LS_VAL_NULL, 0, NULL };
	v[1] = (struct ls_value){ LS_VAL_NULL, 0, NULL };
	v[2] = (struct ls_value){ LS_VAL_UNCHANGED, 0, NULL };
	r.u.change = (struct ls_change){ .kind = LS_CHANGE_UPDATE, .relid = rel.oid,
	    .old_kind = LS_OLD_KEY, .old = { 3, o }, .new = { 3, v } };
	add(w, &r);
	r.kind = LS_REC_COMMIT;
	r.u.txn = (struct ls_txn){ 0, lsn, lsn + 0x28, 0, NULL, 0 };
	add(w, &r);
}

static void
write_segment(struct store *st, uint64_t segno, uint8_t prev[32],
    const uint8_t *key)
{
	struct segment_writer_opts o = { segno, GEN, 7301234567890123456ULL,
	    "app", segno > 1 ? prev : NULL, key, NULL, { COMPRESSION_ZLIB, 0 } };
	struct segment_writer *w = NULL;
	struct ls_record r = { .kind = LS_REC_RELATION };
	char okey[64], *err = NULL;
	int fd, i;

	must(segment_writer_new(&o, &w, &err), "writer", err);
	r.u.rel = rel;
	add(w, &r);
	for (i = 0; i < 3; i++)
		txn(w, segno * 0x1000 + (uint64_t)i * 0x100, (int)segno * 10 + i);
	r.kind = LS_REC_SEQUENCE;
	r.u.seq = (struct ls_sequence){ "public", "items_id_seq",
	    (int64_t)segno * 10 + 2, true, segno * 0x1000 + 0x300 };
	add(w, &r);
	fd = memfd_create("seg", MFD_CLOEXEC);
	must(segment_writer_finish(w, fd, NULL, prev, &err), "finish", err);
	segment_writer_free(w);
	segment_object_key(GEN, segno, okey);
	must(store_put_if_absent(st, okey, fd, &err), "put", err);
	close(fd);
}

int
main(int argc, char **argv)
{
	struct catalog_identity id = { .format = CATALOG_FORMAT,
	    .system_id = 7301234567890123456ULL, .database = "app",
	    .generation = GEN, .slot = "logship" };
	struct store *st = NULL;
	uint8_t prev[32] = { 0 }, key[32];
	char *err = NULL;
	uint64_t n, i;

	if (argc < 3) {
		fprintf(stderr, "usage: mkstore STORE_URL NSEG [KEY_FILE]\n");
		return 2;
	}
	if (argc > 3)
		must(ls_key_load(argv[3], key, &err), "key", err);
	must(store_open(argv[1], &st, &err), "store", err);
	id.created = ls_now_us();
	must(catalog_identity_write(st, &id, 0, &err), "identity", err);
	n = strtoull(argv[2], NULL, 10);
	for (i = 1; i <= n; i++)
		write_segment(st, i, prev, argc > 3 ? key : NULL);
	store_free(st);
	return 0;
}
