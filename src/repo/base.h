/*
 * base.h: the base snapshots of a generation.  Each lives in its own
 * directory <gen>/<base>/, where <base> is "base" for the one the
 * generation began with and "base-<lsn:016x>" (its consistent LSN) for
 * each later one taken in the live chain (logship-agent --new-base):
 *	<gen>/<base>/pre-data, post-data	pg_dump sections (blobs)
 *	<gen>/<base>/large-objects		pg_dump's large objects
 *	<gen>/<base>/<chunk>			COPY text chunks (blobs)
 *	<gen>/<base>/manifest			JSON in a blob, written last
 * The manifest lists every object with its SHA-256 trailer, so a base is
 * complete exactly when its manifest exists and every object matches.
 * catalog_bases lists a generation's bases in order.
 */
#ifndef LS_BASE_H
#define LS_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct base_manifest;

#define BASE_FIRST	"base"		/* the generation's first base */
#define BASE_NAME_MAX	24		/* "base-" + 16 hex + NUL, rounded */

/* "base", or "base-" and 16 lowercase hex digits. */
bool base_name_valid(const char *name);
/* The name of a later base consistent at lsn: "base-<lsn:016x>". */
void base_name_for_lsn(uint64_t lsn, char out[BASE_NAME_MAX]);
/* "<gen>/<base>/manifest" */
void base_manifest_key(const char *generation, const char *base, char *out,
    size_t outlen);

struct base_chunk {
	const char	*key;
	uint8_t		 sha256[32];
	uint64_t	 bytes;		/* raw COPY bytes */
	uint64_t	 rows;
};

struct base_table {
	const char	*schema;
	const char	*name;
	size_t		 nchunks;
};

int base_manifest_new(const char *generation, uint64_t system_id,
    const char *database, const char *snapshot, uint64_t lsn,
    struct base_manifest **out, char **errmsg);
void base_manifest_free(struct base_manifest *);
/*
 * section: "pre_data", "post_data" (pg_dump's schema sections) or
 * "large_objects" (pg_dump's large objects; count is how many).
 */
int base_manifest_set_section(struct base_manifest *, const char *section,
    const char *key, const uint8_t sha[32], uint64_t bytes, uint64_t count);
/*
 * The base's directory name (BASE_FIRST unless set); set before writing.
 * LS_ERR_INVALID for a name base_name_valid refuses.
 */
int base_manifest_set_name(struct base_manifest *, const char *name);
const char *base_manifest_name(const struct base_manifest *);
/*
 * The source's clock when the snapshot became consistent (Unix us): every
 * transaction in the base committed before it.  0 when not recorded (the
 * first base of a generation).
 */
int base_manifest_set_consistent_time(struct base_manifest *, int64_t us);
int64_t base_manifest_consistent_time(const struct base_manifest *);
/* When the base was begun (Unix us; its snapshot is a moment before). */
int64_t base_manifest_created(const struct base_manifest *);
/* The agent's own publication (not restored); NULL in older manifests. */
int base_manifest_set_publication(struct base_manifest *, const char *name);
const char *base_manifest_publication(const struct base_manifest *);
/*
 * Whether the source's DDL capture (logship-agent --ddl) was installed
 * when the base was taken; false in manifests that predate the key.
 */
int base_manifest_set_ddl(struct base_manifest *, bool on);
bool base_manifest_ddl(const struct base_manifest *);
/* Append a chunk to table schema.name (created on first use). */
int base_manifest_add_chunk(struct base_manifest *, const char *schema,
    const char *name, const struct base_chunk *);
/*
 * Record a table's columns as copied (COPY order; generated and dropped
 * columns left out) with their type OIDs.  Creates the table entry.
 */
int base_manifest_set_columns(struct base_manifest *, const char *schema,
    const char *name, const char *const *names, const uint32_t *types,
    size_t n);
/* Table i's columns: *n of them (0 if the manifest predates columns). */
int base_manifest_columns(const struct base_manifest *, size_t table,
    size_t i, const char **name, uint32_t *type);
size_t base_manifest_ncolumns(const struct base_manifest *, size_t table);

/* Write <gen>/<base>/manifest (create-if-absent), encrypted with key if set. */
int base_manifest_write(struct store *, const struct base_manifest *,
    const uint8_t *key, char **errmsg);
/*
 * Parse the JSON text of a manifest (len bytes; what names it in
 * messages) and check every entry the accessors below hand out: tables
 * with schema and name, chunks and sections with key, sha256, bytes and
 * rows, columns with name and type, the consistent LSN.  So the accessors
 * cannot fail on a manifest this returned.  0 or LS_ERR_CORRUPT (or
 * LS_ERR_NOMEM) with *errmsg.  Free with base_manifest_free.
 */
int base_manifest_parse(const char *text, size_t len, const char *what,
    const char *generation, const char *base, struct base_manifest **out,
    char **errmsg);
/*
 * Fetch, verify and parse <gen>/<base>/manifest (base_manifest_read: the
 * first base); LS_ERR_NOTFOUND when the base is incomplete or absent.
 */
int base_manifest_read(struct store *, const char *generation,
    const uint8_t *key, struct base_manifest **out, char **errmsg);
int base_manifest_read_named(struct store *, const char *generation,
    const char *base, const uint8_t *key, struct base_manifest **out,
    char **errmsg);
/*
 * The newest complete base of the generation (any name); LS_ERR_NOTFOUND
 * when it has none (the first not finished, or every one expired).
 */
int base_manifest_read_newest(struct store *, const char *generation,
    const uint8_t *key, struct base_manifest **out, char **errmsg);

uint64_t base_manifest_lsn(const struct base_manifest *);
const char *base_manifest_snapshot(const struct base_manifest *);
size_t base_manifest_ntables(const struct base_manifest *);
size_t base_manifest_nchunks(const struct base_manifest *);
uint64_t base_manifest_bytes(const struct base_manifest *);
/* Pointers valid while the manifest lives.  0 or LS_ERR_NOTFOUND/CORRUPT. */
int base_manifest_table(const struct base_manifest *, size_t i,
    struct base_table *);
int base_manifest_chunk(const struct base_manifest *, size_t table, size_t i,
    struct base_chunk *);
int base_manifest_section(const struct base_manifest *, const char *section,
    struct base_chunk *);

/*
 * Object key of chunk n of table number table (its place in the base's
 * table list) in base (NULL: BASE_FIRST): "<gen>/<base>/t-<table:08x>-<n:08x>".
 * Numbers only: an object's name reveals no table name, even to one who
 * may list an encrypted store.
 */
void base_chunk_key(const char *generation, const char *base,
    unsigned table, unsigned n, char *out, size_t outlen);

/*
 * Check a base (base_verify: the generation's first): manifest, then every
 * object against it.  LS_ERR_NOTFOUND when there is no manifest.
 */
int base_verify(struct store *, const char *generation, const uint8_t *key,
    char **errmsg);
int base_verify_named(struct store *, const char *generation,
    const char *base, const uint8_t *key, char **errmsg);

#endif
