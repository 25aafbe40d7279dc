/*
 * target.h: the restore target.  Its logship schema holds the marker
 * (logship.applied, one row, written in the same transaction as the data it
 * covers) and the base chunks already loaded (logship.base_chunks).
 * Functions return 0 or LS_ERR_* (LS_ERR_TRANSIENT when the connection is
 * gone, worth a retry) with one line in *errmsg.
 */
#ifndef LS_RESTORE_TARGET_H
#define LS_RESTORE_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "state.h"

int target_connect(const char *conninfo, PGconn **out, char **errmsg);

/* "system <id> database <name>": identifies the target for state binding. */
int target_identity(PGconn *, char *buf, size_t len, char **errmsg);

/*
 * The target's marker: LS_ERR_NOTFOUND when the target has never been
 * restored into; *store_id is the store it came from (64+ bytes).
 */
int target_get_marker(PGconn *, struct state_marker *, char *store_id,
    size_t len, char **errmsg);

/*
 * For a new restore: the user tables (outside the logship schema) and
 * whether any of the given tables holds rows.  *names lists the non-empty
 * ones ("a.b, c.d"), malloc'd.
 */
int target_user_tables(PGconn *, int *ntables, char **errmsg);
/* How many of the tables ("schema", "name" pairs) exist on the target. */
int target_existing(PGconn *, const char *const *tables, size_t n,
    size_t *existing, char **errmsg);
int target_nonempty(PGconn *, const char *const *tables, size_t n,
    char **names, char **errmsg);
int target_truncate(PGconn *, const char *const *tables, size_t n,
    char **errmsg);

/* Create the logship schema and its marker row (phase NEW). */
int target_init(PGconn *, const char *store_id, const char *generation,
    char **errmsg);

/*
 * A marker table made by an older logship-restore gets the columns added
 * since (heartbeat_time); nothing when it has them.
 */
int target_upgrade(PGconn *, char **errmsg);
/* SQL that sets the marker; for use inside the caller's transaction. */
int target_marker_sql(PGconn *, const struct state_marker *, char *buf,
    size_t len);

/* Run SQL (no results wanted) outside pipeline mode. */
int target_exec(PGconn *, const char *sql, char **errmsg);

/* "schema"."name" quoted; malloc'd. */
char *target_qualify(PGconn *, const char *schema, const char *name);

/*
 * LS_ERR_TRANSIENT when a failure is worth a retry on a new connection:
 * the connection broke, or SQLSTATE class 08 (connection), 57 (operator
 * intervention: shutdown, restart) or 40 (serialization, deadlock);
 * otherwise LS_ERR_PG.
 */
int target_classify(PGconn *, const PGresult *);

/* Classify a libpq failure (target_classify) and describe it. */
int target_error(PGconn *, const PGresult *, char **errmsg, const char *what);

#endif
