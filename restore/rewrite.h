/*
 * rewrite.h: what of the source reaches the target, and in which shape,
 * for the base snapshot's COPY lines and for replayed changes: the elision
 * filters (elide.h) first, then the ID map (remap.h), then the target.
 * logship's own tables (a source that is itself a restore target) never
 * reach it.  One rewrite a session (target connection).
 */
#ifndef LS_RESTORE_REWRITE_H
#define LS_RESTORE_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/record.h"

struct applier;
struct ddl_plan;
struct base_manifest;
struct baseload_opts;
struct replay_opts;
struct state;
struct state_txn;
struct rewrite;

/* No filters, no ID map yet; NULL when out of memory.  o and state must
 * outlive it. */
struct rewrite *rewrite_new(const struct replay_opts *o, struct state *);
/* Also drops ID map writes never committed; NULL is a no-op. */
void rewrite_free(struct rewrite *);

/* --filter FILE, if given, validated against the base: errors are the
 * user's input (exit 2). */
int rewrite_load_filters(struct rewrite *, const struct base_manifest *,
    char **errmsg);
/* Are filters in use?  Does a table reach the target? */
bool rewrite_filtering(const struct rewrite *);
bool rewrite_includes(const struct rewrite *, const char *schema,
    const char *name);

/* Keys remapped: --id-mode remap, or tables the filter file names. */
bool rewrite_remapping(const struct rewrite *);
/* When remapping, read the target catalog (its schema must exist); once. */
int rewrite_open_remap(struct rewrite *, char **errmsg);

/*
 * Base snapshot.  Phase one of a remapped base draws the new keys of each
 * table rewrite_maps_keys names: rewrite_base_key maps the key of one
 * COPY line the filters keep, writing into txn.  rewrite_baseload then
 * sets the callbacks that filter and rewrite the lines baseload_run sends.
 */
bool rewrite_maps_keys(const struct rewrite *, const char *schema,
    const char *name);
int rewrite_base_key(struct rewrite *, struct state_txn *, const char *schema,
    const char *name, const char *const *cols, size_t ncols, const char *line,
    size_t len, char **errmsg);
void rewrite_baseload(struct rewrite *, struct baseload_opts *);

/*
 * Segments, to ap: a source relation (the target sees its filtered shape),
 * a sequence sample (not one that feeds remapped keys), a change of the
 * source transaction ending at end_lsn (map writes are tagged with it).
 * LS_ERR_SCHEMA: the target's table does not match (apply.h).
 */
int rewrite_relation(struct rewrite *, struct applier *ap,
    const struct ls_relation *, char **errmsg);
int rewrite_sequence(struct rewrite *, struct applier *ap,
    const struct ls_sequence *, char **errmsg);
int rewrite_change(struct rewrite *, struct applier *ap,
    const struct ls_change *, uint64_t end_lsn, uint32_t xid, char **errmsg);

/*
 * A logship.ddl message m (ddl.h) as the filters see it: excluded tables
 * left out, a filter rule naming a renamed column or table a stop.  DDL on
 * a table (index, sequence, type) the target lacks is passed over: asking
 * ap (in the batch) tells.
 */
int rewrite_ddl_plan(struct rewrite *, struct applier *ap,
    const struct ls_message *m, struct ddl_plan **out, char **errmsg);

/*
 * After p's SQL ran in the batch (message at tag): under remapping, the ID
 * map reads keys and foreign keys again (remap_refresh); LS_ERR_SCHEMA
 * with the reason when it cannot follow the change.
 */
int rewrite_ddl_applied(struct rewrite *, struct applier *ap,
    const struct ddl_plan *p, uint64_t tag, char **errmsg);

/*
 * The open batch's ID map writes: committed before the target's COMMIT (a
 * crash between leaves entries beyond the target's marker, dropped at the
 * next start); *wrote: there were some.  Abort drops them.
 */
int rewrite_map_commit(struct rewrite *, bool *wrote, char **errmsg);
void rewrite_map_abort(struct rewrite *);

#endif
