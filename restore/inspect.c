/*
 * inspect.c: the read-only commands of logship-restore.
 *	ls	generations, base snapshots and segments with their ranges
 *	verify	every segment's checksum, decryption, decoding, numbering and
 *		hash chain; names each bad object
 *	cat	segments as newline-delimited JSON
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "common/util.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "inspect.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "store/store.h"

static bool
has_gen(char (*gens)[17], size_t n, const char *gen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(gens[i], gen) == 0)
			return true;
	return false;
}

/*
 * The store's identity (*have_id) and generations, or 1 with one line on
 * stderr: a path that is not a logship store (a typo in --store, an agent
 * never started) is an error, not an empty listing.  Generations without
 * logship.json are a partial mirror copy (mirror writes it last): shown,
 * with a note.  A listing that fails says why (credentials, a missing
 * bucket) rather than "no logship.json".
 */
static int
open_store(const struct inspect_opts *o, struct catalog_identity *id,
    bool *have_id, char (**gens)[17], size_t *ngen)
{
	char *err = NULL;
	int r;

	*gens = NULL;
	*ngen = 0;
	r = catalog_identity_read(o->store, id, &err);
	*have_id = r == 0;
	if ((r == 0 || r == LS_ERR_NOTFOUND) &&
	    catalog_generations(o->store, gens, ngen, &err) != 0)
		r = LS_ERR_IO;
	else if (r == LS_ERR_NOTFOUND && *ngen == 0)
		ls_errf(&err, r, "store %s holds no %s: not a logship store "
		    "(a typo in --store, or its agent never ran with --init?)",
		    store_url(o->store), CATALOG_IDENTITY);
	else if (r == LS_ERR_NOTFOUND) {
		fprintf(stderr, "logship-restore: note: store %s holds no %s "
		    "but has generations (a partial mirror copy?); going on\n",
		    store_url(o->store), CATALOG_IDENTITY);
		r = 0;
	}
	if (r == 0 && *ngen == 0)
		r = ls_errf(&err, LS_ERR_NOTFOUND, "store %s holds no "
		    "generation yet: its agent has not begun a base snapshot",
		    store_url(o->store));
	else if (r == 0 && o->generation != NULL && !has_gen(*gens, *ngen,
	    o->generation))
		r = ls_errf(&err, LS_ERR_NOTFOUND, "store %s holds no "
		    "generation %s (logship-restore ls lists them)",
		    store_url(o->store), o->generation);
	if (r == 0) {
		free(err);	/* the identity's NOTFOUND, if any */
		return 0;
	}
	fprintf(stderr, "logship-restore: %s\n", err);
	free(err);
	free(*gens);
	*gens = NULL;
	return 1;
}

/* What ls learns of a generation for its restorable window. */
struct window {
	bool		 base;		/* a base exists: */
	uint64_t	 base_lsn;
	int64_t		 base_time;
	uint64_t	 last_lsn;	/* the newest transaction (0: none) */
	int64_t		 last_time;
	int64_t		 heartbeat;	/* the newest heartbeat (0: none) */
};

static void
print_base(struct store *st, const char *gen, const char *name,
    const uint8_t *key, struct window *w)
{
	struct base_manifest *m = NULL;
	struct base_chunk lobs;
	char *err = NULL, lsn[32];
	int r = base_manifest_read_named(st, gen, name, key, &m, &err);

	if (r == LS_ERR_NOTFOUND)
		printf("  %s: incomplete (no manifest: being copied, or left by "
		    "an interrupted copy or expire)\n", name);
	else if (r != 0)
		printf("  %s: unreadable: %s\n", name, err);
	else {
		if (!w->base) {	/* the earliest: bases come oldest first */
			w->base = true;
			w->base_lsn = base_manifest_lsn(m);
			w->base_time = base_manifest_created(m);
		}
		ls_lsn_format(base_manifest_lsn(m), lsn);
		printf("  %s: consistent at %s, %zu tables, %zu chunks, %"
		    PRIu64 " bytes, %" PRIu64 " large objects (not streamed "
		    "after the base)%s\n", name, lsn, base_manifest_ntables(m),
		    base_manifest_nchunks(m), base_manifest_bytes(m),
		    base_manifest_section(m, "large_objects", &lobs) == 0 ?
		    lobs.rows : 0,
		    base_manifest_ddl(m) ? "; DDL captured" : "");
	}
	base_manifest_free(m);
	free(err);
}

