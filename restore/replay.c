/*
 * replay.c: logship-restore's main job (design.md, "Restore protocol"):
 * sessions against the target, and the segment loop of phase STREAM.
 *
 * A session connects, locks the target, adopts its marker and runs the
 * base phases up to STREAM (phases.c).  Then segments, fetched and
 * verified ahead (prefetch.c), in order, through the filters and the ID
 * map (rewrite.c) to the target (apply.c): many source transactions per
 * target transaction while catching up, never splitting one; --follow
 * waits for more, --until-lsn / --until-time stop at a transaction.
 *
 * The target is authoritative: its logship.applied row is written in the
 * same transaction as the data it covers; LMDB (--state-dir) is updated
 * after, and reconciled from the target at every start.  A lost target
 * connection is retried with back-off and the restore resumes exactly.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "apply.h"
#include "baseload.h"
#include "ddl.h"
#include "common/crashpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "common/service.h"
#include "common/util.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "observe.h"
#include "parallel.h"
#include "prefetch.h"
#include "replay_int.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "rewrite.h"
#include "state.h"
#include "store/store.h"
#include "target.h"

volatile sig_atomic_t restore_stop;

/* A table DDL created or renamed, and at which source LSN. */
struct ddl_table {
	char		*schema, *name;
	uint64_t	 lsn;
};

/* The segment loop's own: this session's applier, and the run's account. */
struct stream {
	struct run	*r;		/* what it shares with the phases */
	struct applier	*ap;		/* this session's */
	struct relcache	*seen;		/* every source relation of this session */
	bool		 origin;	/* a replication origin tracks the source */
	bool		 done;		/* reached the end or the until point */
	bool		 generation_end;	/* the store moved to a newer one */
	bool		 progressed;	/* committed something this session */
	uint64_t	 stop_before;	/* end LSN of a transaction not to apply */
	char		*stop_why;	/* and why (a schema mismatch) */
	uint64_t	 batch_txns;	/* source transactions in this batch */
	bool		 commit_txn;	/* commit at this transaction's end */
	struct ddl_table *ddlt;		/* tables named by replayed DDL */
	size_t		 nddlt;
	uint64_t	 segs, txns, rows_total, missing_total, folded_total;
	int64_t		 start_us, progress_us;
	bool		 tty;		/* stderr is a terminal: show progress */
	struct par	*par;		/* parallel apply, or NULL */
	uint64_t	 par_chunks, par_early;	/* its account */
	bool		 origin_behind;	/* workers moved the marker, not it */
};

/* ---- setup ---- */

static volatile sig_atomic_t restore_hup;

static void
on_stop(int sig)
{
	(void)sig;
	restore_stop++;
}

static void
on_hup(int sig)
{
	(void)sig;
	restore_hup = 1;
}

/* Signals, logs, the key, the store and its identity, the state. */
static int
setup(struct run *r, uint8_t key[32], char **errmsg)
{
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	store_global_init();	/* before any thread */
	if ((rc = log_init(r->o->log_format, r->o->log_file, r->o->verbose,
	    errmsg)) != 0 ||
	    (r->o->key_file != NULL && (rc = ls_key_load(r->o->key_file, key,
	    errmsg)) != 0) ||
	    (rc = store_open_opts(r->o->store_url, r->o->store_opts, &r->store,
	    errmsg)) != 0 ||
	    (rc = state_open(r->o->state_dir, &r->state, errmsg)) != 0)
		return rc;
	r->keyp = r->o->key_file != NULL ? key : NULL;
	rc = catalog_identity_read(r->store, &r->id, errmsg);
	if (rc == LS_ERR_NOTFOUND)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds no "
		    "logship.json: not a logship store, or the agent has not "
		    "started yet", store_url(r->store));
	if (rc != 0)
		return rc;
	snprintf(r->store_id, sizeof(r->store_id), "system %" PRIu64
	    " database %s created %" PRId64, r->id.system_id, r->id.database,
	    r->id.created);
	return 0;
}

/* ---- segments ---- */

static void
stream_init(struct stream *s, struct run *r)
{
	s->r = r;
	s->start_us = ls_now_us();
	s->tty = isatty(STDERR_FILENO) == 1;
}

/*
 * Called for every record: the terminal test is made once (stream_init),
 * since isatty() is a system call and this runs a million times a second.
 */
static void
progress(struct stream *s, bool final)
{
	int64_t now;
	double secs;
	uint64_t rows;
	int64_t asof;
	char lag[32] = "-";

	if (!final && !s->tty)
		return;
	now = ls_now_us();
	if (!final && now - s->progress_us < 1000000)
		return;
	secs = (double)(now - s->start_us) / 1e6;
	rows = s->rows_total + (s->ap ? applier_rows(s->ap) : 0);
	asof = s->r->mk.commit_time > s->r->mk.heartbeat_time ?
	    s->r->mk.commit_time : s->r->mk.heartbeat_time;
	s->progress_us = now;
	if (asof > 0)	/* a heartbeat says an idle source had nothing more */
		snprintf(lag, sizeof(lag), "%.1fs", (double)(now - asof) / 1e6);
	if (final)
		log_info("restore", "summary: segments=%" PRIu64 " transactions=%"
		    PRIu64 " rows=%" PRIu64 " folded=%" PRIu64 " parallel=%"
		    PRIu64 " early=%" PRIu64 " seconds=%.1f", s->segs, s->txns,
		    rows, s->folded_total + (s->ap ? applier_folded(s->ap) : 0),
		    s->par_chunks, s->par_early, secs);
	else
		fprintf(stderr, "\rsegments %" PRIu64 "  transactions %" PRIu64
		    "  rows %" PRIu64 "  %.0f rows/s  lag %s   ", s->segs,
		    s->txns, rows, secs > 0 ? (double)rows / secs : 0.0, lag);
}

