/*
 * baseload.h: loading a base snapshot's table chunks into the target with
 * COPY, in parallel.  Each chunk is verified in full before any of it is
 * sent, and loaded in one transaction that also records it in
 * logship.base_chunks, so a chunk is loaded exactly once across restarts.
 */
#ifndef LS_RESTORE_BASELOAD_H
#define LS_RESTORE_BASELOAD_H

#include <signal.h>
#include <stdint.h>

struct store;
struct state;
struct base_manifest;

struct baseload_opts {
	const char		*conninfo;
	struct store		*store;
	struct state		*state;
	const uint8_t		*key;
	const struct base_manifest *manifest;
	int			 jobs;
	volatile sig_atomic_t	*stop;
};

/* Counters filled in on return. */
struct baseload_stats {
	uint64_t	chunks, skipped, rows, bytes;
};

int baseload_run(const struct baseload_opts *, struct baseload_stats *,
    char **errmsg);

/* Session settings every restore connection uses. */
int restore_session_setup(void *pgconn, char **errmsg);

#endif
