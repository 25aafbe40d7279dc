/*
 * ddl.h: DDL capture on the source (logship-agent --ddl).
 *
 * Event triggers in schema logship (logship_ddl_command_end and
 * logship_sql_drop, with their functions and the table
 * logship.ddl_shadow) emit every DDL command as a transactional logical
 * decoding message with prefix LS_DDL_MESSAGE, so it travels inside the
 * transaction that ran it, in commit order with its rows.  The message
 * content is specified in schema/segment-format.md, §6.10.
 *
 * Every function returns 0 or LS_ERR_* with one line naming the cause and
 * the fix in *errmsg (caller frees).
 */
#ifndef LS_AGENT_DDL_H
#define LS_AGENT_DDL_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "format/record.h"

/*
 * Install or replace the capture, in one transaction: the triggers, their
 * functions and the shadow of every table's definition.  Running it again
 * is harmless.  Needs a superuser: LS_ERR_INVALID without one.
 */
int ddl_install(PGconn *, char **errmsg);

/* Remove the triggers, functions and shadow table (superuser only). */
int ddl_uninstall(PGconn *, char **errmsg);

/* Are both capture triggers installed and enabled? */
int ddl_installed(PGconn *, bool *on, char **errmsg);

/*
 * m is about to be stored: when it is a DDL message creating a table that
 * publication pub does not publish, log a warning that its rows will not
 * be streamed.  Best effort; c may be NULL (nothing is checked).
 */
void ddl_warn_unpublished(PGconn *c, const char *pub,
    const struct ls_message *m);

#endif