static int
commit_batch(struct stream *s, char **errmsg)
{
	struct run *r = s->r;
	char sql[512], origin[256], lsn[32];
	bool wrote;
	int rc;

	if (!applier_in_batch(s->ap))
		return applier_sync(s->ap, errmsg);	/* sequence samples */
	/* map entries first: a crash before the target commits leaves
	 * entries tagged beyond its marker, dropped at the next start */
	if ((rc = rewrite_map_commit(r->rw, &wrote, errmsg)) != 0) {
		applier_rollback(s->ap);
		return rc;
	}
	if (wrote)
		crashpoint("restore-after-map-commit");	/* before the target's */
	ls_lsn_format(r->mk.end_lsn, lsn);
	snprintf(origin, sizeof(origin), "SELECT pg_replication_origin_xact_setup("
	    "'%s', 'epoch'::timestamptz + %" PRId64 " * interval '1 microsecond')",
	    lsn, r->mk.commit_time);
	if ((rc = target_marker_sql(r->c, &r->mk, sql, sizeof(sql))) != 0 ||
	    (rc = applier_commit(s->ap, sql, s->origin ? origin : NULL,
	    errmsg)) != 0)
		return rc;
	/* before LMDB's; counting batches that held source transactions,
	 * not one of heartbeats alone */
	if (s->batch_txns > 0)
		crashpoint("restore-after-target-commit");
	s->batch_txns = 0;
	s->commit_txn = false;
	s->progressed = true;
	if ((rc = state_put_marker(r->state, &r->mk, errmsg)) == 0)
		robs_applied(r->obs, &r->mk, s->txns, s->rows_total +
		    applier_rows(s->ap));
	return rc;
}

/* Is this transaction beyond --until-lsn / --until-time? */
static bool
beyond_until(const struct run *r, const struct ls_txn *t)
{
	return (r->o->has_until_lsn && t->commit_lsn > r->o->until_lsn) ||
	    (r->o->has_until_time && t->commit_time > r->o->until_time);
}

struct seg_ctx {
	struct stream		*s;
	const struct prefetch_item *it;
	bool			 skip;	/* current transaction already applied */
	uint64_t		 end_lsn;	/* of the current transaction */
	uint64_t		 commit_lsn;
	int64_t			 commit_time;
	uint32_t		 xid;
};

/* Source relation: remembered; the target sees its filtered shape. */
static int
on_relation(struct stream *s, const struct ls_relation *rel, char **errmsg)
{
	if (relcache_put(s->seen, rel) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	return rewrite_relation(s->r->rw, s->ap, rel, errmsg);
}

/* Tables known to this restore: "schema", "name" pairs, without repeats. */
struct known {
	const char	**v;
	size_t		 n, cap;
	int		 oom;
};

static void
known_add(struct known *k, const char *schema, const char *name)
{
	const char **bigger;
	size_t i;

	for (i = 0; i < k->n; i++)
		if (strcmp(k->v[2 * i], schema) == 0 &&
		    strcmp(k->v[2 * i + 1], name) == 0)
			return;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		if ((bigger = realloc(k->v, 2 * k->cap * sizeof(*bigger))) == NULL) {
			k->oom = 1;
			return;
		}
		k->v = bigger;
	}
	k->v[2 * k->n] = schema;
	k->v[2 * k->n++ + 1] = name;
}

static void
known_rel(void *arg, const struct ls_relation *rel)
{
	known_add(arg, rel->schema, rel->name);
}

/* Is schema.name among the [schema, name] pairs of the JSON array? */
static bool
published(json_t *tables, const char *schema, const char *name)
{
	size_t i;
	json_t *t;

	json_array_foreach(tables, i, t)
		if (strcmp(json_string_value(json_array_get(t, 0)) ?
		    json_string_value(json_array_get(t, 0)) : "", schema) == 0 &&
		    strcmp(json_string_value(json_array_get(t, 1)) ?
		    json_string_value(json_array_get(t, 1)) : "", name) == 0)
			return true;
	return false;
}

/* Did replayed DDL give a table this name after the sample at lsn? */
static bool
ddl_since(const struct stream *s, const char *schema, const char *name,
    uint64_t lsn)
{
	size_t i;

	for (i = 0; i < s->nddlt; i++)
		if (s->ddlt[i].lsn > lsn && strcmp(s->ddlt[i].schema, schema) ==
		    0 && strcmp(s->ddlt[i].name, name) == 0)
			return true;
	return false;
}

