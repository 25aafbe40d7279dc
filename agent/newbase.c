/*
 * newbase.c: a fresh base snapshot in the live chain (logship-agent
 * --new-base, --base-interval), taken beside the stream without a new
 * generation and without touching the agent's slot.
 *
 * A second replication connection creates a TEMPORARY logical slot with an
 * exported snapshot; its consistent point C is where the new base stands:
 * every transaction whose commit record lies before C is in the snapshot,
 * every one at or after C is not, and the agent's own slot (which has not
 * confirmed past C: nothing after C existed when it was created) delivers
 * those to segments as usual.  The base is copied under that snapshot into
 * <gen>/base-<C:016x>/ (basecopy.c), its manifest written last; then the
 * connection closes and PostgreSQL drops the temporary slot.
 *
 * --base-interval runs the same in one background thread of the streaming
 * agent, with its own store handle and source connections, whenever the
 * newest base of the generation is older than the interval.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "basecopy.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "ddl.h"
#include "newbase.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "source.h"
#include "store/store.h"

/* Between the stream (newbase_tick) and the base thread. */
struct newbase {
	pthread_t	 thread;
	bool		 running;
	volatile int	 done;		/* the thread finished */
	int64_t		 next_check_us;
	char		 gen[17];	/* the generation when it started */
	struct agent	*a;
};

/* CREATE_REPLICATION_SLOT ... TEMPORARY with an exported snapshot. */
static int
temp_slot(PGconn *repl, const char *slot, uint64_t *lsn, char *snapshot,
    size_t len, char **errmsg)
{
	char name[64], *cmd = NULL;
	PGresult *res = NULL;
	int r = LS_ERR_NOMEM;

	/* the agent's slot name is [a-z0-9_]; keep the temporary one short */
	snprintf(name, sizeof(name), "%.40s_base_%d", slot, (int)getpid());
	if (asprintf(&cmd, "CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL "
	    "pgoutput (SNAPSHOT 'export')", name) < 0)
		return ls_errf(errmsg, r, "out of memory");
	res = PQexec(repl, cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    ls_lsn_parse(PQgetvalue(res, 0, 1), lsn) != 0)
		r = ls_errf(errmsg, LS_ERR_PG, "creating temporary replication "
		    "slot %s for a new base: %s", name,
		    PQresultErrorMessage(res));
	else {
		snprintf(snapshot, len, "%s", PQgetvalue(res, 0, 2));
		r = 0;
	}
	PQclear(res);
	free(cmd);
	return r;
}

