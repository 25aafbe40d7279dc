/* relcache.c: deep-copied relation definitions by OID (see relcache.h). */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "format/relcache.h"

struct entry {
	struct ls_relation	 rel;
	struct entry		*next;
};

#define NBUCKETS 256

struct relcache {
	struct entry	*buckets[NBUCKETS];
};

struct relcache *
relcache_new(void)
{
	return calloc(1, sizeof(struct relcache));
}

static void
entry_free(struct entry *e)
{
	uint16_t i;

	for (i = 0; i < e->rel.ncols; i++)
		free((char *)e->rel.cols[i].name);
	free(e->rel.cols);
	free((char *)e->rel.schema);
	free((char *)e->rel.name);
	free(e);
}

void
relcache_free(struct relcache *c)
{
	struct entry *e, *next;
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < NBUCKETS; i++)
		for (e = c->buckets[i]; e != NULL; e = next) {
			next = e->next;
			entry_free(e);
		}
	free(c);
}

static struct entry *
entry_copy(const struct ls_relation *rel)
{
	struct entry *e = calloc(1, sizeof(*e));
	uint16_t i;
	int bad = 0;

	if (e == NULL)
		return NULL;
	e->rel = *rel;
	e->rel.schema = strdup(rel->schema != NULL ? rel->schema : "");
	e->rel.name = strdup(rel->name != NULL ? rel->name : "");
	e->rel.cols = calloc(rel->ncols ? rel->ncols : 1, sizeof(*e->rel.cols));
	bad = e->rel.schema == NULL || e->rel.name == NULL || e->rel.cols == NULL;
	for (i = 0; !bad && i < rel->ncols; i++) {
		e->rel.cols[i] = rel->cols[i];
		bad = (e->rel.cols[i].name = strdup(rel->cols[i].name)) == NULL;
	}
	if (bad) {
		e->rel.ncols = i;
		entry_free(e);
		return NULL;
	}
	return e;
}

int
relcache_put(struct relcache *c, const struct ls_relation *rel)
{
	struct entry **pp, *e = entry_copy(rel);

	if (e == NULL)
		return LS_ERR_NOMEM;
	for (pp = &c->buckets[rel->oid % NBUCKETS]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->rel.oid == rel->oid) {
			e->next = (*pp)->next;
			entry_free(*pp);
			*pp = e;
			return 0;
		}
	*pp = e;
	return 0;
}

const struct ls_relation *
relcache_get(const struct relcache *c, uint32_t oid)
{
	const struct entry *e;

	for (e = c->buckets[oid % NBUCKETS]; e != NULL; e = e->next)
		if (e->rel.oid == oid)
			return &e->rel;
	return NULL;
}

void
relcache_each(const struct relcache *c,
    void (*fn)(void *arg, const struct ls_relation *), void *arg)
{
	const struct entry *e;
	int i;

	for (i = 0; i < NBUCKETS; i++)
		for (e = c->buckets[i]; e != NULL; e = e->next)
			fn(arg, &e->rel);
}
