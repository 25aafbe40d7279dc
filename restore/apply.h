/*
 * apply.h: applying decoded changes to the target through prepared
 * statements in libpq pipeline mode.  One target transaction (a batch) may
 * hold many source transactions; the caller decides where batches end and
 * passes the marker UPDATE to commit with them.
 *
 * UPDATE leaves unchanged-TOAST columns alone; UPDATE/DELETE find the row by
 * its replica identity key, or (REPLICA IDENTITY FULL) by every column,
 * touching exactly one row even among duplicates.  Sequences only move
 * forwards.  Errors: LS_ERR_PG (the batch is rolled back by
 * applier_rollback), LS_ERR_SCHEMA (see applier_relation),
 * LS_ERR_TRANSIENT (connection lost).  Messages from the target name the
 * table, the segment and the source transaction.
 */
#ifndef LS_RESTORE_APPLY_H
#define LS_RESTORE_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "format/record.h"

struct applier;

int applier_new(PGconn *, struct applier **out, char **errmsg);
void applier_free(struct applier *);

/*
 * A relation definition, as the target sees it (filters may leave columns
 * out: source is the unfiltered definition, or NULL when it is the same).
 * Before the first change through a new definition the target's table is
 * read: a table missing there, or whose columns differ (added, dropped,
 * retyped on the source), fails that change with LS_ERR_SCHEMA and the
 * ALTER TABLE that would fix it; nothing is sent for it.
 */
int applier_relation(struct applier *, const struct ls_relation *rel,
    const struct ls_relation *source, char **errmsg);
/*
 * With DDL capture: a table the target lacks is created from the relation
 * (built-in column types only) when a change needs it, in the batch, since
 * CREATE TABLE AS sends its rows before its DDL (which then finds it).
 */
void applier_create_missing(struct applier *, bool on);
/* The source transaction being sent, named by errors from the target. */
void applier_context(struct applier *, uint64_t segno, uint64_t commit_lsn,
    uint32_t xid);
/* The source relation last defined for oid, or NULL. */
const struct ls_relation *applier_get_relation(const struct applier *,
    uint32_t oid);
int applier_begin(struct applier *, char **errmsg);
/*
 * Inside the batch, after what was sent before: n DDL statements, run and
 * waited for (an error is LS_ERR_PG with the statement named).  Every
 * table is read from the target again before its next change.
 */
int applier_ddl(struct applier *, char *const *sql, size_t n,
    char **errmsg);
int applier_change(struct applier *, const struct ls_change *, char **errmsg);
/*
 * While on, an UPDATE or DELETE finding no row is expected (a filter may
 * have left the row out): not counted by applier_missing.
 */
void applier_if_present(struct applier *, bool on);
int applier_sequence(struct applier *, const struct ls_sequence *, char **errmsg);
/*
 * Run the extra statements (the marker UPDATE, the replication origin's
 * position; either may be NULL) and COMMIT; wait for the outcome.
 */
int applier_commit(struct applier *, const char *extra1, const char *extra2,
    char **errmsg);
void applier_rollback(struct applier *);
/* Outside a batch: send what is queued (sequence samples) and wait. */
int applier_sync(struct applier *, char **errmsg);
int applier_in_batch(const struct applier *);

/* Outside a batch: which of n tables (schema, name pairs) the target has. */
int applier_tables_present(struct applier *, const char *const *pairs,
    size_t n, bool *present, char **errmsg);
/* The same, anywhere, for relations (kind 'r') or types ('t'). */
int applier_present(struct applier *, char kind, const char *const *pairs,
    size_t n, bool *present, char **errmsg);

/*
 * One query on the applier's connection, anywhere (in a batch it sees the
 * batch's own rows and DDL): everything queued is sent first.  *res is
 * the caller's (PQclear) when 0 is returned.
 */
int applier_query(struct applier *, const char *sql, int nparams,
    const char *const *params, PGresult **res, char **errmsg);

/*
 * Inside a batch: send everything held (folded updates, a run of inserts)
 * and wait until the target has run it all; the batch stays open.
 */
int applier_flush(struct applier *, char **errmsg);

/*
 * What parallel apply (parallel.h) may send early for a relation, read
 * from the target (the relation is resolved first: errors as
 * applier_change's).
 */
enum {
	APPLY_PAR_NO,		/* every change in order */
	APPLY_PAR_KEYED,	/* changes to rows no chunk in flight touches */
	APPLY_PAR_INSERTS,	/* inserts (no unique index) */
	APPLY_PAR_IGNORED,	/* (parallel.c) never reaches the target */
};
int applier_parallel_class(struct applier *, uint32_t relid, int *cls,
    char **errmsg);

/* Counters since applier_new. */
uint64_t applier_rows(const struct applier *);
uint64_t applier_missing(const struct applier *);
/* Updates folded into a later update of the same row (fold.h). */
uint64_t applier_folded(const struct applier *);

#endif