/* The expire mark in force, if any: one line. */
static void
print_expired(struct store *st, const char *gen)
{
	struct catalog_expired ex;
	char *err = NULL, lsn[32], when[40];

	if (catalog_expired_read(st, gen, &ex, &err) == 0) {
		ls_lsn_format(ex.lsn, lsn);
		ls_format_time(ex.time, when, sizeof(when));
		printf("  expired: segments below %016" PRIx64 " and bases "
		    "before %s (consistent at %s), %s\n", ex.first_segno,
		    ex.base, lsn, when);
	}
	free(err);
}

/* Every base of the generation, oldest first. */
static void
print_bases(struct store *st, const char *gen, const uint8_t *key,
    struct window *w)
{
	char (*names)[24] = NULL, *err = NULL;
	size_t n = 0, i;

	if (catalog_bases(st, gen, &names, &n, &err) != 0)
		printf("  bases: cannot list: %s\n", err);
	else if (n == 0)
		printf("  base: none\n");
	for (i = 0; i < n; i++)
		print_base(st, gen, names[i], key, w);
	print_expired(st, gen);
	free(names);
	free(err);
}

static void
print_segment_line(struct store *st, const char *gen, const struct catalog_seg *s,
    struct window *w)
{
	struct segment_header h;
	char *err = NULL, l1[32], l2[32], t1[40], t2[40];

	if (catalog_read_header(st, gen, s->segno, &h, &err) != 0) {
		printf("  %016" PRIx64 "  unreadable header: %s\n", s->segno, err);
		free(err);
		return;
	}
	ls_lsn_format(h.first_lsn, l1);
	ls_lsn_format(h.last_lsn, l2);
	ls_format_time(h.first_time, t1, sizeof(t1));
	ls_format_time(h.last_time, t2, sizeof(t2));
	if (h.txns > 0) {
		w->last_lsn = h.last_lsn;
		w->last_time = h.last_time;
	}
	if (h.has_heartbeat && h.heartbeat_time > w->heartbeat)
		w->heartbeat = h.heartbeat_time;
	if (h.txns == 0 && h.has_heartbeat) {
		ls_lsn_format(h.heartbeat_lsn, l1);
		ls_format_time(h.heartbeat_time, t1, sizeof(t1));
		printf("  %016" PRIx64 "  %-12s %-12s %-27s %-27s %8" PRIu64
		    " %10" PRIu64 "  heartbeat\n", s->segno, l1, "-", t1, "-",
		    h.txns, s->size);
	} else if (h.txns == 0)
		printf("  %016" PRIx64 "  %-12s %-12s %-27s %-27s %8" PRIu64
		    " %10" PRIu64 "\n", s->segno, "-", "-", "-", "-",
		    h.txns, s->size);
	else
		printf("  %016" PRIx64 "  %-12s %-12s %-27s %-27s %8" PRIu64
		    " %10" PRIu64 "%s\n", s->segno, l1, l2, t1, t2, h.txns,
		    s->size, h.encrypted ? "  encrypted" : "");
}

/*
 * The last lines of ls: from the earliest base to the latest transaction
 * of the generation a new restore would use, the points --until-lsn and
 * --until-time may name.
 */
static void
print_window(const char *gen, const struct window *w)
{
	char l1[32], l2[32], t1[40], t2[40], hb[40];

	if (!w->base) {
		printf("restorable: nothing yet (generation %s has no complete "
		    "base)\n", gen);
		return;
	}
	ls_lsn_format(w->base_lsn, l1);
	ls_format_time(w->base_time, t1, sizeof(t1));
	if (w->last_lsn == 0) {
		snprintf(l2, sizeof(l2), "%s", l1);
		snprintf(t2, sizeof(t2), "%s", "the base (no transaction since)");
	} else {
		ls_lsn_format(w->last_lsn, l2);
		ls_format_time(w->last_time, t2, sizeof(t2));
	}
	printf("restorable: generation %s from %s (%s, earliest base) to %s "
	    "(%s, latest transaction)\n", gen, l1, t1, l2, t2);
	if (w->heartbeat > w->last_time) {
		ls_format_time(w->heartbeat, hb, sizeof(hb));
		printf("  the store is complete as of %s (heartbeat)\n", hb);
	}
}