/* Remember the tables a plan created or renamed, for tables_check. */
static int
ddl_remember(struct stream *s, const struct ddl_plan *p, uint64_t lsn)
{
	struct ddl_table *bigger;
	size_t i;

	for (i = 0; i + 1 < p->nnamed; i += 2) {
		if ((bigger = realloc(s->ddlt, (s->nddlt + 1) *
		    sizeof(*bigger))) == NULL)
			return LS_ERR_NOMEM;
		s->ddlt = bigger;
		bigger[s->nddlt].lsn = lsn;
		bigger[s->nddlt].schema = strdup(p->named[i]);
		bigger[s->nddlt].name = strdup(p->named[i + 1]);
		if (bigger[s->nddlt].schema == NULL ||
		    bigger[s->nddlt].name == NULL) {
			free(bigger[s->nddlt].schema);
			free(bigger[s->nddlt].name);
			return LS_ERR_NOMEM;
		}
		s->nddlt++;
	}
	return 0;
}

/*
 * The agent's sample of the tables the source publishes (a message between
 * transactions, written when the set changes).  A table restored here (in
 * the base; or seen in the stream, when the source's DDL is not captured,
 * since captured DDL creates, renames and drops tables itself) that
 * the source no longer publishes (dropped, renamed, taken out of the
 * publication) while the target still has it stops the restore, with
 * everything before this point committed.
 */
static int
tables_check(struct seg_ctx *x, const struct ls_message *m, char **errmsg)
{
	struct stream *s = x->s;
	struct run *r = s->r;
	struct known k = { NULL, 0, 0, 0 }, gone = { NULL, 0, 0, 0 };
	struct base_table t;
	json_error_t je;
	json_t *o = json_loadb(m->content, m->len, 0, &je), *tables;
	bool *present = NULL;
	char lsn[32], *list = NULL, *next;
	size_t i;
	int rc = 0;

	tables = json_object_get(o, "tables");
	if (!json_is_array(tables)) {
		json_decref(o);
		return ls_errf(errmsg, LS_ERR_CORRUPT, "segment %016" PRIx64 ": "
		    "%s message does not parse", x->it->segno, LS_TABLES_MESSAGE);
	}
	for (i = 0; base_manifest_table(r->m, i, &t) == 0; i++)
		known_add(&k, t.schema, t.name);
	if (!base_manifest_ddl(r->m))	/* with capture, DDL made the rest */
		relcache_each(s->seen, known_rel, &k);
	for (i = 0; i < k.n; i++)
		if (!published(tables, k.v[2 * i], k.v[2 * i + 1]) &&
		    !ddl_since(s, k.v[2 * i], k.v[2 * i + 1], m->lsn) &&
		    rewrite_includes(r->rw, k.v[2 * i], k.v[2 * i + 1]) &&
		    strcmp(k.v[2 * i], "logship") != 0)
			known_add(&gone, k.v[2 * i], k.v[2 * i + 1]);
	if (k.oom || gone.oom || (gone.n > 0 &&
	    (present = calloc(gone.n, sizeof(*present))) == NULL))
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (rc == 0 && gone.n > 0 && (rc = commit_batch(s, errmsg)) == 0)
		rc = applier_tables_present(s->ap, gone.v, gone.n, present, errmsg);
	for (i = 0; rc == 0 && i < gone.n; i++) {
		if (!present[i])
			continue;
		if (asprintf(&next, "%s%s%s.%s", list ? list : "", list ? ", " :
		    "", gone.v[2 * i], gone.v[2 * i + 1]) < 0)
			next = NULL;
		free(list);
		list = next;
	}
	if (rc == 0 && list != NULL) {
		ls_lsn_format(m->lsn, lsn);
		rc = ls_errf(errmsg, LS_ERR_SCHEMA, "segment %016" PRIx64 ", "
		    "source LSN %s: the source no longer publishes table(s) %s "
		    "(dropped, renamed, or taken out of its publication); the "
		    "target still has them, so it would silently keep data the "
		    "source no longer has: drop (or rename) them on the target, "
		    "or leave them out with --filter; then rerun logship-restore "
		    "(everything before this point is committed)", x->it->segno,
		    lsn, list);
	}
	free(list);
	free(present);
	free(k.v);
	free(gone.v);
	json_decref(o);
	return rc;
}

/*
 * The source's table no longer matches the target's: name the place, and
 * arrange for the next session to commit everything before this
 * transaction and stop there (replay_main).
 */
static int
schema_stop(struct seg_ctx *x, char **errmsg)
{
	struct stream *s = x->s;
	char lsn[32], when[64];

	ls_lsn_format(x->commit_lsn, lsn);
	ls_format_time(x->commit_time, when, sizeof(when));
	ls_errprefix(errmsg, LS_ERR_SCHEMA, "segment %016" PRIx64 ", source "
	    "transaction %u committed at %s (%s)", x->it->segno, x->xid, lsn,
	    when);
	s->stop_before = x->end_lsn;
	free(s->stop_why);
	s->stop_why = *errmsg != NULL ? strdup(*errmsg) : NULL;
	return LS_ERR_SCHEMA;
}

