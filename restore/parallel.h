/*
 * parallel.h: parallel apply that keeps commit order (--apply-workers N).
 *
 * A segment is a chunk: one target transaction on one of N worker
 * connections, committed with the marker at the segment's last
 * transaction, and only after every earlier chunk has committed, so the
 * marker stays one exact frontier.  The dispatcher (the restore's main
 * thread) reads each segment once before handing it on and splits its
 * changes in two:
 *
 *   early    rows no chunk still in flight touches, of tables where
 *            order among different rows cannot matter (one unique index,
 *            the replica identity key; no triggers, rules, partitions;
 *            no foreign keys while their checks are on); inserts into
 *            tables without any unique index.  Sent at once, in parallel
 *            with the chunks before.
 *   ordered  everything else: sent once the chunk before has committed,
 *            so those changes see exactly what serial apply would.
 *
 * No statement of a chunk ever waits for a lock another uncommitted chunk
 * holds: early rows are disjoint from every chunk in flight, and ordered
 * ones run when all earlier chunks are done.  Segments with DDL,
 * TRUNCATE, a published-tables message, a mid-transaction relation, or no
 * transactions are barriers: the caller drains and applies them serially.
 * On any failure in a worker, that chunk and every later one roll back
 * and are handed back to the caller to apply serially, in order.
 */
#ifndef LS_RESTORE_PARALLEL_H
#define LS_RESTORE_PARALLEL_H

#include <stdbool.h>
#include <stdint.h>

#include "format/record.h"
#include "prefetch.h"

struct applier;
struct par;
struct run;

struct state_marker;

/*
 * Start n worker connections and threads for r's session.  The caller's
 * applier (main) answers catalog questions while the workers run.
 * committed(arg, marker, txns, rows) is called after each chunk's commit, from
 * its worker, one at a time, in order.
 */
int par_new(struct run *r, struct applier *main, int n,
    void (*committed)(void *, const struct state_marker *, uint64_t,
    uint64_t), void *arg, struct par **out, char **errmsg);
/* Stops the workers (rolling back whatever is not committed). */
void par_free(struct par *);

/*
 * Take segment it (verified, in order): *taken when it goes to a worker
 * (par owns a duplicate of its descriptor); not taken when it is a
 * barrier, for the caller to apply after par_drain.  Waits while every
 * worker is busy.  on_rel sees the segment's relations first (the
 * caller's own bookkeeping; it defines them in main).
 */
int par_submit(struct par *, const struct prefetch_item *it,
    int (*on_rel)(void *, const struct ls_relation *), void *arg,
    bool *taken, char **errmsg);

/*
 * Wait until every chunk handed out has committed or failed.  Failed
 * chunks (and those after them, rolled back) are returned in order in
 * *redo (n of them; the caller closes their fds and frees the array) to
 * be applied serially.  A failure other than a worker's apply error (out
 * of memory, a worker that cannot connect) is returned.
 */
int par_drain(struct par *, struct prefetch_item **redo, size_t *n,
    char **errmsg);

/* Updates and deletes that found no row, updates folded, changes sent
 * early, chunks committed: the workers' account. */
uint64_t par_missing(const struct par *);
uint64_t par_folded(const struct par *);
uint64_t par_early(const struct par *);
uint64_t par_chunks(const struct par *);

#endif
