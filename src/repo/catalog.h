/*
 * catalog.h: the store layout (design.md "The store"):
 *	logship.json			store identity
 *	<gen>.confirmed			idle-confirmed LSN (replaced)
 *	<gen>/base/manifest, <gen>/base/<chunk>	the generation's first base
 *	<gen>/base-<lsn:016x>/...		later bases (base.h)
 *	<gen>/seg/<segno:016x>
 *	<gen>/expired/<segno:016x>		low-water marks of expire
 * Functions here name objects and find them; they return 0 or LS_ERR_*.
 */
#ifndef LS_CATALOG_H
#define LS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "format/segment.h"
#include "store/store.h"

#define CATALOG_IDENTITY	"logship.json"
#define CATALOG_FORMAT		1

struct catalog_seg {
	uint64_t	segno;
	uint64_t	size;
};

/* The store identity (logship.json). */
struct catalog_identity {
	int		format;
	uint64_t	system_id;
	char		database[64];
	char		generation[17];		/* the current generation */
	char		slot[64];		/* the agent's replication slot */
	uint64_t	slot_lsn;		/* its creation LSN; 0: unknown */
	int64_t		created;
};

/* Generations present, ascending; *gens is malloc'd (17 bytes each). */
int catalog_generations(struct store *, char (**gens)[17], size_t *n,
    char **errmsg);

/*
 * The base directories of gen in order: "base" first, then "base-<lsn>"
 * by LSN; a directory is listed whether or not its manifest exists yet.
 * *names is malloc'd, BASE_NAME_MAX (base.h) bytes each.
 */
int catalog_bases(struct store *, const char *gen, char (**names)[24],
    size_t *n, char **errmsg);

/*
 * A low-water mark, written by logship-restore expire before it deletes
 * anything: segments numbered below first_segno and bases older than base
 * (consistent at lsn) may be gone.  Each is a new write-once object
 * <gen>/expired/<first_segno:016x>; the highest is in force.
 */
struct catalog_expired {
	uint64_t	first_segno;	/* the first segment kept */
	uint64_t	lsn;		/* consistent LSN of the oldest base kept */
	char		base[24];	/* that base's name */
	int64_t		time;		/* when expire ran (Unix us) */
};

/* The mark in force; LS_ERR_NOTFOUND when nothing was ever expired. */
int catalog_expired_read(struct store *, const char *gen,
    struct catalog_expired *, char **errmsg);
/* Create <gen>/expired/<first_segno>; 0 also if it exists already. */
int catalog_expired_write(struct store *, const char *gen,
    const struct catalog_expired *, char **errmsg);

/* Segments of gen numbered above after, ascending; *segs malloc'd. */
int catalog_segments(struct store *, const char *gen, uint64_t after,
    struct catalog_seg **segs, size_t *n, char **errmsg);

/*
 * Where a replay from a base consistent at lsn begins: the first of segs
 * (n of them, ascending, from catalog_segments) that may hold a
 * transaction ending after lsn; every segment before it holds only
 * transactions ending at or before lsn.  When none ends after lsn, the
 * last segment (whose trailer continues the chain).  *idx = n when n is 0.
 * Reads O(log n) segment headers.
 */
int catalog_segment_after_lsn(struct store *, const char *gen,
    const struct catalog_seg *segs, size_t n, uint64_t lsn, size_t *idx,
    char **errmsg);

/* Fetch an object into an anonymous temp file; *fdp readable from 0. */
int catalog_fetch(struct store *, const char *key, int *fdp, char **errmsg);

/* Read just a segment's header (ranged reads). */
int catalog_read_header(struct store *, const char *gen, uint64_t segno,
    struct segment_header *h, char **errmsg);

/* Last 32 bytes of a segment object: its SHA-256 trailer. */
int catalog_read_trailer(struct store *, const char *gen, uint64_t segno,
    uint64_t size, uint8_t sha[32], char **errmsg);

/* logship.json: read (LS_ERR_NOTFOUND if absent) and create-if-absent. */
/*
 * Parse the text of logship.json (NUL-terminated) into *id; 0,
 * LS_ERR_CORRUPT (not an identity, or a field out of range) or
 * LS_ERR_VERSION (another store format), with *errmsg.
 */
int catalog_identity_parse(const char *text, struct catalog_identity *id,
    char **errmsg);
int catalog_identity_read(struct store *, struct catalog_identity *,
    char **errmsg);
int catalog_identity_write(struct store *, const struct catalog_identity *,
    int replace, char **errmsg);

/*
 * <gen>.confirmed: the highest position the agent confirmed to the source
 * while idle, past the generation's last stored transaction.  It lies
 * outside the generation's directory and always has the same size, so a
 * mirror copies it once and never refuses it.  Read gives LS_ERR_NOTFOUND
 * when absent; write replaces it.
 */
int catalog_confirmed_read(struct store *, const char *gen, uint64_t *lsn,
    char **errmsg);
int catalog_confirmed_write(struct store *, const char *gen, uint64_t lsn,
    char **errmsg);

#endif