/* Did --skip-ddl name this message's LSN? */
static bool
skip_ddl(const struct replay_opts *o, uint64_t lsn)
{
	size_t i;

	for (i = 0; i < o->nskip_ddl; i++)
		if (o->skip_ddl[i] == lsn)
			return true;
	return false;
}

/*
 * DDL that cannot be replayed: stop before its transaction (everything
 * before it committed), on one line: why, the statement, the fix.
 */
static int
ddl_stop(struct seg_ctx *x, const struct ls_message *m,
    const struct ddl_plan *p, const char *why, char **errmsg)
{
	char lsn[32], *q = p->query != NULL ? strdup(p->query) : NULL, *c;

	for (c = q; c != NULL && *c != '\0'; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
	ls_lsn_format(m->lsn, lsn);
	if (p->skippable)
		ls_errf(errmsg, LS_ERR_SCHEMA, "DDL at source LSN %s not "
		    "replayed: %s; the source ran: %.400s%s; run it (or what "
		    "the target needs instead) on the target by hand, then "
		    "rerun logship-restore with --skip-ddl %s", lsn, why,
		    q ? q : "?", q && strlen(q) > 400 ? "..." : "", lsn);
	else
		ls_errf(errmsg, LS_ERR_SCHEMA, "DDL at source LSN %s: %s; the "
		    "source ran: %.400s%s", lsn, why, q ? q : "?",
		    q && strlen(q) > 400 ? "..." : "");
	free(q);
	return schema_stop(x, errmsg);
}

/*
 * A logship.ddl message: its SQL, in the batch, at its place among the
 * transaction's rows.  New enum labels commit the batch at the
 * transaction's end (PostgreSQL refuses them in the transaction that
 * added them).
 */
static int
on_ddl(struct seg_ctx *x, const struct ls_message *m, char **errmsg)
{
	struct stream *s = x->s;
	struct ddl_plan *p = NULL;
	char lsn[32];
	int rc;

	ls_lsn_format(m->lsn, lsn);
	if (skip_ddl(s->r->o, m->lsn)) {
		log_info("restore", "DDL at source LSN %s skipped (--skip-ddl)",
		    lsn);
		return 0;
	}
	/*
	 * What the batch sent before the DDL is flushed and checked first: its
	 * errors (a row a COPY's target refused) are not the DDL's, and must
	 * not end in "rerun with --skip-ddl" (the plan's catalog lookups would
	 * take any error as "present" and leave it to the DDL).
	 */
	if ((rc = applier_flush(s->ap, errmsg)) != 0)
		return rc;
	if ((rc = rewrite_ddl_plan(s->r->rw, s->ap, m, &p, errmsg)) != 0)
		return ls_errprefix(errmsg, rc, "segment %016" PRIx64 ", source "
		    "LSN %s", x->it->segno, lsn);
	if (p->stop != NULL)
		rc = ddl_stop(x, m, p, p->stop, errmsg);
	else if ((rc = applier_ddl(s->ap, p->sql, p->nsql, errmsg)) ==
	    LS_ERR_PG) {
		char *why = *errmsg;
		*errmsg = NULL;
		p->skippable = true;
		rc = ddl_stop(x, m, p, why ? why : "the target refused it",
		    errmsg);
		free(why);
	} else if (rc == 0 && (rc = rewrite_ddl_applied(s->r->rw, s->ap, p,
	    x->end_lsn, errmsg)) == LS_ERR_SCHEMA) {
		char *why = *errmsg;
		*errmsg = NULL;
		p->skippable = true;
		rc = ddl_stop(x, m, p, why ? why : "the ID map cannot follow it",
		    errmsg);
		free(why);
	} else if (rc == 0 && ddl_remember(s, p, m->lsn) != 0)
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if (rc == 0) {
		s->commit_txn = s->commit_txn || p->commit_after;
		log_debug("restore", "DDL at source LSN %s: %zu statement(s)",
		    lsn, p->nsql);
	}
	ddl_plan_free(p);
	return rc;
}

static int
on_record(struct seg_ctx *x, const struct ls_record *rec, char **errmsg)
{
	struct stream *s = x->s;
	struct run *r = s->r;
	int rc;

	if (s->done)	/* past the until point: only sequences, never behind */
		return rec->kind == LS_REC_SEQUENCE ?
		    applier_sequence(s->ap, &rec->u.seq, errmsg) : 0;
	switch (rec->kind) {
	case LS_REC_RELATION:
		return on_relation(s, &rec->u.rel, errmsg);
	case LS_REC_SEQUENCE:
		return rewrite_sequence(r->rw, s->ap, &rec->u.seq, errmsg);
	case LS_REC_BEGIN:
		x->end_lsn = rec->u.txn.end_lsn;
		x->commit_lsn = rec->u.txn.commit_lsn;
		x->commit_time = rec->u.txn.commit_time;
		x->xid = rec->u.txn.xid;
		if ((x->skip = rec->u.txn.end_lsn <= r->mk.end_lsn))
			return 0;
		if (beyond_until(r, &rec->u.txn) || (s->stop_before != 0 &&
		    rec->u.txn.end_lsn >= s->stop_before)) {
			s->done = true;
			return 0;
		}
		applier_context(s->ap, x->it->segno, x->commit_lsn, x->xid);
		return applier_in_batch(s->ap) ? 0 : applier_begin(s->ap, errmsg);
	case LS_REC_CHANGE:
		if (x->skip)
			return 0;
		rc = rewrite_change(r->rw, s->ap, &rec->u.change, x->end_lsn,
		    x->xid, errmsg);
		if (rc == LS_ERR_SCHEMA)
			return schema_stop(x, errmsg);
		return rc;
	case LS_REC_COMMIT:
		if (x->skip)
			return 0;
		r->mk.segno = x->it->segno;
		r->mk.end_lsn = rec->u.txn.end_lsn;
		r->mk.commit_time = x->commit_time;	/* of this, applied */
		memcpy(r->mk.seg_sha, x->it->sha, 32);
		r->mk.txns++;
		s->txns++;
		if ((++s->batch_txns >= (uint64_t)r->o->batch_txns ||
		    s->commit_txn) && (rc = commit_batch(s, errmsg)) != 0)
			return rc;
		return restore_stop ? LS_ERR_END : 0;
	case LS_REC_MESSAGE:
		if (rec->u.msg.transactional &&
		    strcmp(rec->u.msg.prefix, LS_DDL_MESSAGE) == 0)
			return x->skip ? 0 : on_ddl(x, &rec->u.msg, errmsg);
		if (!rec->u.msg.transactional &&
		    strcmp(rec->u.msg.prefix, LS_TABLES_MESSAGE) == 0)
			return tables_check(x, &rec->u.msg, errmsg);
		return 0;	/* other logical messages are not applied */
	default:
		return 0;
	}
}

/*
 * A segment without transactions (a heartbeat, sequence samples) moves
 * the marker too, so that the marker reaches the store's head while the
 * source is idle; a heartbeat's time goes into the marker.  Committed
 * with the batch (one is begun if none is open).
 */
static int
empty_segment(struct stream *s, const struct prefetch_item *it,
    char **errmsg)
{
	struct run *r = s->r;

	if (it->h.txns > 0 || s->done || it->segno <= r->mk.segno)
		return 0;
	r->mk.segno = it->segno;
	memcpy(r->mk.seg_sha, it->sha, 32);
	if (it->h.has_heartbeat && it->h.heartbeat_time > r->mk.heartbeat_time)
		r->mk.heartbeat_time = it->h.heartbeat_time;
	return applier_in_batch(s->ap) ? 0 : applier_begin(s->ap, errmsg);
}

/* One segment's records, until its end or the until point. */
static int
apply_segment(struct stream *s, const struct prefetch_item *it,
    char **errmsg)
{
	struct run *r = s->r;
	struct seg_ctx x = { s, it, false, 0, 0, 0, 0 };
	struct segment_reader *rd = NULL;
	struct ls_record rec;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "segment %016" PRIx64, it->segno);
	if ((rc = segment_reader_open(it->fd, name, r->keyp, &rd, errmsg)) != 0)
		return rc;
	if (restore_hup) {
		restore_hup = 0;
		log_reopen();
	}
	while ((rc = segment_reader_next(rd, &rec, errmsg)) == 1) {
		if ((rc = on_record(&x, &rec, errmsg)) != 0)
			break;
		progress(s, false);
	}
	segment_reader_free(rd);
	if (rc == 0)
		rc = empty_segment(s, it, errmsg);
	if (rc == 0)
		s->segs++;
	return rc == 0 && s->done ? LS_ERR_END : rc;
}

