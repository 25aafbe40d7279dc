/*
 * replay_int.h: what the restore's driver and segment loop (replay.c) and
 * its base phases (phases.c) share: one struct run, passed to both.
 */
#ifndef LS_RESTORE_REPLAY_INT_H
#define LS_RESTORE_REPLAY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "replay.h"
#include "repo/catalog.h"
#include "state.h"

struct base_manifest;
struct robs;
struct rewrite;
struct store;

/*
 * Where from, where to, how far.  The first fields hold for the whole run;
 * c, m and rw belong to one session (target connection) and are NULL
 * between sessions.
 */
struct run {
	const struct replay_opts *o;
	struct store	*store;
	const uint8_t	*keyp;		/* --key-file's key, or NULL */
	struct state	*state;		/* --state-dir */
	struct catalog_identity id;	/* the store's logship.json */
	char		 store_id[160];	/* the store, as the marker names it */
	PGconn		*c;		/* the target */
	struct base_manifest *m;	/* the base of mk's generation */
	struct rewrite	*rw;		/* filters and ID map */
	struct state_marker mk;		/* as last committed to the target */
	bool		 bad_input;	/* the failure is the user's input */
	struct robs	*obs;		/* metrics, or NULL */
};

/* basepick.c */

/*
 * Read into r->m the base to load: for a fresh restore (tm NULL) the newest
 * complete base of gen that --until-* allows; for one resuming at marker
 * tm, the base it was loading, or once streaming the newest at or before
 * its position.  A clear error (r->bad_input set) when expire removed what
 * the restore needs.
 */
int basepick_read(struct run *r, const char *gen,
    const struct state_marker *tm, char **errmsg);
/*
 * In a fresh marker (r->mk), the position right after r->m's snapshot:
 * end LSN at its consistent point and the segment replay begins in.
 */
int basepick_position(struct run *r, char **errmsg);

/* phases.c */

/*
 * First contact with a target: refuse one holding rows of the restored
 * tables unless --truncate (or id-mode remap) says otherwise, create
 * logship's schema, and commit a marker at PHASE_NEW, or at PHASE_SCHEMA
 * when the target already has the tables.  Refusals set r->bad_input.
 */
int phases_start(struct run *r, char **errmsg);

/*
 * From the marker's phase to PHASE_STREAM: pre-data, the base load,
 * large objects and post-data, each committed with the marker's move.
 * Returns 0 at PHASE_STREAM or when restore_stop is set.
 */
int phases_run(struct run *r, char **errmsg);

#endif
