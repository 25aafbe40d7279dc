/* catalog.c: names and lookups over the store layout (see catalog.h). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "common/util.h"
#include "repo/catalog.h"

static int
is_hex16(const char *s)
{
	int i;

	for (i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
push_gen(char (**gens)[17], size_t *n, const char *key)
{
	char (*bigger)[17] = realloc(*gens, (*n + 1) * sizeof(**gens));

	if (bigger == NULL)
		return LS_ERR_NOMEM;
	*gens = bigger;
	memcpy((*gens)[*n], key, 16);
	(*gens)[*n][16] = '\0';
	(*n)++;
	return 0;
}

int
catalog_generations(struct store *st, char (**gens)[17], size_t *n,
    char **errmsg)
{
	struct store_list l = { 0 };
	char start[32] = "";
	const char *k;
	int r = 0;

	*gens = NULL;
	*n = 0;
	for (;;) {
		if ((r = store_list_after(st, "", start, 1, &l, errmsg)) != 0)
			break;
		if (l.n == 0)
			break;
		k = l.entries[0].key;
		if (strlen(k) > 17 && k[16] == '/' && is_hex16(k)) {
			if ((r = push_gen(gens, n, k)) != 0)
				break;
			/* skip the rest of the generation: "<gen>0" sorts
			 * after every "<gen>/..." and is valid UTF-8 (S3) */
			snprintf(start, sizeof(start), "%.16s0", k);
		} else
			snprintf(start, sizeof(start), "%.30s", k);
		store_list_clear(&l);
	}
	store_list_clear(&l);
	if (r != 0) {
		free(*gens);
		*gens = NULL;
		*n = 0;
	}
	return r;
}

static int
valid_base_name(const char *s, size_t len)
{
	if (len == 4)
		return strncmp(s, "base", 4) == 0;
	return len == 21 && strncmp(s, "base-", 5) == 0 && is_hex16(s + 5);
}

int
catalog_bases(struct store *st, const char *gen, char (**names)[24],
    size_t *n, char **errmsg)
{
	struct store_list l = { 0 };
	char prefix[32], start[64], (*bigger)[24];
	const char *k;
	size_t len;
	int r = 0, first = -1;

	*names = NULL;
	*n = 0;
	snprintf(prefix, sizeof(prefix), "%.16s/base", gen);
	start[0] = '\0';
	for (;;) {
		if ((r = store_list_after(st, prefix, start, 1, &l, errmsg)) != 0 ||
		    l.n == 0)
			break;
		k = l.entries[0].key + 17;	/* past "<gen>/" */
		len = strcspn(k, "/");
		if (k[len] == '/' && valid_base_name(k, len)) {
			if ((bigger = realloc(*names, (*n + 1) *
			    sizeof(**names))) == NULL) {
				r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
				break;
			}
			*names = bigger;
			memcpy((*names)[*n], k, len);
			(*names)[*n][len] = '\0';
			if (len == 4)
				first = (int)*n;
			(*n)++;
		}
		/* "<dir>0" sorts after every "<dir>/..." */
		snprintf(start, sizeof(start), "%.16s/%.*s0", gen, (int)len, k);
		store_list_clear(&l);
	}
	store_list_clear(&l);
	if (r != 0) {
		free(*names);
		*names = NULL;
		*n = 0;
		return r;
	}
	/* "base-..." lists before "base/": the first base goes first */
	if (first > 0) {
		char tmp[24];

		memcpy(tmp, (*names)[first], sizeof(tmp));
		memmove((*names)[1], (*names)[0], (size_t)first * sizeof(tmp));
		memcpy((*names)[0], tmp, sizeof(tmp));
	}
	return 0;
}

static int
collect_expired(void *arg, const struct store_entry *e)
{
	char *last = arg;

	snprintf(last, 64, "%s", e->key);
	return 0;
}

