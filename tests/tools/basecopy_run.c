/*
 * basecopy_run: the base snapshot copy against a live database, for the
 * integration tests (not installed).
 *
 *	basecopy_run CONNINFO STORE_URL GENERATION JOBS CHUNK_BYTES [KEYFILE]
 *
 * Opens a replication=database connection, runs IDENTIFY_SYSTEM, creates
 * a logical slot (pgoutput) exporting a snapshot, copies the base under
 * it, writes the manifest and the store identity (logship.json, naming
 * GENERATION, so that logship-restore takes the store for one) and drops
 * the slot.  Environment:
 *	BASECOPY_PUBLICATION	publication to copy (default "logship")
 *	BASECOPY_TABLES		"schema.table ..." to copy instead
 *	BASECOPY_SLOT		slot name (default "basecopy_test")
 *	BASECOPY_AFTER_SNAPSHOT	shell command run once the snapshot is
 *				exported, before the copy starts
 *	BASECOPY_STOP		set: the copy is asked to stop at once
 *	BASECOPY_STOP_AFTER_CHUNK set: it is asked to stop once a chunk is
 *				stored (as a SIGTERM in mid-copy would)
 *	LOGSHIP_PG_DUMP		the pg_dump to run
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "basecopy.h"
#include "common/error.h"
#include "common/util.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "store/store.h"

struct slot {
	uint64_t	 sysid;
	uint64_t	 lsn;
	char		 database[64];
	char		 snapshot[64];
};

static volatile sig_atomic_t stop;

/* The progress callback: BASECOPY_STOP_AFTER_CHUNK stops at the first. */
static void
progress(void *arg, size_t tables_done, size_t tables, uint64_t bytes_done,
    uint64_t bytes_estimate)
{
	(void)arg, (void)tables_done, (void)tables, (void)bytes_estimate;
	if (bytes_done > 0 && getenv("BASECOPY_STOP_AFTER_CHUNK") != NULL)
		stop = 1;
}

/* Run a replication command that returns one row; NULL on failure. */
static PGresult *
command(PGconn *c, const char *sql, char **errmsg)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	ls_errf(errmsg, LS_ERR_PG, "%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	return NULL;
}

static int
create_slot(PGconn *c, const char *name, struct slot *s, char **errmsg)
{
	PGresult *res;
	char sql[256];

	if ((res = command(c, "IDENTIFY_SYSTEM", errmsg)) == NULL)
		return LS_ERR_PG;
	s->sysid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(s->database, sizeof(s->database), "%s", PQgetvalue(res, 0, 3));
	PQclear(res);
	snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput "
	    "EXPORT_SNAPSHOT", name);
	if ((res = command(c, sql, errmsg)) == NULL)
		return LS_ERR_PG;
	ls_lsn_parse(PQgetvalue(res, 0, 1), &s->lsn);
	snprintf(s->snapshot, sizeof(s->snapshot), "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	return 0;
}

static void
drop_slot(PGconn *c, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT %s", name);
	PQclear(PQexec(c, sql));
}

/* BASECOPY_TABLES split at spaces; *bufp holds the strings. */
static const char **
table_list(char **bufp, size_t *n)
{
	const char *env = getenv("BASECOPY_TABLES");
	const char **v;
	char *t, *save = NULL;

	*n = 0;
	if (env == NULL || (*bufp = strdup(env)) == NULL ||
	    (v = calloc(strlen(env) + 1, sizeof(*v))) == NULL)
		return NULL;
	for (t = strtok_r(*bufp, " ", &save); t; t = strtok_r(NULL, " ", &save))
		v[(*n)++] = t;
	return v;
}

static int
hook(char **errmsg)
{
	const char *cmd = getenv("BASECOPY_AFTER_SNAPSHOT");

	if (cmd != NULL && system(cmd) != 0)
		return ls_errf(errmsg, LS_ERR_INTERNAL, "BASECOPY_AFTER_SNAPSHOT "
		    "failed");
	return 0;
}

static int
write_identity(const struct basecopy_opts *o, const struct slot *s,
    char **errmsg)
{
	struct catalog_identity id = { .format = CATALOG_FORMAT,
	    .system_id = s->sysid, .slot_lsn = s->lsn, .created = ls_now_us() };

	snprintf(id.database, sizeof(id.database), "%s", s->database);
	snprintf(id.generation, sizeof(id.generation), "%s", o->generation);
	snprintf(id.slot, sizeof(id.slot), "basecopy");
	return catalog_identity_write(o->store, &id, 1, errmsg);
}

static int
copy(struct basecopy_opts *o, const struct slot *s, char **errmsg)
{
	struct base_manifest *m = NULL;
	char *tbuf = NULL;
	int r;

	o->snapshot = s->snapshot;
	o->tables = table_list(&tbuf, &o->ntables);
	if (getenv("BASECOPY_STOP") != NULL)
		stop = 1;
	if ((r = hook(errmsg)) == 0 &&
	    (r = base_manifest_new(o->generation, s->sysid, s->database,
	    s->snapshot, s->lsn, &m, errmsg)) == 0 &&
	    (r = basecopy_run(o, m, errmsg)) == 0)
		r = base_manifest_write(o->store, m, o->key, errmsg);
	if (r == 0)
		r = write_identity(o, s, errmsg);
	base_manifest_free(m);
	free((void *)o->tables);
	free(tbuf);
	return r;
}

int
main(int argc, char **argv)
{
	const char *kw[] = { "dbname", "replication", NULL };
	const char *val[] = { argv[1], "database", NULL };
	const char *slot = getenv("BASECOPY_SLOT");
	struct basecopy_opts o = { 0 };
	struct slot s = { 0 };
	PGconn *c = NULL;
	uint8_t key[32];
	char *err = NULL;
	int r;

	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: basecopy_run CONNINFO STORE_URL "
		    "GENERATION JOBS CHUNK_BYTES [KEYFILE]\n");
		return 2;
	}
	slot = slot != NULL ? slot : "basecopy_test";
	o = (struct basecopy_opts){ .conninfo = argv[1], .generation = argv[3],
	    .jobs = atoi(argv[4]), .chunk_bytes = strtoull(argv[5], NULL, 10),
	    .pg_dump = getenv("LOGSHIP_PG_DUMP"), .stop = &stop,
	    .progress = progress,
	    .publication = getenv("BASECOPY_PUBLICATION") ?
	    getenv("BASECOPY_PUBLICATION") : "logship" };
	if ((r = argc == 7 ? ls_key_load(argv[6], key, &err) : 0) != 0 ||
	    (r = store_open(argv[2], &o.store, &err)) != 0)
		goto out;
	o.key = argc == 7 ? key : NULL;
	c = PQconnectdbParams(kw, val, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		r = ls_errf(&err, LS_ERR_PG, "%s", PQerrorMessage(c));
		goto out;
	}
	if ((r = create_slot(c, slot, &s, &err)) != 0)
		goto out;
	r = copy(&o, &s, &err);
	drop_slot(c, slot);
 out:
	if (r != 0)
		fprintf(stderr, "basecopy_run: %s\n", err ? err : ls_strerror(r));
	PQfinish(c);
	store_free(o.store);
	free(err);
	return r != 0;
}