/* The segment we resume in must be the one we applied from. */
static int
check_item(struct run *r, const struct prefetch_item *it,
    struct segment_header *prev, uint8_t prev_sha[32], bool have_prev,
    char **errmsg)
{
	char have[65], want[65];

	if (it->rc != 0) {
		*errmsg = it->errmsg ? strdup(it->errmsg) : NULL;
		return it->rc;
	}
	if (have_prev)
		return segment_check_chain(prev, prev_sha, &it->h, errmsg);
	if (r->mk.segno == it->segno && memcmp(r->mk.seg_sha, it->sha, 32) != 0) {
		ls_hex(r->mk.seg_sha, 32, want);
		ls_hex(it->sha, 32, have);
		return ls_errf(errmsg, LS_ERR_CHAIN, "segment %016" PRIx64 " was "
		    "replaced since it was applied (sha256 %.16s…, applied "
		    "%.16s…); the restore stops", it->segno, have, want);
	}
	return 0;
}

/*
 * A replication origin named after the generation, when the role may
 * (superuser): it records the source position and commit times of what is
 * applied, as PostgreSQL's own subscriptions do.
 */
static void
setup_origin(struct stream *s)
{
	struct run *r = s->r;
	char name[64];
	const char *params[1] = { name };
	PGresult *res;

	/* origins are cluster-wide: one per target database and generation */
	snprintf(name, sizeof(name), "%s", r->mk.generation);
	res = PQexecParams(r->c, "SELECT pg_replication_origin_session_setup(n) "
	    "FROM (SELECT n, CASE WHEN pg_replication_origin_oid(n) IS NULL THEN "
	    "pg_replication_origin_create(n) END FROM (SELECT 'logship_' || "
	    "d.oid || '_' || $1 AS n FROM pg_database d WHERE d.datname = "
	    "current_database()) s) c", 1, NULL, params, NULL, NULL, 0);
	s->origin = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!s->origin)
		log_info("restore", "no replication origin (%.*s): positions are "
		    "kept in logship.applied only",
		    (int)strcspn(PQresultErrorMessage(res), "\n"),
		    PQresultErrorMessage(res));
	PQclear(res);
}

