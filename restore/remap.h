/*
 * remap.h: ID remapping (design.md "ID modes").  For a table whose
 * single-column primary key has a default (sequence, identity, a UUID
 * generator), rows get new keys from the target: the restore draws keys
 * from that default in blocks (one round trip per block, not per row),
 * writes (table, original) -> new into the state's ID map, and rewrites
 * every column whose foreign key points at a remapped table, UPDATE/DELETE
 * keys included.  The target catalog (after its schema exists) decides.
 */
#ifndef LS_RESTORE_REMAP_H
#define LS_RESTORE_REMAP_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "format/record.h"

struct state;
struct state_txn;
struct remap;

enum missing_ref { MISSING_ERROR, MISSING_NULL, MISSING_SKIP };

/* Per-table mode asked for: remap everything possible, or only these. */
struct remap_opts {
	const char	*conninfo;	/* a connection of its own for keys */
	bool		 all;		/* --id-mode remap */
	/* tables named for remap (filter file), NULL-terminated "s.t" */
	const char *const *tables;
	/* tables named for preserve (filter file) */
	const char *const *preserve;
	enum missing_ref on_missing;
};

/* Read the target catalog; *out is NULL-safe to free.  Logs once which
 * tables are remapped and which keep their keys. */
int remap_new(const struct remap_opts *, struct state *, struct remap **out,
    char **errmsg);
void remap_free(struct remap *);
bool remap_active(const struct remap *);
/* Is this table's key remapped?  If so *keycol is its column name. */
bool remap_table(const struct remap *, const char *schema, const char *name,
    const char **keycol);

/* A sequence that feeds a remapped key: source samples must not move it. */
bool remap_sequence(const struct remap *, const char *schema, const char *name);

/* The applier's connection: it sees the open batch's own DDL and rows. */
struct remap_conn {
	int	(*query)(void *arg, const char *sql, int nparams,
	    const char *const *params, PGresult **res, char **errmsg);
	void	*arg;
};

/*
 * After DDL replayed in the open batch (its source transaction's end LSN
 * is tag): read the keys and foreign keys again through c; tables are
 * matched by oid.  A remapped table renamed or moved to another schema
 * has its map entries moved to the new name, one dropped its entries
 * deleted (both tagged, so a crash before the target commit undoes them);
 * a renamed key column or a new key default is followed; new tables with
 * a key default are remapped from now on (keys drawn through c: their
 * sequence may exist only in the batch), new foreign keys followed.  What
 * the map cannot follow returns LS_ERR_SCHEMA with the reason in *errmsg:
 * a key moved to another column or lost its default, a key default or a
 * foreign key that appears on a table already holding rows (their values
 * are source keys the target cannot translate in place).
 */
int remap_refresh(struct remap *, const struct remap_conn *c,
    struct state_txn *txn, uint64_t tag, char **errmsg);

/*
 * Rewrite a change in place for the target (values point into r's scratch,
 * valid until the next call): new keys for inserts, translated keys for
 * UPDATE/DELETE, foreign keys through the map.  txn receives map writes
 * tagged with tag (the source transaction's end LSN).  *skip: drop the
 * change (a missing reference with MISSING_SKIP, or a row never restored).
 * LS_ERR_INVALID names table, column, key and xid for MISSING_ERROR.
 */
int remap_change(struct remap *, struct state_txn *, const struct ls_relation *,
    struct ls_change *, uint64_t tag, uint32_t xid, bool *skip, char **errmsg);

/*
 * The same for one COPY text line of the base snapshot (columns named by
 * cols, ncols of them); *out is the rewritten line (scratch).  Phase one
 * (assign) only allocates and maps the table's own keys.
 */
int remap_copy_assign(struct remap *, struct state_txn *, const char *schema,
    const char *name, const char *const *cols, size_t ncols, const char *line,
    size_t len, char **errmsg);
int remap_copy_line(struct remap *, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char *line, size_t len,
    const char **out, size_t *outlen, bool *skip, char **errmsg);

#endif