int
catalog_expired_read(struct store *st, const char *gen,
    struct catalog_expired *ex, char **errmsg)
{
	char prefix[32], last[64] = "", *text = NULL;
	const char *lsn = NULL, *base = NULL;
	json_int_t first = 0, when = 0;
	json_error_t je;
	json_t *o = NULL;
	size_t len;
	int r;

	snprintf(prefix, sizeof(prefix), "%.16s/expired/", gen);
	if ((r = store_list_all(st, prefix, collect_expired, last, errmsg)) != 0)
		return r;
	if (last[0] == '\0')
		return LS_ERR_NOTFOUND;
	if ((r = store_get_buf(st, last, 65536, &text, &len, errmsg)) != 0)
		return r;
	o = json_loadb(text, len, 0, &je);
	if (o == NULL || json_unpack_ex(o, &je, 0, "{s:I,s:s,s:s,s:I}",
	    "first_segno", &first, "lsn", &lsn, "base", &base, "time",
	    &when) != 0 || first < 1 || ls_lsn_parse(lsn, &ex->lsn) != 0 ||
	    strlen(base) >= sizeof(ex->base))
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "store %s: %s is not a valid "
		    "expire mark (%s)", store_url(st), last,
		    o == NULL || je.text[0] != '\0' ? je.text : "bad field");
	else {
		ex->first_segno = (uint64_t)first;
		ex->time = when;
		snprintf(ex->base, sizeof(ex->base), "%s", base);
	}
	json_decref(o);
	free(text);
	return r;
}

int
catalog_expired_write(struct store *st, const char *gen,
    const struct catalog_expired *ex, char **errmsg)
{
	char key[64], lsn[32], *text;
	json_t *o;
	int r;

	snprintf(key, sizeof(key), "%.16s/expired/%016" PRIx64, gen,
	    ex->first_segno);
	ls_lsn_format(ex->lsn, lsn);
	o = json_pack("{s:I,s:s,s:s,s:I}", "first_segno",
	    (json_int_t)ex->first_segno, "lsn", lsn, "base", ex->base, "time",
	    (json_int_t)ex->time);
	text = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (text == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	r = store_put_buf(st, key, text, strlen(text), 1, errmsg);
	free(text);
	if (r == LS_ERR_EXISTS) {	/* an earlier, interrupted run */
		free(*errmsg);
		*errmsg = NULL;
		r = 0;
	}
	return r;
}

struct seg_collect {
	struct catalog_seg	*segs;
	size_t			 n, cap;
	size_t			 plen;
};

static int
collect_seg(void *arg, const struct store_entry *e)
{
	struct seg_collect *c = arg;
	const char *name = e->key + c->plen;
	struct catalog_seg *bigger;
	char *end;
	uint64_t segno;

	if (strlen(name) != 16 || !is_hex16(name))
		return 0;		/* not a segment name: ignore */
	segno = strtoull(name, &end, 16);
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		if ((bigger = realloc(c->segs, c->cap * sizeof(*bigger))) == NULL)
			return LS_ERR_NOMEM;
		c->segs = bigger;
	}
	c->segs[c->n].segno = segno;
	c->segs[c->n].size = e->size;
	c->n++;
	return 0;
}

int
catalog_segments(struct store *st, const char *gen, uint64_t after,
    struct catalog_seg **segs, size_t *n, char **errmsg)
{
	struct seg_collect c = { 0 };
	struct store_list l = { 0 };
	char prefix[32], start[64];
	size_t i;
	int r;

	snprintf(prefix, sizeof(prefix), "%s/seg/", gen);
	c.plen = strlen(prefix);
	if (after > 0)
		segment_object_key(gen, after, start);
	else
		start[0] = '\0';
	do {
		if ((r = store_list_after(st, prefix, start, 1000, &l, errmsg)) != 0)
			break;
		for (i = 0; i < l.n && r == 0; i++)
			r = collect_seg(&c, &l.entries[i]);
		if (l.n > 0)
			snprintf(start, sizeof(start), "%s", l.entries[l.n - 1].key);
		store_list_clear(&l);
	} while (r == 0 && l.truncated);
	store_list_clear(&l);
	if (r != 0) {
		free(c.segs);
		return r == LS_ERR_NOMEM ? ls_errf(errmsg, r, "out of memory") : r;
	}
	*segs = c.segs;
	*n = c.n;
	return 0;
}

