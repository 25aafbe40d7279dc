/*
 * observe.h: logship-restore's metrics (--metrics-addr, --metrics-file).
 * The segment loop reports what it committed; a thread of its own, with
 * its own store handle, lists the store's head every few seconds to say
 * how far behind the applied position is (segments, bytes, seconds), and
 * rewrites the textfile.
 */
#ifndef LS_RESTORE_OBSERVE_H
#define LS_RESTORE_OBSERVE_H

#include <stdint.h>

#include "replay.h"
#include "state.h"

struct robs;

/*
 * Start when o asks for metrics (*out NULL otherwise): 0, or
 * LS_ERR_INVALID / LS_ERR_IO with *errmsg (a bad or busy address).
 */
int robs_start(const struct replay_opts *o, struct robs **out, char **errmsg);
/* The textfile a last time; stop the thread and the server (NULL: no-op). */
void robs_stop(struct robs *);

/* After each commit to the target: the marker, and the run's totals. */
void robs_applied(struct robs *, const struct state_marker *,
    uint64_t txns_total, uint64_t rows_total);
/* A failed session (error) and a reconnect (retry). */
void robs_error(struct robs *);
void robs_retry(struct robs *);

#endif