/* ---- parallel apply (parallel.h) ---- */

/* A worker committed a chunk (called in order, under parallel's lock). */
static void
par_committed(void *arg, const struct state_marker *mk, uint64_t txns,
    uint64_t rows)
{
	struct stream *s = arg;

	s->txns += txns;
	s->rows_total += rows;
	s->progressed = true;
	s->origin_behind = true;
	robs_applied(s->r->obs, mk, s->txns, s->rows_total +
	    applier_rows(s->ap));
}

/* The dispatcher met a segment's relation. */
static int
par_relation(void *arg, const struct ls_relation *rel)
{
	struct stream *s = arg;
	char *err = NULL;
	int rc = on_relation(s, rel, &err);

	if (rc != 0)
		log_debug("restore", "parallel apply: %s", err ? err : "?");
	free(err);
	return rc;
}

/*
 * Parallel apply for this session, when asked for and possible: not with
 * the ID map (one LMDB transaction follows the batch), a stop point
 * (--until-*, a schema stop), which serial apply places exactly.
 */
static int
par_maybe_start(struct stream *s)
{
	struct run *r = s->r;
	const char *why = NULL;
	char *err = NULL;

	if (r->o->apply_workers <= 1)
		return 0;
	if (rewrite_remapping(r->rw))
		why = "keys are remapped";
	else if (r->o->has_until_lsn || r->o->has_until_time)
		why = "--until-lsn/--until-time stops at a transaction";
	else if (s->stop_before != 0)
		why = "stopping before a schema mismatch";
	if (why != NULL) {
		log_info("restore", "applying in order, not in parallel: %s", why);
		return 0;
	}
	if (par_new(r, s->ap, r->o->apply_workers, par_committed, s, &s->par,
	    &err) != 0) {
		log_warn("restore", "applying in order, not in parallel: %s",
		    err ? err : "cannot start the workers");
		s->par = NULL;
	}
	free(err);
	return 0;
}

/*
 * Wait for every chunk in flight; apply failed ones (and those after
 * them) in order, alone, as serial apply would.  Not to commit (the
 * session is failing: serial apply may have moved r->mk past what the
 * target has), only wait.
 */
static int apply_segment(struct stream *, const struct prefetch_item *,
    char **);
static int par_settle(struct stream *, bool, char **);

static int
par_settle(struct stream *s, bool commit, char **errmsg)
{
	struct prefetch_item *redo = NULL;
	size_t n = 0, i;
	int rc;

	if (s->par == NULL)
		return 0;
	rc = par_drain(s->par, &redo, &n, errmsg);
	for (i = 0; i < n; i++) {
		if (rc == 0 && commit)
			rc = apply_segment(s, &redo[i], errmsg);
		if (commit && (rc == 0 || rc == LS_ERR_END)) {
			int crc = commit_batch(s, errmsg);
			if (crc != 0)
				rc = crc;
		}
		if (redo[i].fd >= 0)
			close(redo[i].fd);
	}
	free(redo);
	/* the replication origin is the main connection's: bring it along */
	if (rc == 0 && commit && s->origin && s->origin_behind &&
	    !applier_in_batch(s->ap) && (rc = applier_begin(s->ap,
	    errmsg)) == 0)
		rc = commit_batch(s, errmsg);
	if (rc == 0) {
		s->origin_behind = false;
		robs_applied(s->r->obs, &s->r->mk, s->txns, s->rows_total +
		    applier_rows(s->ap));
	}
	return rc;
}

