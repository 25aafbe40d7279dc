/*
 * baseload.h: loading a base snapshot's table chunks into the target with
 * COPY, in parallel.  Each chunk is loaded in one transaction that also
 * records it in logship.base_chunks, so a chunk is loaded exactly once
 * across restarts, and committed only once it is verified in full: an
 * unencrypted, unrewritten chunk as it streams (a difference aborts the
 * COPY), any other before any of it is sent.
 */
#ifndef LS_RESTORE_BASELOAD_H
#define LS_RESTORE_BASELOAD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
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
	/*
	 * Optional rewrite of each COPY line (ID remapping): called with the
	 * table and its columns (from the manifest); sets *out and *outlen, or
	 * *skip to leave the row out.  Called from one thread at a time.
	 */
	int (*transform)(void *arg, const char *schema, const char *name,
	    const char *const *cols, size_t ncols, const char *line, size_t len,
	    const char **out, size_t *outlen, bool *skip, char **errmsg);
	void			*transform_arg;
	/* Optional: leave a table out (filters); called once a chunk. */
	bool (*include)(void *arg, const char *schema, const char *name);
	/*
	 * Optional: the target's COPY column list for a table whose columns
	 * are given (filters drop some): *names (n entries, may point into
	 * cols or elsewhere, valid during the chunk) and *n.
	 */
	int (*columns)(void *arg, const char *schema, const char *name,
	    const char *const *cols, size_t ncols, const char **names, size_t *n);
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