/* The source's clock now (Unix us): after C, so after every commit before C. */
static int
source_clock(PGconn *sql, int64_t *us, char **errmsg)
{
	PGresult *res = source_query(sql, "SELECT (extract(epoch FROM "
	    "clock_timestamp()) * 1000000)::bigint", 0, NULL, errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	*us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* The store's generation, which must be this source's and have its first base. */
static int
check_generation(struct store *st, const uint8_t *key, uint64_t system_id,
    const char *database, char gen[17], char **errmsg)
{
	struct catalog_identity id;
	struct base_manifest *m = NULL;
	int r;

	if ((r = catalog_identity_read(st, &id, errmsg)) == LS_ERR_NOTFOUND)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds no %s: "
		    "start logship-agent on it first (a new base joins a live "
		    "store)", store_url(st), CATALOG_IDENTITY);
	if (r != 0)
		return r;
	if (id.system_id != system_id || strcmp(id.database, database) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds database "
		    "%s of system %" PRIu64 ", not %s of %" PRIu64 ": a new base "
		    "must come from the store's own source", store_url(st),
		    id.database, id.system_id, database, system_id);
	r = base_manifest_read_newest(st, id.generation, key, &m, errmsg);
	base_manifest_free(m);
	if (r == LS_ERR_NOTFOUND)
		return ls_errf(errmsg, LS_ERR_INVALID, "generation %s of store %s "
		    "has no base snapshot yet: the streaming agent is still "
		    "taking the first; try again when it logs \"base snapshot "
		    "complete\"", id.generation, store_url(st));
	if (r == 0)
		memcpy(gen, id.generation, 17);
	return r;
}

static int
copy(const struct agent_config *cfg, struct store *st, const uint8_t *key,
    const char *gen, const char *snapshot, const char *name,
    struct base_manifest *m, volatile sig_atomic_t *stop, char **errmsg)
{
	struct basecopy_opts o = { 0 };
	char *tables = cfg->tables ? strdup(cfg->tables) : NULL, *save = NULL;
	const char **tv = NULL, **bigger;
	char *tok;
	int r;

	for (tok = tables ? strtok_r(tables, ",", &save) : NULL; tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((bigger = realloc(tv, (o.ntables + 1) * sizeof(*tv))) == NULL) {
			r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			goto out;
		}
		tv = bigger;
		tv[o.ntables++] = tok;
	}
	o.tables = tv;
	o.conninfo = cfg->source;
	o.snapshot = snapshot;
	o.publication = cfg->publication;
	o.jobs = (int)cfg->jobs;
	o.store = st;
	o.key = key;
	o.comp = &cfg->comp;
	o.generation = gen;
	o.base = name;
	o.spool_dir = cfg->spool_dir;
	o.stop = stop;
	if ((r = basecopy_run(&o, m, errmsg)) == 0)
		r = base_manifest_write(st, m, key, errmsg);
 out:
	free(tv);
	free(tables);
	return r;
}

int
newbase_take(const struct agent_config *cfg, struct store *st,
    const uint8_t *key, volatile sig_atomic_t *stop, char **errmsg)
{
	struct base_manifest *m = NULL;
	PGconn *sql = NULL, *repl = NULL;
	char gen[17], database[64], snapshot[128], name[BASE_NAME_MAX], l[32];
	uint64_t system_id, lsn;
	int64_t clock_us;
	bool ddl_on = false;
	int r;

	if ((r = source_connect(cfg->source, false, &sql, errmsg)) != 0 ||
	    (r = source_identity(sql, &system_id, database, errmsg)) != 0 ||
	    (r = check_generation(st, key, system_id, database, gen,
	    errmsg)) != 0 || (r = ddl_installed(sql, &ddl_on, errmsg)) != 0 ||
	    (r = source_connect(cfg->source, true, &repl, errmsg)) != 0 ||
	    (r = temp_slot(repl, cfg->slot, &lsn, snapshot, sizeof(snapshot),
	    errmsg)) != 0 || (r = source_clock(sql, &clock_us, errmsg)) != 0)
		goto out;
	base_name_for_lsn(lsn, name);
	ls_lsn_format(lsn, l);
	log_info("base", "generation %s: new base %s consistent at %s; copying "
	    "snapshot %s (the agent's slot is not touched)", gen, name, l,
	    snapshot);
	if ((r = base_manifest_new(gen, system_id, database, snapshot, lsn, &m,
	    errmsg)) != 0 || (r = base_manifest_set_name(m, name)) != 0 ||
	    (r = base_manifest_set_consistent_time(m, clock_us)) != 0 ||
	    (r = base_manifest_set_ddl(m, ddl_on)) != 0) {
		if (*errmsg == NULL)
			r = ls_errf(errmsg, r, "out of memory");
		goto out;
	}
	if ((r = copy(cfg, st, key, gen, snapshot, name, m, stop, errmsg)) != 0) {
		r = ls_errprefix(errmsg, r, "new base %s", name);
		goto out;
	}
	log_info("base", "generation %s: new base %s complete (consistent at "
	    "%s)", gen, name, l);
 out:
	base_manifest_free(m);
	PQfinish(repl);		/* drops the temporary slot */
	PQfinish(sql);
	return r;
}

int
newbase_newest_created(struct store *st, const char *gen, const uint8_t *key,
    int64_t *created, char **errmsg)
{
	struct base_manifest *m = NULL;
	int r = base_manifest_read_newest(st, gen, key, &m, errmsg);

	*created = r == 0 ? base_manifest_created(m) : 0;
	base_manifest_free(m);
	if (r == LS_ERR_NOTFOUND) {
		free(*errmsg);
		*errmsg = NULL;
		r = 0;
	}
	return r;
}

/* ---- --base-interval: one background thread of the streaming agent ---- */

static void *
base_thread(void *arg)
{
	struct newbase *nb = arg;
	struct agent *a = nb->a;
	struct store *st = NULL;
	char *err = NULL;
	int64_t created = 0;
	int r;

	if ((r = store_open_opts(a->cfg->store, &a->cfg->store_opts, &st,
	    &err)) == 0 && (r = newbase_newest_created(st, nb->gen, a->key,
	    &created, &err)) == 0 &&
	    ls_now_us() - created >= a->cfg->base_interval_us)
		r = newbase_take(a->cfg, st, a->key, &agent_stop, &err);
	if (r != 0 && !agent_stop)
		log_warn("base", "--base-interval: %s; trying again in a minute",
		    err);
	free(err);
	store_free(st);
	nb->next_check_us = ls_now_us() + (r != 0 ? 60000000 : 10000000);
	__atomic_store_n(&nb->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

void
newbase_tick(struct agent *a)
{
	struct newbase *nb = a->newbase;

	if (a->cfg->base_interval_us <= 0 || agent_stop)
		return;
	if (nb == NULL) {
		if ((nb = calloc(1, sizeof(*nb))) == NULL)
			return;
		nb->a = a;
		a->newbase = nb;
	}
	if (nb->running) {
		if (!__atomic_load_n(&nb->done, __ATOMIC_ACQUIRE))
			return;
		pthread_join(nb->thread, NULL);
		nb->running = false;
	}
	if (ls_now_us() < nb->next_check_us)
		return;
	nb->done = 0;
	nb->next_check_us = INT64_MAX;
	memcpy(nb->gen, a->generation, 17);
	if (pthread_create(&nb->thread, NULL, base_thread, nb) != 0) {
		log_warn("base", "--base-interval: cannot start a thread; "
		    "trying again in a minute");
		nb->next_check_us = ls_now_us() + 60000000;
		return;
	}
	nb->running = true;
}

void
newbase_stop(struct agent *a)
{
	struct newbase *nb = a->newbase;

	if (nb == NULL)
		return;
	if (nb->running)
		pthread_join(nb->thread, NULL);	/* agent_stop ends the copy */
	free(nb);
	a->newbase = NULL;
}