static int
replay_segments(struct stream *s, char **errmsg)
{
	struct run *r = s->r;
	struct prefetch *pf = NULL;
	struct prefetch_item it;
	struct segment_header prev;
	uint8_t prev_sha[32];
	bool have_prev = false;
	int rc;

	setup_origin(s);
	if ((rc = rewrite_open_remap(r->rw, errmsg)) != 0)
		return rc;
	if (s->seen == NULL && (s->seen = relcache_new()) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = applier_new(r->c, &s->ap, errmsg)) == 0)
		applier_create_missing(s->ap, base_manifest_ddl(r->m));
	if (rc == 0)
		rc = par_maybe_start(s);
	if (rc != 0 ||
	    (rc = prefetch_start(r->store, r->mk.generation, r->keyp,
	    r->mk.segno ? r->mk.segno : 1, r->o->follow, r->o->has_until_lsn ?
	    r->o->until_lsn : 0, &restore_stop, &pf, errmsg)) != 0)
		return rc;
	service_busy(false);	/* the segment loop feeds the watchdog now */
	service_ready("%s store %s, generation %s", r->o->follow ? "following" :
	    "replaying", store_url(r->store), r->mk.generation);
	while (rc == 0 && !restore_stop && prefetch_next(pf, &it)) {
		service_watchdog();
		rc = check_item(r, &it, &prev, prev_sha, have_prev, errmsg);
		if (rc == 0 && s->par != NULL && have_prev) {
			bool taken = false;
			if ((rc = commit_batch(s, errmsg)) == 0)
				rc = par_submit(s->par, &it, par_relation, s, &taken,
				    errmsg);
			if (rc == 0 && taken) {
				prev = it.h;
				memcpy(prev_sha, it.sha, 32);
				s->segs++;
				close(it.fd);
				free(it.errmsg);
				if (!prefetch_ready(pf))	/* caught up */
					rc = par_settle(s, true, errmsg);
				continue;
			}
			if (rc == 0)	/* a barrier: all before it, then it */
				rc = par_settle(s, true, errmsg);
			if (rc != 0) {
				if (it.fd >= 0)
					close(it.fd);
				free(it.errmsg);
				break;
			}
		}
		if (rc != 0) {
			/* nothing of this segment was applied: keep the rest */
			int crc = par_settle(s, true, NULL);
			if (crc == 0)
				crc = commit_batch(s, NULL);
			s->generation_end = rc == LS_ERR_END;
			if (crc != 0)
				rc = crc;
			if (it.fd >= 0)
				close(it.fd);
			free(it.errmsg);
			break;
		}
		rc = apply_segment(s, &it, errmsg);
		if (rc == 0 || rc == LS_ERR_END) {
			prev = it.h;
			memcpy(prev_sha, it.sha, 32);
			have_prev = true;
		}
		if (it.fd >= 0)
			close(it.fd);
		free(it.errmsg);
		/* caught up (or stopping): make what we have durable */
		if ((rc == 0 && !prefetch_ready(pf)) || rc == LS_ERR_END) {
			int crc = commit_batch(s, errmsg);
			if (crc != 0)
				rc = crc;
			if (rc == 0)
				service_status("caught up: segment %016" PRIx64
				    " applied", r->mk.segno);
		}
	}
	prefetch_stop(pf);
	if (s->par != NULL) {
		int crc = par_settle(s, rc == 0 || rc == LS_ERR_END, rc == 0 ?
		    errmsg : NULL);
		if (crc != 0 && rc == 0)
			rc = crc;
		s->folded_total += par_folded(s->par);
		s->missing_total += par_missing(s->par);
		s->par_chunks += par_chunks(s->par);
		s->par_early += par_early(s->par);
		par_free(s->par);
		s->par = NULL;
	}
	if ((rc == 0 || rc == LS_ERR_END) && !s->generation_end) {
		int crc = commit_batch(s, errmsg);
		if (crc != 0)
			rc = crc;
	} else if (applier_in_batch(s->ap))
		applier_rollback(s->ap);	/* an error inside a transaction */
	rewrite_map_abort(r->rw);	/* entries of a batch never committed */
	return rc;
}

/* ---- a session: one target connection ---- */

/* One restore per target: a session-level advisory lock on the target. */
static int
lock_target(struct run *r, char **errmsg)
{
	PGresult *res = PQexec(r->c, "SELECT pg_try_advisory_lock("
	    "hashtext('logship-restore'))");
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = target_error(r->c, res, errmsg, "advisory lock");
	else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		r->bad_input = true;
		rc = ls_errf(errmsg, LS_ERR_INVALID, "another logship-restore is "
		    "restoring into this target; stop it first (one restore per "
		    "target)");
	}
	PQclear(res);
	return rc;
}

/* ID map entries of batches the target never committed are dropped. */
static int
reconcile_map(struct run *r, char **errmsg)
{
	uint64_t dropped = 0;
	int rc = state_map_reconcile(r->state, r->mk.end_lsn, &dropped, errmsg);

	if (rc == 0 && dropped > 0)
		log_info("restore", "id map: %" PRIu64 " entries of uncommitted "
		    "batches dropped", dropped);
	return rc;
}

/* This session's rewrite; --filter validated against the base first. */
static int
load_filters(struct run *r, char **errmsg)
{
	int rc;

	if (r->rw == NULL && (r->rw = rewrite_new(r->o, r->state)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = rewrite_load_filters(r->rw, r->m, errmsg)) != 0)
		r->bad_input = true;
	return rc;
}

/* Adopt the target's marker (it is authoritative), or start one. */
static int
reconcile(struct run *r, char **errmsg)
{
	struct state_marker tm;
	char tstore[256];
	int rc;

	rc = target_get_marker(r->c, &tm, tstore, sizeof(tstore), errmsg);
	if (rc != 0 && rc != LS_ERR_NOTFOUND)
		return rc;
	if (rc == 0 && (rc = target_upgrade(r->c, errmsg)) != 0)
		return rc;
	if ((rc == 0 && (r->bad_input = strcmp(tstore, r->store_id) != 0)))
		return ls_errf(errmsg, LS_ERR_INVALID, "the target was restored "
		    "from another store (%s), not %s (%s)", tstore,
		    store_url(r->store), r->store_id);
	if ((rc = basepick_read(r, rc == 0 ? tm.generation : r->id.generation,
	    rc == 0 ? &tm : NULL, errmsg)) != 0 ||
	    (rc = load_filters(r, errmsg)) != 0)
		return rc;
	if (target_get_marker(r->c, &tm, tstore, sizeof(tstore), NULL) != 0)
		return phases_start(r, errmsg);
	r->mk = tm;
	if ((rc = state_put_marker(r->state, &r->mk, errmsg)) != 0)
		return rc;
	robs_applied(r->obs, &r->mk, 0, 0);
	return reconcile_map(r, errmsg);
}

