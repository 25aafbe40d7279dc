/*
 * prefetch.h: fetch and fully verify segments ahead of the apply, in a
 * thread, in order.  In follow mode it polls for new segments with
 * back-off; it reports a gap, a corrupt segment or the end of the
 * generation as an item carrying an error.
 */
#ifndef LS_RESTORE_PREFETCH_H
#define LS_RESTORE_PREFETCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "format/segment.h"

struct store;
struct prefetch;

struct prefetch_item {
	uint64_t		segno;
	int			fd;		/* verified object, or -1 */
	struct segment_header	h;
	uint8_t			sha[32];
	int			rc;		/* 0, or the failure */
	char			*errmsg;	/* when rc != 0 */
};

#define PREFETCH_DEPTH 4

/*
 * until_lsn (0: none), when following: stop waiting for segments once the
 * store records that the agent has stored everything up to it (its idle
 * position, <gen>.confirmed), so that --follow --until-lsn ends even when
 * no later transaction comes.
 */
int prefetch_start(struct store *, const char *generation, const uint8_t *key,
    uint64_t first_segno, bool follow, uint64_t until_lsn,
    volatile sig_atomic_t *stop, struct prefetch **out, char **errmsg);
/*
 * The next segment, in order: 1 with *item filled (the caller closes
 * item->fd and frees item->errmsg), 0 when there is none (not following)
 * or on a stop request; waits while following.
 */
int prefetch_next(struct prefetch *, struct prefetch_item *item);
/* True if the next segment is already waiting (we are catching up). */
bool prefetch_ready(struct prefetch *);
void prefetch_stop(struct prefetch *);

#endif
