/* fold.c: the net change of a batch's updates (see fold.h). */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "fold.h"

struct frow {
	struct ls_tuple	 t;		/* values owned, data NUL-terminated */
	char		*key;		/* the key's values, length-prefixed */
	size_t		 keylen;
	uint64_t	 hash;
	struct fold_ctx	 ctx;
};

/* One relation's rows: a vector in first-held order, an index over it. */
struct frel {
	uint32_t	 relid;
	struct frow	*rows;
	size_t		 n, cap;
	size_t		*index;		/* open addressing: row + 1, 0 empty */
	size_t		 icap;		/* a power of two, > 2n */
};

struct fold {
	struct frel	*rels;
	size_t		 nrels;
	size_t		 rows, bytes;
};

struct fold *
fold_new(void)
{
	return calloc(1, sizeof(struct fold));
}

static void
free_row(struct frow *r)
{
	uint16_t i;

	for (i = 0; i < r->t.ncols; i++)
		free((char *)r->t.vals[i].data);
	free(r->t.vals);
	free(r->key);
}

/* Forget rel's rows (keeping its vectors for the next batch). */
static void
clear_rel(struct fold *f, struct frel *rel)
{
	size_t i;

	uint16_t c;

	for (i = 0; i < rel->n; i++) {
		f->bytes -= rel->rows[i].keylen + sizeof(rel->rows[i]);
		for (c = 0; c < rel->rows[i].t.ncols; c++)
			if (rel->rows[i].t.vals[c].data != NULL)
				f->bytes -= rel->rows[i].t.vals[c].len;
		free_row(&rel->rows[i]);
	}
	f->rows -= rel->n;
	rel->n = 0;
	if (rel->index != NULL)
		memset(rel->index, 0, rel->icap * sizeof(*rel->index));
}

void
fold_discard(struct fold *f)
{
	size_t i;

	for (i = 0; f != NULL && i < f->nrels; i++)
		clear_rel(f, &f->rels[i]);
	if (f != NULL)
		f->bytes = f->rows = 0;
}

void
fold_free(struct fold *f)
{
	size_t i;

	if (f == NULL)
		return;
	fold_discard(f);
	for (i = 0; i < f->nrels; i++) {
		free(f->rels[i].rows);
		free(f->rels[i].index);
	}
	free(f->rels);
	free(f);
}

size_t fold_rows(const struct fold *f) { return f->rows; }
size_t fold_bytes(const struct fold *f) { return f->bytes; }

static struct frel *
find_rel(const struct fold *f, uint32_t relid)
{
	size_t i;

	for (i = 0; i < f->nrels; i++)
		if (f->rels[i].relid == relid)
			return &f->rels[i];
	return NULL;
}

bool
fold_has(const struct fold *f, uint32_t relid)
{
	const struct frel *rel = find_rel(f, relid);

	return rel != NULL && rel->n > 0;
}

/* FNV-1a */
static uint64_t
hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 1099511628211ull;
	return h;
}

