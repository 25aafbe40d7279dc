/*
 * elide.h: elision filters (src/filter.h) wired into the restore: which
 * tables, rows and values reach the target, for the base load and for
 * replayed changes.  Validated against the base manifest's tables before
 * anything is applied.
 */
#ifndef LS_RESTORE_ELIDE_H
#define LS_RESTORE_ELIDE_H

#include <stdbool.h>
#include <stddef.h>

#include "filter/filter.h"
#include "format/record.h"

struct base_manifest;
struct elide;

/* Load and validate path; errors are the user's (exit 2). */
int elide_new(const char *path, const struct base_manifest *,
    struct elide **out, char **errmsg);
void elide_free(struct elide *);

bool elide_includes(const struct elide *, const char *schema, const char *name);
/*
 * Where the filter names column col of schema.name (col NULL: the table's
 * section), as "--filter line N" (malloc'd), or NULL.
 */
char *elide_mentions(const struct elide *, const char *schema,
    const char *name, const char *col);
/* Tables the filter file puts in id-mode remap / preserve ("s.t" lists). */
const char *const *elide_remap_tables(const struct elide *);
const char *const *elide_preserve_tables(const struct elide *);

/* The relation the target sees for a source relation (dropped columns). */
int elide_relation(struct elide *, const struct ls_relation *src,
    const struct ls_relation **out, char **errmsg);

/*
 * Filter one change of source relation rel and hand what remains to fn
 * (0, 1 or 2 changes: an update that moves a row in may become a
 * delete-if-present and an insert).  fn's change is valid during the call;
 * if_present: a delete of a row the filter may have left out, so finding
 * no row on the target is expected (no divergence).
 */
int elide_change(struct elide *, const struct ls_relation *rel,
    const struct ls_change *c,
    int (*fn)(void *arg, const struct ls_change *, bool if_present),
    void *arg, char **errmsg);

/* Base snapshot lines and the target's COPY columns. */
int elide_copy_columns(struct elide *, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char **names, size_t *n);
int elide_copy_line(struct elide *, const char *schema, const char *name,
    const char *const *cols, size_t ncols, const char *line, size_t len,
    bool *keep, const char **out, size_t *outlen, char **errmsg);

#endif
