/*
 * observe.c: logship-agent's metrics.  The stream updates its counters and
 * gauges as it goes (stream.c); a thread of its own, on its own SQL
 * connection to the source, samples the slot every few seconds (how far
 * its confirmed_flush_lsn trails pg_current_wal_lsn, in bytes and in
 * seconds), counts the store's retries and rewrites the textfile.
 *
 * The slot's lag in seconds: the thread keeps the recent samples of
 * pg_current_wal_lsn with their times; the lag is the age of the oldest
 * sample past the slot's confirmed position (0 when the slot has
 * confirmed everything up to the previous sample).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "source.h"
#include "store/store.h"

#define OBS_TICK_US		1000000
#define OBS_SAMPLE_US		2000000		/* the slot */
#define OBS_FILE_US		5000000		/* the textfile */
#define OBS_RING		512		/* samples kept: ~17 min */

struct observer {
	struct agent	*a;		/* only cfg and m are read here */
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	bool		 quit;
	PGconn		*conn;
	struct {
		int64_t	 t;
		uint64_t lsn;
	}		 ring[OBS_RING];
	size_t		 first, n;
	uint64_t	 retries_seen;
	int64_t		 sampled_us, written_us;
	bool		 file_warned;
};

static const double upload_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

/* ---- the metrics ---- */

static void
make_metrics(struct agent_metrics *m)
{
	struct metrics *r = m->reg;

	m->source_lsn = metrics_gauge(r, "logship_agent_source_lsn",
	    "Highest source WAL position received (commit end or keepalive), "
	    "as a number.", NULL);
	m->source_commit_time = metrics_gauge(r,
	    "logship_agent_source_commit_time_seconds",
	    "Commit time of the last source transaction received (Unix "
	    "seconds).", NULL);
	m->durable_lsn = metrics_gauge(r, "logship_agent_durable_lsn",
	    "End LSN of the last transaction or heartbeat stored in the store.",
	    NULL);
	m->durable_segment = metrics_gauge(r, "logship_agent_durable_segment",
	    "Number of the last segment stored.", NULL);
	m->durable_commit_time = metrics_gauge(r,
	    "logship_agent_durable_commit_time_seconds",
	    "Commit time of the last transaction stored (Unix seconds).", NULL);
	m->confirmed_lsn = metrics_gauge(r, "logship_agent_confirmed_lsn",
	    "Position last confirmed to the source (flush LSN).", NULL);
	m->slot_lag_bytes = metrics_gauge(r, "logship_agent_slot_lag_bytes",
	    "pg_current_wal_lsn() minus the slot's confirmed_flush_lsn, read "
	    "from the source.", NULL);
	m->slot_lag_seconds = metrics_gauge(r, "logship_agent_slot_lag_seconds",
	    "Age of the oldest source WAL position the slot has not confirmed "
	    "(0: confirmed up to the previous sample).", NULL);
	m->slot_active = metrics_gauge(r, "logship_agent_slot_active",
	    "1 when the slot is in use by a walsender, read from the source.",
	    NULL);
	m->txns = metrics_counter(r, "logship_agent_transactions_total",
	    "Transactions stored.", NULL);
	m->changes = metrics_counter(r, "logship_agent_changes_total",
	    "Row changes (insert, update, delete, truncate) stored.", NULL);
	m->segments = metrics_counter(r, "logship_agent_segments_total",
	    "Segments stored (heartbeats included).", NULL);
	m->bytes = metrics_counter(r, "logship_agent_stored_bytes_total",
	    "Bytes of segments stored.", NULL);
	m->upload_errors = metrics_counter(r, "logship_agent_upload_errors_total",
	    "Segment uploads that failed (each is retried).", NULL);
	m->retries = metrics_counter(r, "logship_agent_retries_total",
	    "Store requests repeated after a transient failure.", NULL);
	m->upload_seconds = metrics_histogram(r, "logship_agent_upload_seconds",
	    "Time taken by each store write (segments and base chunks).",
	    upload_bounds, sizeof(upload_bounds) / sizeof(upload_bounds[0]));
	m->heartbeats = metrics_counter(r, "logship_agent_heartbeats_total",
	    "Heartbeat segments stored while the source was idle.", NULL);
	m->batched_waits = metrics_counter(r, "logship_agent_batched_waits_total",
	    "Waits on the replication socket for a batch of messages while "
	    "catching up (SO_RCVLOWAT).", NULL);
	m->heartbeat_time = metrics_gauge(r,
	    "logship_agent_heartbeat_time_seconds",
	    "Source time of the last heartbeat stored (Unix seconds).", NULL);
	m->base_tables_done = metrics_gauge(r, "logship_agent_base_tables_done",
	    "Tables of the base snapshot copied so far.", NULL);
	m->base_tables = metrics_gauge(r, "logship_agent_base_tables",
	    "Tables in the base snapshot being copied.", NULL);
	m->base_bytes_done = metrics_gauge(r, "logship_agent_base_bytes_done",
	    "COPY bytes of the base snapshot copied so far.", NULL);
	m->base_bytes_estimate = metrics_gauge(r,
	    "logship_agent_base_bytes_estimate",
	    "Size on disk of the base snapshot's tables (an estimate of the "
	    "total).", NULL);
}

void
observe_base(void *arg, size_t tables_done, size_t tables, uint64_t bytes_done,
    uint64_t bytes_estimate)
{
	struct agent *a = arg;

	metric_set(a->m.base_tables_done, (double)tables_done);
	metric_set(a->m.base_tables, (double)tables);
	metric_set(a->m.base_bytes_done, (double)bytes_done);
	metric_set(a->m.base_bytes_estimate, (double)bytes_estimate);
}