/* The key's values, each as a 4-byte length then its bytes. */
static char *
key_of(const struct ls_tuple *t, const char *key, size_t *len)
{
	size_t n = 0, at = 0;
	uint16_t i;
	char *k;

	for (i = 0; i < t->ncols; i++)
		if (key[i])
			n += 4 + t->vals[i].len;
	if ((k = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < t->ncols; i++) {
		if (!key[i])
			continue;
		memcpy(k + at, &t->vals[i].len, 4);
		memcpy(k + at + 4, t->vals[i].data, t->vals[i].len);
		at += 4 + t->vals[i].len;
	}
	*len = n;
	return k;
}

static int
set_value(struct fold *f, struct ls_value *dst, const struct ls_value *src)
{
	char *d = NULL;

	if (src->data != NULL) {
		if ((d = malloc((size_t)src->len + 1)) == NULL)
			return LS_ERR_NOMEM;
		memcpy(d, src->data, src->len);
		d[src->len] = '\0';
	}
	f->bytes -= dst->data != NULL ? dst->len : 0;
	free((char *)dst->data);
	*dst = *src;
	dst->data = d;
	f->bytes += src->data != NULL ? src->len : 0;
	return 0;
}

static int
grow_index(struct frel *rel)
{
	size_t cap = rel->icap ? rel->icap * 2 : 64, i, j;
	size_t *index = calloc(cap, sizeof(*index));

	if (index == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < rel->n; i++) {
		for (j = rel->rows[i].hash & (cap - 1); index[j] != 0;
		    j = (j + 1) & (cap - 1))
			;
		index[j] = i + 1;
	}
	free(rel->index);
	rel->index = index;
	rel->icap = cap;
	return 0;
}

static struct frel *
add_rel(struct fold *f, uint32_t relid)
{
	struct frel *bigger = realloc(f->rels, (f->nrels + 1) * sizeof(*bigger));

	if (bigger == NULL)
		return NULL;
	f->rels = bigger;
	memset(&f->rels[f->nrels], 0, sizeof(f->rels[0]));
	f->rels[f->nrels].relid = relid;
	return &f->rels[f->nrels++];
}

int
fold_put(struct fold *f, uint32_t relid, const struct ls_tuple *t,
    const char *key, const struct fold_ctx *ctx, bool *merged)
{
	struct frel *rel = find_rel(f, relid);
	struct frow *row;
	size_t klen, j;
	uint64_t h;
	uint16_t i;
	char *k;
	int rc;

	*merged = false;
	if (rel == NULL && (rel = add_rel(f, relid)) == NULL)
		return LS_ERR_NOMEM;
	if ((k = key_of(t, key, &klen)) == NULL)
		return LS_ERR_NOMEM;
	h = hash(k, klen);
	if (rel->icap <= 2 * (rel->n + 1) && (rc = grow_index(rel)) != 0) {
		free(k);
		return rc;
	}
	for (j = h & (rel->icap - 1); rel->index[j] != 0;
	    j = (j + 1) & (rel->icap - 1)) {
		row = &rel->rows[rel->index[j] - 1];
		if (row->hash != h || row->keylen != klen ||
		    memcmp(row->key, k, klen) != 0)
			continue;
		free(k);
		if (row->t.ncols != t->ncols)
			return LS_ERR_INVALID;
		for (i = 0; i < t->ncols; i++)	/* unsent TOAST: keep */
			if (t->vals[i].kind != LS_VAL_UNCHANGED &&
			    (rc = set_value(f, &row->t.vals[i], &t->vals[i])) != 0)
				return rc;
		row->ctx = *ctx;
		*merged = true;
		return 0;
	}
	if (rel->n == rel->cap) {
		size_t cap = rel->cap ? rel->cap * 2 : 64;
		struct frow *bigger = realloc(rel->rows, cap * sizeof(*bigger));
		if (bigger == NULL) {
			free(k);
			return LS_ERR_NOMEM;
		}
		rel->rows = bigger;
		rel->cap = cap;
	}
	row = &rel->rows[rel->n];
	memset(row, 0, sizeof(*row));
	if ((row->t.vals = calloc(t->ncols + 1, sizeof(*row->t.vals))) == NULL) {
		free(k);
		return LS_ERR_NOMEM;
	}
	row->key = k;
	row->keylen = klen;
	row->hash = h;
	row->ctx = *ctx;
	row->t.ncols = t->ncols;
	rel->index[j] = ++rel->n;
	f->rows++;
	f->bytes += klen + sizeof(*row);
	for (i = 0; i < t->ncols; i++) {
		row->t.vals[i].kind = LS_VAL_NULL;
		if ((rc = set_value(f, &row->t.vals[i], &t->vals[i])) != 0)
			return rc;	/* the row stays, valid: freed with f */
	}
	return 0;
}

int
fold_take(struct fold *f, uint32_t relid, fold_fn fn, void *arg)
{
	size_t i, k;
	int rc = 0;

	for (i = 0; i < f->nrels; i++) {
		struct frel *rel = &f->rels[i];
		if (relid != 0 && rel->relid != relid)
			continue;
		for (k = 0; rc == 0 && k < rel->n; k++)
			rc = fn(arg, rel->relid, &rel->rows[k].t, &rel->rows[k].ctx);
		clear_rel(f, rel);
	}
	return rc;
}
