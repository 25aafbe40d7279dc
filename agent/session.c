/*
 * session.c: one connected run of logship-agent.  Reads the store's
 * identity, decides the generation (a new one when the slot is lost or
 * the source's system id changed), takes the base snapshot when the
 * generation has none, then streams.
 *
 * Order matters for crash safety: the identity naming a generation is
 * written before that generation's slot is created, and the manifest is
 * written last; so a generation without a manifest never has segments and
 * is simply redone (its slot dropped and recreated).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "basecopy.h"
#include "common/error.h"
#include "common/log.h"
#include "common/service.h"
#include "common/util.h"
#include "ddl.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "pg/pgoutput.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "source.h"
#include "store/store.h"

/* Run a replication command expecting tuples (or a plain OK). */
static PGresult *
repl_exec(PGconn *c, const char *cmd, ExecStatusType want, char **errmsg)
{
	PGresult *res = PQexec(c, cmd);

	if (PQresultStatus(res) == want)
		return res;
	ls_errf(errmsg, PQstatus(c) == CONNECTION_OK ? LS_ERR_PG :
	    LS_ERR_TRANSIENT, "replication command failed: %s",
	    PQresultErrorMessage(res));
	PQclear(res);
	return NULL;
}

static int
create_slot(struct agent *a, uint64_t *lsn, char *snapshot, size_t len,
    char **errmsg)
{
	char *qslot = PQescapeIdentifier(a->repl, a->cfg->slot,
	    strlen(a->cfg->slot)), *cmd = NULL;
	PGresult *res = NULL;
	int r = LS_ERR_NOMEM;

	if (qslot != NULL && asprintf(&cmd, "CREATE_REPLICATION_SLOT %s LOGICAL "
	    "pgoutput (SNAPSHOT 'export')", qslot) >= 0) {
		r = LS_ERR_PG;
		res = repl_exec(a->repl, cmd, PGRES_TUPLES_OK, errmsg);
	}
	if (res != NULL && PQntuples(res) == 1 &&
	    ls_lsn_parse(PQgetvalue(res, 0, 1), lsn) == 0) {
		snprintf(snapshot, len, "%s", PQgetvalue(res, 0, 2));
		r = 0;
	}
	PQclear(res);
	PQfreemem(qslot);
	free(cmd);
	return r;
}

static int
start_replication(struct agent *a, char **errmsg)
{
	char *qslot = PQescapeIdentifier(a->repl, a->cfg->slot,
	    strlen(a->cfg->slot));
	char *qpub = PQescapeIdentifier(a->repl, a->cfg->publication,
	    strlen(a->cfg->publication));
	char *lit = qpub ? PQescapeLiteral(a->repl, qpub, strlen(qpub)) : NULL;
	char *cmd = NULL;
	PGresult *res = NULL;
	int r = LS_ERR_NOMEM;

	if (qslot && lit && asprintf(&cmd, "START_REPLICATION SLOT %s LOGICAL 0/0 "
	    "(proto_version '2', publication_names %s, streaming 'on', "
	    "messages 'true')", qslot, lit) >= 0) {
		res = repl_exec(a->repl, cmd, PGRES_COPY_BOTH, errmsg);
		r = res != NULL ? 0 : LS_ERR_PG;
	}
	PQclear(res);
	PQfreemem(qslot);
	PQfreemem(qpub);
	PQfreemem(lit);
	free(cmd);
	return r;
}

/* Split --tables into an array for basecopy (pointers into copy). */
static const char **
split_tables(char *copy, size_t *n)
{
	const char **v = NULL, **bigger;
	char *save = NULL, *tok;

	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((bigger = realloc(v, (*n + 1) * sizeof(*v))) == NULL)
			break;
		v = bigger;
		v[(*n)++] = tok;
	}
	return v;
}

static int
copy_base(struct agent *a, const char *snapshot, uint64_t lsn, char **errmsg)
{
	struct basecopy_opts o = { 0 };
	struct base_manifest *m = NULL;
	char *tables = a->cfg->tables ? strdup(a->cfg->tables) : NULL;
	const char **tv = NULL;
	int r;

	o.conninfo = a->cfg->source;
	o.snapshot = snapshot;
	if (tables != NULL)
		o.tables = tv = split_tables(tables, &o.ntables);
	o.publication = a->cfg->publication;
	o.jobs = (int)a->cfg->jobs;
	o.store = a->store;
	o.key = a->key;
	o.comp = &a->cfg->comp;
	o.generation = a->generation;
	o.spool_dir = a->cfg->spool_dir;
	o.stop = &agent_stop;
	o.progress = observe_base;
	o.progress_arg = a;
	if ((r = base_manifest_new(a->generation, a->system_id, a->database,
	    snapshot, lsn, &m, errmsg)) == 0 &&
	    (r = base_manifest_set_ddl(m, a->ddl_on)) == 0 &&
	    (r = basecopy_run(&o, m, errmsg)) == 0)
		r = base_manifest_write(a->store, m, a->key, errmsg);
	base_manifest_free(m);
	free(tv);
	free(tables);
	return r;
}

