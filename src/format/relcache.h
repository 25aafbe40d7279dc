/*
 * relcache.h: owned copies of relation definitions, keyed by OID.
 * A definition stays valid until it is replaced or the cache is freed.
 */
#ifndef LS_RELCACHE_H
#define LS_RELCACHE_H

#include <stdint.h>

#include "format/record.h"

struct relcache;

struct relcache *relcache_new(void);
void relcache_free(struct relcache *);
/* Store a deep copy of rel, replacing any entry with its OID.  0 or NOMEM. */
int relcache_put(struct relcache *, const struct ls_relation *rel);
/* The cached definition, or NULL. */
const struct ls_relation *relcache_get(const struct relcache *, uint32_t oid);
/* Call fn for every entry (unspecified order). */
void relcache_each(const struct relcache *,
    void (*fn)(void *arg, const struct ls_relation *), void *arg);

#endif