/* Every store write: its latency. */
static void
on_store_write(void *arg, const char *key, int64_t us, int result)
{
	struct agent_metrics *m = arg;

	(void)key;
	if (result == 0)
		metric_observe(m->upload_seconds, (double)us / 1e6);
}

/* ---- the thread ---- */

static const char slot_sql[] =
    "SELECT pg_current_wal_lsn()::text, confirmed_flush_lsn::text, "
    "active FROM pg_replication_slots WHERE slot_name = $1";

/* Seconds since the source was at a position the slot has not confirmed. */
static double
lag_seconds(struct observer *o, uint64_t confirmed, int64_t now)
{
	size_t i, k;

	for (i = 0; i < o->n; i++) {
		k = (o->first + i) % OBS_RING;
		if (o->ring[k].lsn > confirmed)
			return (double)(now - o->ring[k].t) / 1e6;
	}
	return 0;
}

static void
remember(struct observer *o, int64_t now, uint64_t lsn)
{
	size_t k;

	if (o->n == OBS_RING) {
		o->first = (o->first + 1) % OBS_RING;
		o->n--;
	}
	k = (o->first + o->n++) % OBS_RING;
	o->ring[k].t = now;
	o->ring[k].lsn = lsn;
}

static void
sample_slot(struct observer *o, int64_t now)
{
	const struct agent_config *c = o->a->cfg;
	const char *params[1] = { c->slot };
	uint64_t cur = 0, confirmed = 0;
	char *err = NULL;
	PGresult *res;

	if (o->conn != NULL && PQstatus(o->conn) != CONNECTION_OK) {
		PQfinish(o->conn);
		o->conn = NULL;
	}
	if (o->conn == NULL && source_connect(c->source, false, &o->conn,
	    &err) != 0) {
		log_debug("metrics", "cannot sample the slot: %s", err);
		free(err);
		o->conn = NULL;
		return;
	}
	res = PQexecParams(o->conn, slot_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    ls_lsn_parse(PQgetvalue(res, 0, 0), &cur) == 0) {
		if (ls_lsn_parse(PQgetvalue(res, 0, 1), &confirmed) != 0)
			confirmed = 0;
		remember(o, now, cur);
		metric_set(o->a->m.slot_lag_bytes, cur > confirmed ?
		    (double)(cur - confirmed) : 0);
		metric_set(o->a->m.slot_lag_seconds, lag_seconds(o, confirmed,
		    now));
		metric_set(o->a->m.slot_active,
		    strcmp(PQgetvalue(res, 0, 2), "t") == 0);
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		log_debug("metrics", "sampling the slot: %s",
		    PQresultErrorMessage(res));
	PQclear(res);
}

static void
write_file(struct observer *o)
{
	char *err = NULL;

	if (o->a->cfg->metrics_file == NULL)
		return;
	if (metrics_write_file(o->a->m.reg, o->a->cfg->metrics_file, &err) == 0)
		o->file_warned = false;
	else if (!o->file_warned) {	/* once until it works again */
		log_warn("metrics", "%s", err);
		o->file_warned = true;
	}
	free(err);
}

static void *
observer_main(void *arg)
{
	struct observer *o = arg;
	struct timespec ts;
	uint64_t retries;
	int64_t now;

	pthread_mutex_lock(&o->lock);
	while (!o->quit) {
		pthread_mutex_unlock(&o->lock);
		now = ls_now_us();
		retries = store_retries();
		metric_add(o->a->m.retries, (double)(retries - o->retries_seen));
		o->retries_seen = retries;
		if (now - o->sampled_us >= OBS_SAMPLE_US) {
			o->sampled_us = now;
			sample_slot(o, now);
		}
		if (now - o->written_us >= OBS_FILE_US) {
			o->written_us = now;
			write_file(o);
		}
		pthread_mutex_lock(&o->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += OBS_TICK_US / 1000000;
		if (!o->quit)
			pthread_cond_timedwait(&o->cond, &o->lock, &ts);
	}
	pthread_mutex_unlock(&o->lock);
	PQfinish(o->conn);
	o->conn = NULL;
	return NULL;
}

int
observe_start(struct agent *a, char **errmsg)
{
	const struct agent_config *c = a->cfg;
	struct observer *o;
	int r;

	if (c->metrics_addr == NULL && c->metrics_file == NULL)
		return 0;
	if ((a->m.reg = metrics_new()) == NULL ||
	    (o = calloc(1, sizeof(*o))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	make_metrics(&a->m);
	if (c->metrics_addr != NULL &&
	    (r = metrics_serve(a->m.reg, c->metrics_addr, errmsg)) != 0) {
		free(o);
		return r;
	}
	store_set_observer(a->store, on_store_write, &a->m);
	o->a = a;
	o->retries_seen = store_retries();
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	if (pthread_create(&o->thread, NULL, observer_main, o) != 0) {
		free(o);
		return ls_errf(errmsg, LS_ERR_INTERNAL, "cannot start the "
		    "metrics thread");
	}
	a->obs = o;
	if (c->metrics_addr != NULL)
		log_info("metrics", "serving metrics on %s", c->metrics_addr);
	return 0;
}

void
observe_stop(struct agent *a)
{
	struct observer *o = a->obs;

	if (o != NULL) {
		pthread_mutex_lock(&o->lock);
		o->quit = true;
		pthread_cond_signal(&o->cond);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
		write_file(o);		/* the final values */
		pthread_mutex_destroy(&o->lock);
		pthread_cond_destroy(&o->cond);
		free(o);
		a->obs = NULL;
	}
	if (a->store != NULL)
		store_set_observer(a->store, NULL, NULL);
	metrics_free(a->m.reg);
	memset(&a->m, 0, sizeof(a->m));
}
