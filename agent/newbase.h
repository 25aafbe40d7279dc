/*
 * newbase.h: a fresh base snapshot in the live chain, beside the stream
 * (logship-agent --new-base and --base-interval; see newbase.c).
 */
#ifndef LS_AGENT_NEWBASE_H
#define LS_AGENT_NEWBASE_H

#include <signal.h>
#include <stdint.h>

struct agent;
struct agent_config;
struct store;

/*
 * Take one base of the store's current generation now, under a temporary
 * slot's exported snapshot, into <gen>/base-<consistent LSN>/, manifest
 * last.  The generation must already have its first base.  Returns 0, or
 * a negative LS_ERR_* with *errmsg (caller frees); LS_ERR_INVALID when the
 * store does not fit the source or *stop interrupted the copy.
 */
int newbase_take(const struct agent_config *, struct store *,
    const uint8_t *key, volatile sig_atomic_t *stop, char **errmsg);

/* When the newest complete base of gen was made (Unix us; 0: none). */
int newbase_newest_created(struct store *, const char *gen,
    const uint8_t *key, int64_t *created, char **errmsg);

/*
 * --base-interval, called from the stream loop: start the background base
 * thread when it is due, reap it when done.  Never blocks.
 */
void newbase_tick(struct agent *);
/* Wait for the base thread (agent_stop interrupts its copy); free. */
void newbase_stop(struct agent *);

#endif