int
inspect_ls(const struct inspect_opts *o)
{
	struct window w, cur = { 0 };
	const char *curgen = NULL;
	struct catalog_identity id;
	char (*gens)[17] = NULL, *err = NULL;
	struct catalog_seg *segs = NULL;
	size_t ngen, nseg, g, i;
	bool have_id;
	int rc = 0;

	if (open_store(o, &id, &have_id, &gens, &ngen) != 0)
		return 1;
	if (have_id)
		printf("store %s: system_id %" PRIu64 ", database %s, current "
	    "generation %s\n", store_url(o->store), id.system_id, id.database,
	    id.generation);
	for (g = 0; g < ngen; g++) {
		if (o->generation != NULL && strcmp(o->generation, gens[g]) != 0)
			continue;
		printf("generation %s\n", gens[g]);
		memset(&w, 0, sizeof(w));
		print_bases(o->store, gens[g], o->key, &w);
		if (catalog_segments(o->store, gens[g], 0, &segs, &nseg, &err) != 0) {
			fprintf(stderr, "logship-restore: %s\n", err);
			rc = 1;
			continue;
		}
		printf("  %-16s  %-12s %-12s %-27s %-27s %8s %10s\n", "segno",
		    "first_lsn", "last_lsn", "first_commit", "last_commit",
		    "txns", "bytes");
		for (i = 0; i < nseg; i++)
			print_segment_line(o->store, gens[g], &segs[i], &w);
		printf("  %zu segments\n", nseg);
		/* the current generation's, else the last one listed */
		if (curgen == NULL || !have_id ||
		    strcmp(gens[g], id.generation) == 0) {
			cur = w;
			curgen = gens[g];
		}
		free(segs);
		segs = NULL;
	}
	if (curgen != NULL)
		print_window(curgen, &cur);
	free(gens);
	free(err);
	return rc;
}

/* ---- verify ---- */

struct verify_state {
	const struct inspect_opts *o;
	const char	*gen;
	struct segment_header prev;
	uint8_t		 prev_sha[32];
	bool		 have_prev;
	size_t		 bad, good, bases;
};

static void
bad(struct verify_state *v, const char *detail)
{
	printf("BAD %s\n", detail);
	v->bad++;
}

static void
verify_one(struct verify_state *v, const struct catalog_seg *s, uint64_t expect)
{
	struct segment_header h;
	char key[64], name[64], *err = NULL;
	uint8_t sha[32];
	int fd = -1;

	segment_object_key(v->gen, s->segno, key);
	snprintf(name, sizeof(name), "segment %016" PRIx64, s->segno);
	if (s->segno != expect) {
		printf("BAD %s/seg: segment %016" PRIx64 " is missing (next "
		    "present is %016" PRIx64 "): gap in the numbering\n",
		    v->gen, expect, s->segno);
		v->bad++;
		v->have_prev = false;
	}
	if (catalog_fetch(v->o->store, key, &fd, &err) != 0 ||
	    segment_verify_fd(fd, name, v->o->key, &h, sha, &err) != 0) {
		bad(v, err);
		v->have_prev = false;
		goto out;
	}
	if (h.segno != s->segno || strcmp(h.generation, v->gen) != 0) {
		printf("BAD %s: header says segment %016" PRIx64 " of generation "
		    "%s: misplaced object\n", key, h.segno, h.generation);
		v->bad++;
	} else if (v->have_prev &&
	    segment_check_chain(&v->prev, v->prev_sha, &h, &err) != 0)
		bad(v, err);
	else if (!v->have_prev && s->segno == 1 && h.has_prev)
		bad(v, "segment 0000000000000001 names a predecessor");
	else
		v->good++;
	v->prev = h;
	memcpy(v->prev_sha, sha, 32);
	v->have_prev = true;
 out:
	if (fd >= 0)
		close(fd);
	free(err);
}