/*
 * Identity naming generation gen and its slot (with the slot's creation
 * LSN once it exists); create when the store is new.
 */
static int
write_identity(struct agent *a, bool fresh, char **errmsg)
{
	struct catalog_identity id = { .format = CATALOG_FORMAT,
	    .system_id = a->system_id, .slot_lsn = a->slot_lsn,
	    .created = ls_now_us() };
	struct catalog_identity old;
	int r;

	/* the store keeps its creation time: restores use it to tell stores apart */
	if (!fresh && catalog_identity_read(a->store, &old, NULL) == 0)
		id.created = old.created;

	snprintf(id.database, sizeof(id.database), "%s", a->database);
	snprintf(id.slot, sizeof(id.slot), "%s", a->cfg->slot);
	memcpy(id.generation, a->generation, 17);
	r = catalog_identity_write(a->store, &id, !fresh, errmsg);
	if (r == LS_ERR_EXISTS)
		return ls_errf(errmsg, LS_ERR_EXISTS, "another logship-agent "
		    "claimed store %s at the same moment; run one agent per "
		    "store", store_url(a->store));
	return r;
}

/*
 * A new base: publication, identity, slot with exported snapshot, the
 * identity again with the slot's creation LSN (which marks the slot as
 * this store's), copy, manifest.
 */
