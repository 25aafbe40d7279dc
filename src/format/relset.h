/*
 * relset.h: a small hash set of relation OIDs with their column counts, used
 * to check that every change names a relation its segment defines.
 */
#ifndef LS_RELSET_H
#define LS_RELSET_H

#include <stddef.h>
#include <stdint.h>

struct relset {
	uint32_t	*oids;		/* 0 marks an empty slot */
	uint16_t	*ncols;
	size_t		 cap;		/* power of two, or 0 */
	size_t		 n;
};

/* Insert or update oid (never 0); LS_ERR_NOMEM on allocation failure. */
int relset_put(struct relset *, uint32_t oid, uint16_t ncols);
/* 1 and *ncols if present, 0 if not. */
int relset_get(const struct relset *, uint32_t oid, uint16_t *ncols);
void relset_clear(struct relset *);

#endif