/* Every base of the generation: a complete one must verify whole. */
static void
verify_bases(struct verify_state *v)
{
	char (*names)[24] = NULL, *err = NULL;
	size_t n = 0, i;
	int r;

	if (catalog_bases(v->o->store, v->gen, &names, &n, &err) != 0) {
		bad(v, err);
		free(err);
		return;
	}
	if (n == 0)
		printf("generation %s: no base snapshot (no manifest)\n", v->gen);
	for (i = 0; i < n; i++) {
		bool first = strcmp(names[i], BASE_FIRST) == 0;
		struct base_manifest *m = NULL;

		/* no manifest: not a base; a manifest: every object must be there */
		r = base_manifest_read_named(v->o->store, v->gen, names[i],
		    v->o->key, &m, &err);
		base_manifest_free(m);
		if (r == 0)
			r = base_verify_named(v->o->store, v->gen, names[i],
			    v->o->key, &err);
		else if (r == LS_ERR_NOTFOUND) {
			printf("generation %s: %s%s%sno base snapshot (no manifest: "
			    "being copied, or left by an interrupted copy or "
			    "expire)\n", v->gen, first ? "" : "base ",
			    first ? "" : names[i], first ? "" : ": ");
			free(err);
			err = NULL;
			continue;
		}
		if (r == 0) {
			printf("generation %s: base snapshot %s%sgood\n", v->gen,
			    first ? "" : names[i], first ? "" : " ");
			v->bases++;
		} else
			bad(v, err);
		free(err);
		err = NULL;
	}
	free(names);
}

static void
verify_generation(struct verify_state *v)
{
	struct catalog_seg *segs = NULL;
	struct catalog_expired ex;
	char *err = NULL;
	size_t n, i;
	uint64_t expect = 1;

	verify_bases(v);
	switch (catalog_expired_read(v->o->store, v->gen, &ex, &err)) {
	case 0:
		printf("generation %s: segments below %016" PRIx64 " were "
		    "expired\n", v->gen, ex.first_segno);
		break;
	case LS_ERR_NOTFOUND:
		ex.first_segno = 1;
		break;
	default:
		bad(v, err);
		ex.first_segno = 1;
	}
	free(err);
	err = NULL;
	if (catalog_segments(v->o->store, v->gen, 0, &segs, &n, &err) != 0) {
		bad(v, err);
		free(err);
		return;
	}
	/* an expired prefix may be partly deleted: the rest must be unbroken */
	if (n > 0 && segs[0].segno <= ex.first_segno)
		expect = segs[0].segno;
	else if (n > 0)
		expect = ex.first_segno;
	v->have_prev = false;
	for (i = 0; i < n; i++) {
		verify_one(v, &segs[i], expect);
		expect = segs[i].segno + 1;
	}
	printf("generation %s: %zu segments checked\n", v->gen, n);
	free(segs);
}

int
inspect_verify(const struct inspect_opts *o)
{
	struct verify_state v = { .o = o };
	struct catalog_identity id;
	char (*gens)[17] = NULL;
	size_t ngen, g;
	bool have_id;

	if (open_store(o, &id, &have_id, &gens, &ngen) != 0)
		return 1;
	for (g = 0; g < ngen; g++) {
		if (o->generation != NULL && strcmp(o->generation, gens[g]) != 0)
			continue;
		v.gen = gens[g];
		verify_generation(&v);
	}
	free(gens);
	if (v.bad == 0 && v.good == 0 && v.bases == 0) {
		fprintf(stderr, "logship-restore: store %s holds no base snapshot "
		    "and no segment%s%s: nothing to verify\n", store_url(o->store),
		    o->generation != NULL ? " in generation " : "",
		    o->generation != NULL ? o->generation : "");
		return 1;
	}
	if (v.bad > 0) {
		printf("verify: %zu bad object(s), %zu good segment(s) in %s\n",
		    v.bad, v.good, store_url(o->store));
		return 1;
	}
	printf("verify: all %zu segment(s) good in %s\n", v.good,
	    store_url(o->store));
	return 0;
}

/* ---- cat ---- */

static json_t *
j_lsn(uint64_t lsn)
{
	char buf[32];

	ls_lsn_format(lsn, buf);
	return json_string(buf);
}

