/*
 * ddl.h: a DDL message captured on the source (logship-agent --ddl; a
 * transactional logical message with prefix "logship.ddl", JSON, see
 * schema/segment-format.md §6.10) turned into the SQL statements that bring
 * the target to the same definitions.  Pure: no connection, so it is
 * unit-tested on fixtures; names are quoted here, definitions the source
 * printed (types, defaults, constraints, index definitions) are used as
 * printed, schema-qualified by the capture.
 *
 * Tables are created from their captured definition and altered by
 * diffing the definition before the command with the one after (columns
 * matched by attnum, so a rename is a rename); drops replay what the
 * command named, with CASCADE when the source cascaded.  What cannot be
 * replayed exactly sets plan->stop (and the restore stops before the
 * transaction): the caller names the place and the fix.
 */
#ifndef LS_RESTORE_DDL_H
#define LS_RESTORE_DDL_H

#include <stdbool.h>
#include <stddef.h>

#ifndef LS_DDL_MESSAGE
#define LS_DDL_MESSAGE		"logship.ddl"	/* its prefix */
#endif

/* How the restore's filters see the objects a message names. */
struct ddl_hooks {
	/* Does table schema.name reach the target? */
	bool	(*include)(void *arg, const char *schema, const char *name);
	/*
	 * Does a filter rule name column col of schema.name (or the table
	 * itself, col NULL)?  If so, a malloc'd description ("filter.conf
	 * line 4"), else NULL.
	 */
	char	*(*rule)(void *arg, const char *schema, const char *name,
	    const char *col);
	/*
	 * Does the target have relation (kind 'r') or type ('t')
	 * schema.name?  DDL on one it lacks is passed over: a publication
	 * that does not cover a table still carries its DDL.
	 */
	bool	(*exists)(void *arg, char kind, const char *schema,
	    const char *name);
	void	*arg;
};

struct ddl_plan {
	char	**sql;		/* statements, in order */
	size_t	  nsql;
	bool	  tables;	/* it creates, alters or drops a table */
	bool	  keys;		/* and may change what ID remapping reads:
				 * tables, names, keys, constraints, defaults */
	char	**named;	/* schema, name pairs: relations (tables,
				 * sequences) it created or altered, by
				 * their new names */
	size_t	  nnamed;
	bool	  commit_after;	/* new enum labels: commit after the txn */
	bool	  skippable;	/* stop: --skip-ddl after a fix by hand */
	char	 *stop;		/* why it cannot be replayed, or NULL */
	char	 *query;	/* the source's statement text, for messages */
};

/*
 * Parse one message (len bytes of JSON) into *out (free with
 * ddl_plan_free).  Returns 0, LS_ERR_CORRUPT (not a logship.ddl message
 * this version reads) or LS_ERR_NOMEM.  hooks may be NULL (no filters).
 */
int ddl_plan_new(const char *json, size_t len, const struct ddl_hooks *,
    struct ddl_plan **out, char **errmsg);
void ddl_plan_free(struct ddl_plan *);

/*
 * The SQL statements in s: how many there are (empty ones not counted),
 * the first one's bounds in [*start, *end).  Quotes, dollar quotes and
 * comments are skipped, so a ';' inside them does not count.
 */
size_t ddl_statements(const char *s, size_t *start, size_t *end);

#endif