/*
 * Does the first segment at or after i (below hi) that holds transactions
 * end after lsn?  True when none holds any.
 */
static int
ends_after(struct store *st, const char *gen, const struct catalog_seg *segs,
    size_t i, size_t hi, uint64_t lsn, bool *yes, char **errmsg)
{
	struct segment_header h;
	int r;

	for (; i < hi; i++) {
		if ((r = catalog_read_header(st, gen, segs[i].segno, &h,
		    errmsg)) != 0)
			return r;
		if (h.txns > 0) {
			*yes = h.end_lsn > lsn;
			return 0;
		}
	}
	*yes = true;
	return 0;
}

int
catalog_segment_after_lsn(struct store *st, const char *gen,
    const struct catalog_seg *segs, size_t n, uint64_t lsn, size_t *idx,
    char **errmsg)
{
	size_t lo = 0, hi = n, mid;
	bool yes;
	int r;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((r = ends_after(st, gen, segs, mid, n, lsn, &yes, errmsg)) != 0)
			return r;
		if (yes)
			hi = mid;
		else
			lo = mid + 1;
	}
	*idx = n == 0 ? 0 : lo < n ? lo : n - 1;
	return 0;
}

int
catalog_fetch(struct store *st, const char *key, int *fdp, char **errmsg)
{
	int fd, r;

	if ((fd = ls_temp_fd(NULL, errmsg)) < 0)
		return fd;
	if ((r = store_get(st, key, fd, errmsg)) != 0) {
		close(fd);
		return r;
	}
	*fdp = fd;
	return 0;
}

int
catalog_read_header(struct store *st, const char *gen, uint64_t segno,
    struct segment_header *h, char **errmsg)
{
	char key[64], name[64];
	uint8_t *buf = NULL, *bigger;
	size_t want = 4096, got = 0, need = 0;
	int r;

	segment_object_key(gen, segno, key);
	snprintf(name, sizeof(name), "segment %016" PRIx64, segno);
	for (;;) {
		if ((bigger = realloc(buf, want)) == NULL) {
			r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			break;
		}
		buf = bigger;
		if ((r = store_get_range(st, key, 0, want, buf, &got, errmsg)) != 0)
			break;
		r = segment_parse_header(buf, got, name, h, &need, errmsg);
		if (r != LS_ERR_END)
			break;
		if (got < want || need <= want) {
			r = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: truncated header",
			    name);
			break;
		}
		want = need;
	}
	free(buf);
	return r;
}

int
catalog_read_trailer(struct store *st, const char *gen, uint64_t segno,
    uint64_t size, uint8_t sha[32], char **errmsg)
{
	char key[64];
	size_t got = 0;
	int r;

	segment_object_key(gen, segno, key);
	if (size < 32)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "segment %016" PRIx64
		    ": only %" PRIu64 " bytes", segno, size);
	r = store_get_range(st, key, size - 32, 32, sha, &got, errmsg);
	if (r == 0 && got != 32)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "segment %016" PRIx64
		    ": short trailer", segno);
	return r;
}

/* Decimal digits only, as catalog_identity_write prints a system id. */
static int
is_decimal_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9' || strlen(s) > 20)
		return 0;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

