/*
 * dropslot.c: logship-agent --drop-slot, for a store that is retired (after
 * a cutover): drop the replication slot the store names, which would
 * otherwise hold WAL on the source forever, and the agent's publication.
 * Only a slot of this store's source system and database, and never one in
 * use; the store itself is not touched and stays restorable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "common/error.h"
#include "ddl.h"
#include "repo/catalog.h"
#include "source.h"
#include "store/store.h"

/* The source is the store's: same system, same database. */
static int
check_source(PGconn *sql, struct store *st, const struct catalog_identity *id,
    char **errmsg)
{
	uint64_t system_id;
	char db[64];
	int r;

	if ((r = source_identity(sql, &system_id, db, errmsg)) != 0)
		return r;
	if (system_id != id->system_id || strcmp(db, id->database) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s was fed from "
		    "database %s of system %" PRIu64 ", but --source is database "
		    "%s of system %" PRIu64 ": refusing to drop a slot there; give "
		    "the store's own source", store_url(st), id->database,
		    id->system_id, db, system_id);
	return 0;
}

/* The slot, if it exists and nobody uses it; *dropped says if it was there. */
static int
drop_the_slot(PGconn *sql, const char *slot, bool *dropped, char **errmsg)
{
	struct slot_state ss;
	int r;

	*dropped = false;
	if ((r = source_slot_state(sql, slot, &ss, errmsg)) != 0 || !ss.exists)
		return r;
	if (ss.active_pid != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "replication slot %s is in "
		    "use by process %d on the source (a logship-agent still "
		    "running?); stop it first (systemctl stop "
		    "logship-agent@NAME), then run --drop-slot again", slot,
		    ss.active_pid);
	if ((r = source_drop_slot(sql, slot, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "dropping replication slot %s",
		    slot);
	*dropped = true;
	return 0;
}

static int
drop_publication(PGconn *sql, const char *pub, char **errmsg)
{
	char *q = PQescapeIdentifier(sql, pub, strlen(pub)), *cmd = NULL;
	PGresult *res = NULL;
	int r = LS_ERR_NOMEM;

	if (q != NULL && asprintf(&cmd, "DROP PUBLICATION IF EXISTS %s", q) >= 0) {
		res = source_query(sql, cmd, 0, NULL, errmsg);
		r = res != NULL ? 0 : LS_ERR_PG;
	}
	if (r == LS_ERR_NOMEM)
		ls_errf(errmsg, r, "out of memory");
	PQclear(res);
	PQfreemem(q);
	free(cmd);
	return r;
}

int
drop_slot_main(const struct agent_config *c)
{
	struct catalog_identity id;
	struct store *st = NULL;
	PGconn *sql = NULL;
	PGresult *res;
	const char *slot = c->slot;
	bool dropped = false, ddl_on = false;
	char *err = NULL;
	int r, status = LS_EXIT_FAILURE;

	store_global_init();
	if (store_open_opts(c->store, &c->store_opts, &st, &err) != 0) {
		status = LS_EXIT_USAGE;
		goto out;
	}
	if ((r = catalog_identity_read(st, &id, &err)) == LS_ERR_NOTFOUND) {
		free(err);
		ls_errf(&err, r, "store %s holds no %s: not a logship store (a "
		    "typo in --store?); --drop-slot drops the slot a store names",
		    store_url(st), CATALOG_IDENTITY);
		status = LS_EXIT_USAGE;
		goto out;
	}
	if (r != 0)
		goto out;
	if (id.slot[0] != '\0')
		slot = id.slot;
	/* a source made read-only for the cutover still lets us drop */
	if ((r = source_connect(c->source, false, &sql, &err)) != 0 ||
	    (r = check_source(sql, st, &id, &err)) != 0 ||
	    (res = source_query(sql, "SET default_transaction_read_only = off",
	    0, NULL, &err)) == NULL)
		goto out;
	PQclear(res);
	if ((r = drop_the_slot(sql, slot, &dropped, &err)) != 0 ||
	    (r = drop_publication(sql, c->publication, &err)) != 0)
		goto out;
	printf("logship-agent: replication slot %s %s, publication %s dropped "
	    "on the source; store %s is unchanged and stays restorable\n", slot,
	    dropped ? "dropped" : "was already gone", c->publication,
	    store_url(st));
	if (ddl_installed(sql, &ddl_on, NULL) == 0 && ddl_on)
		printf("logship-agent: the DDL capture is still installed on the "
		    "source; remove it with logship-agent --ddl-uninstall\n");
	status = 0;
 out:
	if (status != 0)
		fprintf(stderr, "logship-agent: %s\n", err ? err : "failed");
	free(err);
	PQfinish(sql);
	store_free(st);
	return status;
}