static int
new_base(struct agent *a, bool fresh, char **errmsg)
{
	char snapshot[128], lsnbuf[32];
	uint64_t lsn;
	int r;

	a->slot_lsn = a->base_lsn = a->idle_lsn = 0;
	a->idle_lsn_us = 0;
	if (fresh)
		log_info("agent", "store %s: creating a new logship store "
		    "(--init)", store_url(a->store));
	if ((r = source_ensure_publication(a->sql, a->cfg->publication,
	    a->cfg->tables, errmsg)) != 0 ||
	    (r = write_identity(a, fresh, errmsg)) != 0 ||
	    (r = source_connect(a->cfg->source, true, &a->repl, errmsg)) != 0 ||
	    (r = create_slot(a, &lsn, snapshot, sizeof(snapshot), errmsg)) != 0)
		return r;
	a->slot_lsn = lsn;
	if ((r = write_identity(a, false, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "recording slot %s in the store",
		    a->cfg->slot);
	ls_lsn_format(lsn, lsnbuf);
	log_info("agent", "generation %s: slot %s created at %s; copying the "
	    "base snapshot %s", a->generation, a->cfg->slot, lsnbuf, snapshot);
	if ((r = copy_base(a, snapshot, lsn, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "base snapshot");
	a->base_lsn = lsn;
	a->segno = 1;
	a->have_prev = false;
	a->stored_end_lsn = a->written_end_lsn = a->server_pos = a->confirmed = 0;
	log_info("agent", "generation %s: base snapshot complete", a->generation);
	return 0;
}

/* The idle position the store holds for this generation, if any. */
static int
read_idle_lsn(struct agent *a, char **errmsg)
{
	int r;

	a->idle_lsn = 0;
	a->idle_lsn_us = 0;
	r = catalog_confirmed_read(a->store, a->generation, &a->idle_lsn, errmsg);
	return r == LS_ERR_NOTFOUND ? 0 : r;
}

/*
 * The slot must not be ahead of the store: what lies between was consumed
 * by another client and is in no segment.  A store written by an agent
 * that did not record its idle confirmations (no slot_lsn in its identity,
 * no <gen>.confirmed) cannot tell those from theft: trust the slot once and
 * record its position, so that every later start is checked.
 */
static int
check_slot_position(struct agent *a, char **errmsg)
{
	uint64_t end = a->stored_end_lsn;
	char l1[32], l2[32];

	if (a->base_lsn > end)
		end = a->base_lsn;
	if (a->idle_lsn > end)
		end = a->idle_lsn;
	if (a->slot_confirmed <= end)
		return 0;
	ls_lsn_format(a->slot_confirmed, l1);
	ls_lsn_format(end, l2);
	if (a->slot_lsn == 0 && a->idle_lsn == 0) {
		log_warn("agent", "store %s was written by an older "
		    "logship-agent that did not record idle confirmations; "
		    "trusting slot %s at %s (the store ends at %s) and checking "
		    "from now on", store_url(a->store), a->cfg->slot, l1, l2);
		a->idle_lsn = a->slot_confirmed;
		return catalog_confirmed_write(a->store, a->generation,
		    a->idle_lsn, errmsg);
	}
	return ls_errf(errmsg, LS_ERR_INVALID, "CHANGES LOST: replication slot "
	    "%s has confirmed up to %s but store %s ends at %s: another client "
	    "consumed the changes between them (another logship-agent on "
	    "another store? pg_recvlogical?) and they are not in this store; "
	    "drop the slot (SELECT pg_drop_replication_slot('%s')) and the "
	    "agent starts a new generation with a new base snapshot",
	    a->cfg->slot, l1, store_url(a->store), l2, a->cfg->slot);
}

/* Continue the generation: number, chain and LSN after its last segment. */
static int
resume(struct agent *a, char **errmsg)
{
	struct catalog_seg *segs = NULL;
	struct segment_header h;
	size_t n, i;
	int r;

	a->segno = 1;
	a->have_prev = false;
	a->stored_end_lsn = a->written_end_lsn = 0;
	if ((r = catalog_segments(a->store, a->generation, 0, &segs, &n,
	    errmsg)) != 0)
		return r;
	if (n > 0) {
		a->segno = segs[n - 1].segno + 1;
		r = catalog_read_trailer(a->store, a->generation,
		    segs[n - 1].segno, segs[n - 1].size, a->prev_sha, errmsg);
		a->have_prev = r == 0;
	}
	for (i = n; r == 0 && i > 0; i--) {	/* last segment with a txn */
		if ((r = catalog_read_header(a->store, a->generation,
		    segs[i - 1].segno, &h, errmsg)) == 0 && h.txns > 0) {
			a->stored_end_lsn = a->written_end_lsn = h.end_lsn;
			break;
		}
	}
	free(segs);
	if (r == 0)
		r = read_idle_lsn(a, errmsg);
	if (r == 0)
		r = check_slot_position(a, errmsg);
	return r;
}

static void
next_generation(char gen[17])
{
	uint64_t g = strtoull(gen, NULL, 16) + 1;

	snprintf(gen, 17, "%016" PRIx64, g);
}

/*
 * The slot's state, giving a walsender whose client just died (kill -9,
 * network loss) a few seconds to notice and release the slot.
 */
static int
slot_state_settled(struct agent *a, struct slot_state *st, char **errmsg)
{
	struct timespec ts = { 0, 250000000 };
	int i, r;

	for (i = 0; i < 40; i++) {
		if ((r = source_slot_state(a->sql, a->cfg->slot, st, errmsg)) != 0 ||
		    st->active_pid == 0 || agent_stop)
			return r;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/*
 * A base is needed and slot exists: drop it only if it is this store's and
 * holds nothing (created for the current generation at id->slot_lsn,
 * nothing confirmed since), or is invalidated and named by the store.
 * Anything else belongs to someone else: refuse, and touch nothing.
 */
static int
drop_stale_slot(struct agent *a, const struct catalog_identity *id,
    bool fresh, bool other_system, const struct slot_state *st,
    char **errmsg)
{
	const char *slot = a->cfg->slot, *url = store_url(a->store);
	char l1[32], l2[32], reason[512];

	ls_lsn_format(id->slot_lsn, l1);
	ls_lsn_format(st->confirmed_flush, l2);
	if (!fresh && !other_system && st->lost) {
		log_warn("agent", "dropping replication slot %s: it was "
		    "invalidated", slot);
		return source_drop_slot(a->sql, slot, errmsg);
	}
	if (!fresh && !other_system && id->slot_lsn != 0 &&
	    st->confirmed_flush == id->slot_lsn) {
		log_warn("agent", "generation %s: dropping replication slot %s "
		    "(created at %s, nothing confirmed since) and redoing the "
		    "base snapshot, which never completed", a->generation, slot,
		    l1);
		return source_drop_slot(a->sql, slot, errmsg);
	}
	if (fresh)
		snprintf(reason, sizeof(reason), "store %s is new", url);
	else if (other_system)
		snprintf(reason, sizeof(reason), "store %s was fed from another "
		    "PostgreSQL system", url);
	else if (id->slot_lsn == 0)
		snprintf(reason, sizeof(reason), "store %s does not record "
		    "creating it", url);
	else
		snprintf(reason, sizeof(reason), "store %s created its slot at "
		    "%s and this one has confirmed up to %s", url, l1, l2);
	return ls_errf(errmsg, LS_ERR_INVALID, "REFUSING SLOT: replication slot "
	    "%s already exists on the source but %s, so it belongs to something "
	    "else (another logship store? another tool?); it is left alone: "
	    "give this agent another --slot, or if the slot is abandoned drop "
	    "it yourself with SELECT pg_drop_replication_slot('%s')", slot,
	    reason, slot);
}

/*
 * The slot of a generation with a base is gone: dropped, or invalidated
 * by the source (wal_status 'lost': the WAL it needed was removed, as
 * max_slot_wal_keep_size allows).  Moves a->generation to the next one and
 * says, on one line, what was lost and what to do.
 */
static void
slot_gone(struct agent *a, const struct slot_state *st)
{
	char old[17], lsn[32], why[256];

	memcpy(old, a->generation, sizeof(old));
	next_generation(a->generation);
	if (!st->exists)
		snprintf(why, sizeof(why), "was dropped");
	else
		snprintf(why, sizeof(why), "was invalidated by the source "
		    "(wal_status lost: the WAL it still needed was removed; "
		    "max_slot_wal_keep_size = %s%s)", st->keep_size,
		    strcmp(st->keep_size, "-1") == 0 ? "" : ", the agent was "
		    "stopped or fell that far behind");
	if (st->exists && st->confirmed_flush != 0)
		ls_lsn_format(st->confirmed_flush, lsn);
	else
		snprintf(lsn, sizeof(lsn), "the last segment");
	log_warn("agent", "GENERATION CHANGE: replication slot %s %s; the "
	    "changes the source committed after %s are missing from generation "
	    "%s; starting generation %s with a new base snapshot (which holds "
	    "their result); restores of generation %s stop at its end: restore "
	    "generation %s into a new, empty database with a new --state-dir%s",
	    a->cfg->slot, why, lsn, old, a->generation, old, a->generation,
	    st->exists ? ", and raise "
	    "max_slot_wal_keep_size (or keep the agent running) so that it "
	    "does not happen again" : "");
}

/* Decide the generation and whether it needs a base; check the slot. */
static int
plan(struct agent *a, bool *need_base, bool *fresh, char **errmsg)
{
	struct catalog_identity id;
	struct base_manifest *m = NULL;
	struct slot_state st;
	bool other_system = false;
	int r;

	memset(&id, 0, sizeof(id));
	r = catalog_identity_read(a->store, &id, errmsg);
	if (r != 0 && r != LS_ERR_NOTFOUND)
		return r;
	*fresh = r == LS_ERR_NOTFOUND;
	if (*fresh && !a->cfg->init)	/* it was there at start: deleted? */
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds no %s: "
		    "not a logship store (a typo in --store?); to create a new "
		    "store there, run logship-agent once with --init",
		    store_url(a->store), CATALOG_IDENTITY);
	if (!*fresh && strcmp(id.database, a->database) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds database "
		    "%s, not %s; use another --store", store_url(a->store),
		    id.database, a->database);
	if (!*fresh && id.slot[0] != '\0' && strcmp(id.slot, a->cfg->slot) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s is fed by slot %s, "
		    "not %s: another logship-agent owns this store; give each "
		    "agent its own --store (or use --slot %s)", store_url(a->store),
		    id.slot, a->cfg->slot, id.slot);
	snprintf(a->generation, sizeof(a->generation), "%s",
	    *fresh ? "0000000000000001" : id.generation);
	a->slot_lsn = id.slot_lsn;
	a->base_lsn = 0;
	if ((r = slot_state_settled(a, &st, errmsg)) != 0)
		return r;
	if (st.active_pid != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "replication slot %s is in "
		    "use by process %d on the source (another logship-agent?); "
		    "stop it, or give this agent its own --slot and --store",
		    a->cfg->slot, st.active_pid);
	a->slot_confirmed = st.confirmed_flush;
	*need_base = *fresh;
	if (!*fresh) {
		r = base_manifest_read(a->store, a->generation, a->key, &m,
		    errmsg);
		if (r == 0)
			a->base_lsn = base_manifest_lsn(m);
		else if (r == LS_ERR_NOTFOUND)	/* expired? a later one will do */
			r = base_manifest_read_newest(a->store, a->generation,
			    a->key, &m, errmsg);
		base_manifest_free(m);
		if (r != 0 && r != LS_ERR_NOTFOUND)
			return r;
		*need_base = r == LS_ERR_NOTFOUND;
	}
	if (!*fresh && id.system_id != a->system_id) {
		next_generation(a->generation);
		log_warn("agent", "GENERATION CHANGE: the source's system id is "
		    "now %" PRIu64 " (store has %" PRIu64 "); starting generation "
		    "%s with a new base snapshot", a->system_id, id.system_id,
		    a->generation);
		*need_base = other_system = true;
	} else if (!*need_base && (!st.exists || st.lost)) {
		slot_gone(a, &st);
		*need_base = true;
	}
	if (*need_base && st.exists)
		return drop_stale_slot(a, &id, *fresh, other_system, &st, errmsg);
	return 0;
}

/* Once per run: what the source holds that no store can carry. */
static void
log_caveats(struct agent *a)
{
	struct source_caveats cv;
	char *err = NULL;

	if (a->caveats_logged)
		return;
	a->caveats_logged = true;
	if (source_caveats(a->sql, &cv, &err) != 0) {
		log_warn("agent", "could not look for large objects and unlogged "
		    "tables: %s", err);
		free(err);
		return;
	}
	if (cv.large_objects > 0)
		log_warn("agent", "%" PRId64 " large object(s): carried in base "
		    "snapshots only; logical decoding does not stream later "
		    "changes to them", cv.large_objects);
	if (cv.unlogged > 0)
		log_warn("agent", "not carried: unlogged tables %s (PostgreSQL "
		    "never publishes them)", cv.unlogged_names);
	log_info("agent", "roles are not carried: create them on the target "
	    "before restoring (pg_dumpall --roles-only)");
	free(cv.unlogged_names);
}

/*
 * --ddl: install the DDL capture (again: a newer version replaces an
 * older one) before any slot exists, so that every DDL after the base is
 * captured.  Without --ddl, say so if an earlier --ddl left it installed.
 */
static int
setup_ddl(struct agent *a, char **errmsg)
{
	bool first = !a->ever_streamed;
	int r;

	if (!a->cfg->ddl) {
		if ((r = ddl_installed(a->sql, &a->ddl_on, errmsg)) == 0 &&
		    a->ddl_on && first)
			log_warn("agent", "the source still has logship's DDL "
			    "capture installed (an earlier --ddl): DDL is still "
			    "recorded in the store; run with --ddl, or remove it "
			    "with logship-agent --ddl-uninstall --source ...");
		return r;
	}
	if ((r = ddl_install(a->sql, errmsg)) != 0)
		return r;
	a->ddl_on = true;
	if (first)
		log_info("agent", "DDL capture installed on the source (event "
		    "triggers logship_ddl_command_end, logship_sql_drop)");
	return 0;
}

static void
disconnect(struct agent *a)
{
	PQfinish(a->repl);
	PQfinish(a->sql);
	a->repl = a->sql = NULL;
	a->in_copy = false;
}

static int
session_body(struct agent *a, char **errmsg)
{
	bool need_base = false, fresh = false;
	char comp[16];
	int r;

	if ((r = source_connect(a->cfg->source, false, &a->sql, errmsg)) != 0 ||
	    (r = source_preflight(a->sql, errmsg)) != 0 ||
	    (r = source_identity(a->sql, &a->system_id, a->database,
	    errmsg)) != 0 || (r = setup_ddl(a, errmsg)) != 0)
		return r;
	log_caveats(a);
	if ((r = plan(a, &need_base, &fresh, errmsg)) != 0)
		return r;
	if (need_base) {
		if ((r = new_base(a, fresh, errmsg)) == 0)
			r = stream_sample_now(a, errmsg);	/* sequences now */
	} else if ((r = resume(a, errmsg)) == 0)
		r = source_connect(a->cfg->source, true, &a->repl, errmsg);
	if (r != 0)
		return r;
	if ((r = start_replication(a, errmsg)) != 0)
		return r;
	a->in_copy = true;
	compression_format(&a->cfg->comp, comp);
	log_info("agent", "streaming generation %s from slot %s, next segment "
	    "%016" PRIx64 ", compression %s", a->generation, a->cfg->slot,
	    a->segno, comp);
	service_busy(false);	/* the stream loop feeds the watchdog now */
	service_ready("streaming generation %s from slot %s, next segment "
	    "%016" PRIx64, a->generation, a->cfg->slot, a->segno);
	a->ever_streamed = true;
	a->got_data = false;
	return stream_run(a, errmsg);
}

int
session_run(struct agent *a, char **errmsg)
{
	int r;

	if (a->rels == NULL && (a->rels = relcache_new()) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (a->dec == NULL && (r = pgo_decoder_new(&a->dec, errmsg)) != 0)
		return r;
	service_busy(true);	/* connecting, maybe a base snapshot */
	r = session_body(a, errmsg);
	service_busy(false);
	disconnect(a);
	return r;
}