static json_t *
j_time(int64_t us)
{
	char buf[40];

	ls_format_time(us, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
j_base64(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	json_t *j;

	if (out == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	j = json_string(out);
	free(out);
	return j;
}

static json_t *
j_value(const struct ls_value *v)
{
	switch (v->kind) {
	case LS_VAL_TEXT:
		return json_stringn(v->data, v->len);
	case LS_VAL_BINARY:
		return json_pack("{s:o}", "base64", j_base64(v->data, v->len));
	case LS_VAL_UNCHANGED:
		return json_pack("{s:b}", "unchanged_toast", 1);
	default:
		return json_null();
	}
}

static json_t *
j_tuple(const struct ls_relation *rel, const struct ls_tuple *t)
{
	json_t *o = json_object();
	char name[32];
	uint16_t i;

	for (i = 0; i < t->ncols; i++) {
		if (rel != NULL && i < rel->ncols)
			json_object_set_new(o, rel->cols[i].name, j_value(&t->vals[i]));
		else {
			snprintf(name, sizeof(name), "$%u", i + 1);
			json_object_set_new(o, name, j_value(&t->vals[i]));
		}
	}
	return o;
}

static json_t *
j_relname(const struct relcache *rc, uint32_t oid)
{
	const struct ls_relation *rel = relcache_get(rc, oid);
	char *s = NULL;
	json_t *j;

	if (rel == NULL || asprintf(&s, "%s.%s", rel->schema, rel->name) < 0)
		return json_integer(oid);
	j = json_string(s);
	free(s);
	return j;
}

static json_t *
j_relation(const struct ls_relation *rel)
{
	json_t *cols = json_array();
	uint16_t i;

	for (i = 0; i < rel->ncols; i++)
		json_array_append_new(cols, json_pack("{s:s,s:I,s:i,s:b}", "name",
		    rel->cols[i].name, "type_oid", (json_int_t)rel->cols[i].type_oid,
		    "typmod", rel->cols[i].typmod, "key",
		    (rel->cols[i].flags & LS_COL_KEY) != 0));
	return json_pack("{s:s,s:I,s:s,s:s,s:s#,s:o}", "type", "relation", "oid",
	    (json_int_t)rel->oid, "schema", rel->schema, "name", rel->name,
	    "replica_identity", &rel->replident, 1, "columns", cols);
}

static json_t *
j_change(const struct relcache *rc, const struct ls_change *c)
{
	const struct ls_relation *rel = relcache_get(rc, c->relid);
	json_t *o, *rels;
	uint32_t i;

	if (c->kind == LS_CHANGE_TRUNCATE) {
		rels = json_array();
		for (i = 0; i < c->nrelids; i++)
			json_array_append_new(rels, j_relname(rc, c->relids[i]));
		return json_pack("{s:s,s:o,s:b,s:b}", "type", "truncate",
		    "relations", rels, "cascade",
		    (c->trunc_flags & LS_TRUNCATE_CASCADE) != 0, "restart_identity",
		    (c->trunc_flags & LS_TRUNCATE_RESTART_IDENTITY) != 0);
	}
	o = json_pack("{s:s,s:o}", "type", c->kind == LS_CHANGE_INSERT ? "insert" :
	    c->kind == LS_CHANGE_UPDATE ? "update" : "delete", "relation",
	    j_relname(rc, c->relid));
	if (c->old_kind != LS_OLD_NONE) {
		json_object_set_new(o, "old_kind", json_string(
		    c->old_kind == LS_OLD_KEY ? "key" : "full"));
		json_object_set_new(o, "old", j_tuple(rel, &c->old));
	}
	if (c->kind != LS_CHANGE_DELETE)
		json_object_set_new(o, "new", j_tuple(rel, &c->new));
	return o;
}

/* A message's content: a DDL message's JSON as JSON, else base64. */
static json_t *
j_content(const struct ls_message *m)
{
	json_t *j;

	if (strcmp(m->prefix, LS_DDL_MESSAGE) == 0 &&
	    (j = json_loadb(m->content, m->len, 0, NULL)) != NULL)
		return j;
	return j_base64(m->content, m->len);
}

static json_t *
j_record(struct relcache *rc, const struct ls_record *r)
{
	const struct ls_txn *t = &r->u.txn;

	switch (r->kind) {
	case LS_REC_RELATION:
		relcache_put(rc, &r->u.rel);
		return j_relation(&r->u.rel);
	case LS_REC_BEGIN:
		return json_pack("{s:s,s:I,s:o,s:o,s:o,s:s?}", "type", "begin",
		    "xid", (json_int_t)t->xid, "commit_lsn", j_lsn(t->commit_lsn),
		    "end_lsn", j_lsn(t->end_lsn), "commit_time",
		    j_time(t->commit_time), "origin", t->origin);
	case LS_REC_COMMIT:
		return json_pack("{s:s,s:o,s:o,s:I}", "type", "commit",
		    "commit_lsn", j_lsn(t->commit_lsn), "end_lsn",
		    j_lsn(t->end_lsn), "changes", (json_int_t)t->nchanges);
	case LS_REC_CHANGE:
		return j_change(rc, &r->u.change);
	case LS_REC_SEQUENCE:
		return json_pack("{s:s,s:s,s:s,s:I,s:b,s:o}", "type", "sequence",
		    "schema", r->u.seq.schema, "name", r->u.seq.name, "last_value",
		    (json_int_t)r->u.seq.last_value, "is_called", r->u.seq.is_called,
		    "lsn", j_lsn(r->u.seq.lsn));
	default:
		return json_pack("{s:s,s:o,s:b,s:s,s:o}", "type", "message", "lsn",
		    j_lsn(r->u.msg.lsn), "transactional", r->u.msg.transactional,
		    "prefix", r->u.msg.prefix, "content", j_content(&r->u.msg));
	}
}

static json_t *
j_header(const struct segment_header *h)
{
	char sysid[32], prev[65];
	json_t *j;

	snprintf(sysid, sizeof(sysid), "%" PRIu64, h->system_id);
	ls_hex(h->prev_sha256, 32, prev);
	j = json_pack("{s:s,s:I,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I,"
	    "s:I,s:s?,s:b}", "type", "header", "segno", (json_int_t)h->segno,
	    "generation", h->generation, "system_id", sysid, "database",
	    h->database, "first_lsn", j_lsn(h->first_lsn), "last_lsn",
	    j_lsn(h->last_lsn), "end_lsn", j_lsn(h->end_lsn), "first_time",
	    j_time(h->first_time), "last_time", j_time(h->last_time), "created",
	    j_time(h->created), "txns", (json_int_t)h->txns, "changes",
	    (json_int_t)h->changes, "records", (json_int_t)h->records,
	    "prev_sha256", h->has_prev ? prev : NULL, "encrypted", h->encrypted);
	if (j != NULL)
		json_object_set_new(j, "compression",
		    json_string(compression_name(h->codec)));
	if (j != NULL && h->has_heartbeat) {
		json_object_set_new(j, "heartbeat_lsn", j_lsn(h->heartbeat_lsn));
		json_object_set_new(j, "heartbeat_time", j_time(h->heartbeat_time));
	}
	return j;
}

static void
print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(j);
}

static int
cat_one(const struct inspect_opts *o, const char *gen, uint64_t segno)
{
	struct segment_reader *r = NULL;
	struct relcache *rc = relcache_new();
	struct ls_record rec;
	char key[64], name[64], *err = NULL;
	int fd = -1, rv;

	segment_object_key(gen, segno, key);
	snprintf(name, sizeof(name), "segment %016" PRIx64, segno);
	/* verify the whole object first: print nothing from a bad segment */
	if ((rv = catalog_fetch(o->store, key, &fd, &err)) == 0 &&
	    (rv = segment_verify_fd(fd, name, o->key, NULL, NULL, &err)) == 0 &&
	    (rv = segment_reader_open(fd, name, o->key, &r, &err)) == 0) {
		print_json(j_header(segment_reader_header(r)));
		while ((rv = segment_reader_next(r, &rec, &err)) == 1)
			print_json(j_record(rc, &rec));
	}
	fflush(stdout);
	if (rv != 0)
		fprintf(stderr, "logship-restore: %s\n", err);
	segment_reader_free(r);
	relcache_free(rc);
	if (fd >= 0)
		close(fd);
	free(err);
	return rv == 0 ? 0 : 1;
}

int
inspect_cat(const struct inspect_opts *o)
{
	char (*gens)[17] = NULL, *err = NULL, gen[17];
	struct catalog_seg *segs = NULL;
	size_t ngen, nseg = 0, i;
	int rc = 0;

	if (catalog_generations(o->store, &gens, &ngen, &err) != 0 || ngen == 0) {
		fprintf(stderr, "logship-restore: %s\n", err != NULL ? err :
		    "the store holds no generation");
		free(err);
		free(gens);
		return 1;
	}
	snprintf(gen, sizeof(gen), "%s", o->generation != NULL ? o->generation :
	    gens[ngen - 1]);
	free(gens);
	if (o->nsegnos > 0) {
		for (i = 0; i < o->nsegnos && rc == 0; i++)
			rc = cat_one(o, gen, o->segnos[i]);
		return rc;
	}
	if (catalog_segments(o->store, gen, 0, &segs, &nseg, &err) != 0) {
		fprintf(stderr, "logship-restore: %s\n", err);
		free(err);
		return 1;
	}
	for (i = 0; i < nseg && rc == 0; i++)
		rc = cat_one(o, gen, segs[i].segno);
	free(segs);
	return rc;
}