/* Connect, lock, adopt the marker, then phases and segments; *connected
 * once the target answered. */
static int
session(struct stream *s, bool *connected, char **errmsg)
{
	struct run *r = s->r;
	char target_id[256];
	int rc;

	if ((rc = target_connect(r->o->target, &r->c, errmsg)) != 0 ||
	    (rc = restore_session_setup(r->c, errmsg)) != 0 ||
	    (rc = target_identity(r->c, target_id, sizeof(target_id),
	    errmsg)) != 0)
		return rc;
	*connected = true;
	if ((rc = lock_target(r, errmsg)) != 0)
		return rc;
	if ((rc = state_bind(r->state, r->store_id, target_id, errmsg)) != 0) {
		r->bad_input = true;
		return rc;
	}
	if ((rc = reconcile(r, errmsg)) != 0)
		return rc;
	rc = phases_run(r, errmsg);
	if (rc == 0 && !restore_stop)
		rc = replay_segments(s, errmsg);
	return rc == LS_ERR_END && !s->generation_end ? 0 : rc;
}

static void
end_session(struct stream *s)
{
	struct run *r = s->r;

	rewrite_free(r->rw);
	r->rw = NULL;
	relcache_free(s->seen);
	s->seen = NULL;
	if (s->ap != NULL) {
		s->rows_total += applier_rows(s->ap);
		s->folded_total += applier_folded(s->ap);
		s->missing_total += applier_missing(s->ap);
	}
	applier_free(s->ap);
	s->ap = NULL;
	base_manifest_free(r->m);
	r->m = NULL;
	PQfinish(r->c);
	r->c = NULL;
}

static void
nap(int64_t us)
{
	struct timespec ts = { 0, 100000000 };

	while (us > 0 && !restore_stop) {
		service_watchdog();
		nanosleep(&ts, NULL);
		us -= 100000;
	}
}

int
replay_main(const struct replay_opts *o)
{
	struct run r = { .o = o };
	struct stream s = { NULL };
	uint8_t key[32];
	char *err = NULL;
	bool connected = false;
	int rc, attempt = 0, status;
	size_t i;

	stream_init(&s, &r);
	if ((rc = setup(&r, key, &err)) != 0 ||
	    (rc = robs_start(o, &r.obs, &err)) != 0) {
		fprintf(stderr, "logship-restore: %s\n", err);
		status = LS_EXIT_USAGE;
		goto out;
	}
	for (;;) {
		service_busy(true);	/* base phases: steps may block long */
		rc = session(&s, &connected, &err);
		service_busy(false);
		end_session(&s);
		if (rc == LS_ERR_SCHEMA && s.stop_before != 0 && !s.done &&
		    !restore_stop) {
			/* again, committing all before the mismatch */
			log_info("restore", "schema mismatch: committing what "
			    "precedes it, then stopping");
			free(err);
			err = NULL;
			r.bad_input = false;
			continue;
		}
		if (rc == 0 || rc == LS_ERR_END || r.bad_input ||
		    rc != LS_ERR_TRANSIENT || !connected || restore_stop)
			break;
		log_warn("restore", "%s; reconnecting (try %d)", err, attempt + 1);
		robs_error(r.obs);
		robs_retry(r.obs);
		free(err);
		err = NULL;
		if (s.progressed)	/* that session got somewhere: start over */
			attempt = 0;
		s.progressed = false;
		nap(ls_backoff_us(attempt++));
	}
	if ((rc == LS_ERR_TRANSIENT || rc == LS_ERR_END) && restore_stop &&
	    !r.bad_input) {
		log_info("restore", "stopped while %s", err ? err : "waiting");
		rc = 0;		/* asked to stop: the last commit stands */
	}
	if (rc == 0 && s.stop_why != NULL) {
		progress(&s, true);
		rc = LS_ERR_SCHEMA;	/* stopped before the mismatch, as planned */
		free(err);
		err = s.stop_why;
		s.stop_why = NULL;
	} else if (rc == 0)
		progress(&s, true);
	if (rc != 0) {
		log_error("restore", "%s", err ? err : ls_strerror(rc));
		robs_error(r.obs);
	}
	status = rc == 0 ? 0 : r.bad_input ? LS_EXIT_USAGE : 1;
	if (rc == 0 && s.missing_total > 0)
		log_warn("restore", "%" PRIu64 " UPDATE/DELETE found no row on "
		    "the target: it has diverged from the source", s.missing_total);
 out:
	service_stopping();
	robs_stop(r.obs);
	state_close(r.state);
	store_free(r.store);
	for (i = 0; i < s.nddlt; i++) {
		free(s.ddlt[i].schema);
		free(s.ddlt[i].name);
	}
	free(s.ddlt);
	free(s.stop_why);
	free(err);
	return status;
}
