/*
 * source.h: what logship-agent asks of the source database over ordinary
 * (non-replication) SQL: preflight checks, the publication, slot state,
 * sequence samples.  Every function returns 0 or LS_ERR_* with one line
 * naming the cause and the fix.
 */
#ifndef LS_AGENT_SOURCE_H
#define LS_AGENT_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "format/record.h"

/*
 * Connect; replication adds replication=database.  LS_ERR_AUTH for a
 * refused login, LS_ERR_TRANSIENT when the server cannot be reached.
 */
int source_connect(const char *conninfo, bool replication, PGconn **out,
    char **errmsg);

/*
 * Run sql (several statements when nparams is 0); the result, or NULL with
 * *errmsg ("source: <the server's message>") on failure.
 */
PGresult *source_query(PGconn *, const char *sql, int nparams,
    const char *const *params, char **errmsg);

/*
 * source_query for the streaming loop's own queries, which must not hang it:
 * with no answer in timeout_ms (a network gone silent) the connection is
 * shut down -- PQstatus says CONNECTION_BAD from then on -- and NULL comes
 * back with LS_ERR_TRANSIENT in *errmsg.
 */
PGresult *source_query_within(PGconn *, const char *sql, int nparams,
    const char *const *params, int timeout_ms, char **errmsg);

/* wal_level, REPLICATION and CREATE privileges. */
int source_preflight(PGconn *, char **errmsg);

/* System identifier and current database name (64 bytes). */
int source_identity(PGconn *, uint64_t *system_id, char *dbname,
    char **errmsg);

/*
 * Create the publication if it does not exist: FOR ALL TABLES, or for the
 * comma-separated "schema.table" list.  Refuses FOR ALL TABLES while a
 * table has no replica identity, naming the tables.
 */
int source_ensure_publication(PGconn *, const char *pub, const char *tables,
    char **errmsg);

struct slot_state {
	bool	exists;
	bool	lost;		/* invalidated: wal_status = 'lost' */
	int	active_pid;	/* 0 if not in use */
	bool	logical_pgoutput;
	uint64_t confirmed_flush; /* confirmed_flush_lsn; 0 if unknown */
	char	keep_size[32];	/* max_slot_wal_keep_size */
};

int source_slot_state(PGconn *, const char *slot, struct slot_state *,
    char **errmsg);
int source_drop_slot(PGconn *, const char *slot, char **errmsg);

/*
 * What the source holds that logship cannot carry: large objects (counted)
 * and unlogged tables (counted and named, "s.t, s.t"; free unlogged_names).
 */
struct source_caveats {
	int64_t	 large_objects;
	int64_t	 unlogged;
	char	*unlogged_names;
};

int source_caveats(PGconn *, struct source_caveats *, char **errmsg);

/* Sample every sequence: fn(arg, seq) per sequence; lsn = current WAL. */
int source_sample_sequences(PGconn *, int timeout_ms,
    int (*fn)(void *arg, const struct ls_sequence *), void *arg,
    char **errmsg);

#endif