int
catalog_identity_parse(const char *text, struct catalog_identity *id, char **errmsg)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	const char *sysid = NULL, *db = NULL, *gen = NULL, *slot = "";
	const char *slot_lsn = NULL;
	json_int_t format = 0, created = 0;
	uint64_t lsn = 0, sysid_v = 0;
	int r = 0;

	if (o == NULL || json_unpack_ex(o, &je, 0, "{s:I,s:s,s:s,s:s,s?I,s?s,s?s}",
	    "format", &format, "system_id", &sysid, "database", &db,
	    "generation", &gen, "created", &created, "slot", &slot,
	    "slot_lsn", &slot_lsn) != 0)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: %s", CATALOG_IDENTITY,
		    je.text);
	else if (format != CATALOG_FORMAT)
		r = ls_errf(errmsg, LS_ERR_VERSION, "%s: store format %d; this "
		    "logship understands format %d", CATALOG_IDENTITY,
		    (int)format, CATALOG_FORMAT);
	else if (strlen(gen) != 16 || !is_hex16(gen) || strlen(db) >= 64 ||
	    strlen(slot) >= 64)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: bad generation or "
		    "database", CATALOG_IDENTITY);
	else if (!is_decimal_u64(sysid, &sysid_v))
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: system_id is not a "
		    "decimal number", CATALOG_IDENTITY);
	else if (slot_lsn != NULL && ls_lsn_parse(slot_lsn, &lsn) != 0)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: slot_lsn %s is not an "
		    "LSN", CATALOG_IDENTITY, slot_lsn);
	else {
		id->format = (int)format;
		id->system_id = sysid_v;
		snprintf(id->database, sizeof(id->database), "%s", db);
		memcpy(id->generation, gen, 17);
		snprintf(id->slot, sizeof(id->slot), "%s", slot);
		id->slot_lsn = lsn;
		id->created = created;
	}
	json_decref(o);
	return r;
}

int
catalog_identity_read(struct store *st, struct catalog_identity *id,
    char **errmsg)
{
	char *text = NULL;
	size_t len;
	int r;

	if ((r = store_get_buf(st, CATALOG_IDENTITY, 65536, &text, &len,
	    errmsg)) != 0)
		return r;
	r = catalog_identity_parse(text, id, errmsg);
	free(text);
	return r;
}

int
catalog_identity_write(struct store *st, const struct catalog_identity *id,
    int replace, char **errmsg)
{
	char sysid[32], lsn[32], *text;
	json_t *o;
	int r;

	snprintf(sysid, sizeof(sysid), "%" PRIu64, id->system_id);
	o = json_pack("{s:i,s:s,s:s,s:s,s:s,s:I}", "format", CATALOG_FORMAT,
	    "system_id", sysid, "database", id->database, "generation",
	    id->generation, "slot", id->slot, "created", (json_int_t)id->created);
	if (o != NULL && id->slot_lsn != 0) {	/* absent until the slot exists */
		ls_lsn_format(id->slot_lsn, lsn);
		json_object_set_new(o, "slot_lsn", json_string(lsn));
	}
	text = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (text == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	r = store_put_buf(st, CATALOG_IDENTITY, text, strlen(text), !replace,
	    errmsg);
	free(text);
	return r;
}

static void
confirmed_key(const char *gen, char key[32])
{
	snprintf(key, 32, "%.16s.confirmed", gen);
}

int
catalog_confirmed_read(struct store *st, const char *gen, uint64_t *lsn,
    char **errmsg)
{
	char key[32], *text = NULL;
	size_t len;
	int r;

	confirmed_key(gen, key);
	if ((r = store_get_buf(st, key, 64, &text, &len, errmsg)) != 0)
		return r;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	if (ls_lsn_parse(text, lsn) != 0)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "store %s: %s holds no LSN: "
		    "the object is corrupt; remove it (the agent then checks "
		    "the slot against the segments alone)",
		    store_url(st), key);
	free(text);
	return r;
}

int
catalog_confirmed_write(struct store *st, const char *gen, uint64_t lsn,
    char **errmsg)
{
	char key[32], text[32];

	confirmed_key(gen, key);
	/* fixed width: every version of the object has the same size */
	snprintf(text, sizeof(text), "%08X/%08X\n", (unsigned)(lsn >> 32),
	    (unsigned)lsn);
	return store_put_buf(st, key, text, strlen(text), 0, errmsg);
}
