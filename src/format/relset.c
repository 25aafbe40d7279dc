/* relset.c: open-addressing hash of relation OIDs (see relset.h). */
#include <stdlib.h>

#include "common/error.h"
#include "format/relset.h"

static size_t
slot(const struct relset *s, uint32_t oid)
{
	size_t i = (oid * 2654435761u) & (s->cap - 1);

	while (s->oids[i] != 0 && s->oids[i] != oid)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static int
grow(struct relset *s)
{
	struct relset bigger = { 0 };
	size_t i;

	bigger.cap = s->cap ? s->cap * 2 : 64;
	bigger.oids = calloc(bigger.cap, sizeof(*bigger.oids));
	bigger.ncols = calloc(bigger.cap, sizeof(*bigger.ncols));
	if (bigger.oids == NULL || bigger.ncols == NULL) {
		relset_clear(&bigger);
		return LS_ERR_NOMEM;
	}
	for (i = 0; i < s->cap; i++)
		if (s->oids[i] != 0)
			relset_put(&bigger, s->oids[i], s->ncols[i]);
	relset_clear(s);
	*s = bigger;
	return 0;
}

int
relset_put(struct relset *s, uint32_t oid, uint16_t ncols)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap && grow(s) != 0)
		return LS_ERR_NOMEM;
	i = slot(s, oid);
	if (s->oids[i] == 0)
		s->n++;
	s->oids[i] = oid;
	s->ncols[i] = ncols;
	return 0;
}

int
relset_get(const struct relset *s, uint32_t oid, uint16_t *ncols)
{
	size_t i;

	if (s->cap == 0 || oid == 0)
		return 0;
	i = slot(s, oid);
	if (s->oids[i] == 0)
		return 0;
	*ncols = s->ncols[i];
	return 1;
}

void
relset_clear(struct relset *s)
{
	free(s->oids);
	free(s->ncols);
	s->oids = NULL;
	s->ncols = NULL;
	s->cap = s->n = 0;
}
