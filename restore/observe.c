/*
 * observe.c: logship-restore's metrics (see observe.h).
 *
 * Lag: against the head of the store's generation of the applied marker.
 * 0 segments, 0 bytes and 0 seconds when the marker is at the newest
 * segment (the agent's heartbeats keep an idle store's head moving, so
 * this is "caught up as of the last heartbeat"); otherwise the segments
 * and bytes after the marker, and now minus the earliest time of the
 * first segment not applied (head_lag_seconds).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "observe.h"
#include "repo/head.h"
#include "store/store.h"

#define OBS_TICK_US	1000000
#define OBS_HEAD_US	2000000
#define OBS_FILE_US	5000000

struct robs {
	const struct replay_opts *o;
	struct metrics	*reg;
	struct metric	*segment, *lsn, *commit_time, *heartbeat_time;
	struct metric	*head_segment, *lag_segments, *lag_bytes, *lag_seconds;
	struct metric	*txns, *rows, *errors, *retries, *caught_up;
	struct store	*store;
	pthread_t	 thread;
	pthread_mutex_t	 lock;		/* the fields below */
	pthread_cond_t	 cond;
	bool		 quit;
	char		 generation[17];
	uint64_t	 segno;
	uint64_t	 retries_seen;
	int64_t		 head_us, file_us;
	bool		 warned;
};

static void
make_metrics(struct robs *b)
{
	struct metrics *r = b->reg;

	b->segment = metrics_gauge(r, "logship_restore_applied_segment",
	    "Segment of the last position committed to the target.", NULL);
	b->lsn = metrics_gauge(r, "logship_restore_applied_lsn",
	    "End LSN of the last source transaction committed to the target.",
	    NULL);
	b->commit_time = metrics_gauge(r,
	    "logship_restore_applied_commit_time_seconds",
	    "Source commit time of the last transaction applied (Unix "
	    "seconds).", NULL);
	b->heartbeat_time = metrics_gauge(r,
	    "logship_restore_applied_heartbeat_time_seconds",
	    "Source time of the last heartbeat applied (Unix seconds).", NULL);
	b->head_segment = metrics_gauge(r, "logship_restore_head_segment",
	    "Newest segment of the generation in the store.", NULL);
	b->lag_segments = metrics_gauge(r, "logship_restore_lag_segments",
	    "Segments in the store after the applied one.", NULL);
	b->lag_bytes = metrics_gauge(r, "logship_restore_lag_bytes",
	    "Bytes of the segments in the store after the applied one.", NULL);
	b->lag_seconds = metrics_gauge(r, "logship_restore_lag_seconds",
	    "0 when everything in the store is applied; else now minus the "
	    "source time of the first segment not applied.", NULL);
	b->caught_up = metrics_gauge(r, "logship_restore_caught_up",
	    "1 when the newest segment in the store is applied.", NULL);
	b->txns = metrics_counter(r, "logship_restore_transactions_total",
	    "Source transactions applied to the target.", NULL);
	b->rows = metrics_counter(r, "logship_restore_changes_total",
	    "Row changes applied to the target.", NULL);
	b->errors = metrics_counter(r, "logship_restore_errors_total",
	    "Sessions that ended in an error (retried or final).", NULL);
	b->retries = metrics_counter(r, "logship_restore_retries_total",
	    "Reconnections to the target and repeated store requests.", NULL);
}

static void
update_head(struct robs *b)
{
	struct store_head hd;
	char gen[17], *err = NULL;
	uint64_t segno;

	pthread_mutex_lock(&b->lock);
	memcpy(gen, b->generation, sizeof(gen));
	segno = b->segno;
	pthread_mutex_unlock(&b->lock);
	if (gen[0] == '\0')
		return;		/* nothing committed yet */
	if (head_read(b->store, gen, segno, 0, &hd, &err) != 0) {
		log_debug("metrics", "reading the store's head: %s", err);
		free(err);
		return;
	}
	metric_set(b->head_segment, (double)hd.last_segno);
	metric_set(b->lag_segments, (double)hd.nsegs);
	metric_set(b->lag_bytes, (double)hd.bytes);
	metric_set(b->lag_seconds, head_lag_seconds(&hd, ls_now_us()));
	metric_set(b->caught_up, hd.nsegs == 0);
}

static void
write_file(struct robs *b)
{
	char *err = NULL;

	if (b->o->metrics_file == NULL)
		return;
	if (metrics_write_file(b->reg, b->o->metrics_file, &err) == 0)
		b->warned = false;
	else if (!b->warned) {
		log_warn("metrics", "%s", err);
		b->warned = true;
	}
	free(err);
}

static void *
robs_main(void *arg)
{
	struct robs *b = arg;
	struct timespec ts;
	uint64_t retries;
	int64_t now;

	pthread_mutex_lock(&b->lock);
	while (!b->quit) {
		pthread_mutex_unlock(&b->lock);
		now = ls_now_us();
		retries = store_retries();
		metric_add(b->retries, (double)(retries - b->retries_seen));
		b->retries_seen = retries;
		if (now - b->head_us >= OBS_HEAD_US) {
			b->head_us = now;
			update_head(b);
		}
		if (now - b->file_us >= OBS_FILE_US) {
			b->file_us = now;
			write_file(b);
		}
		pthread_mutex_lock(&b->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += OBS_TICK_US / 1000000;
		if (!b->quit)
			pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int
robs_start(const struct replay_opts *o, struct robs **out, char **errmsg)
{
	struct robs *b;
	int r;

	*out = NULL;
	if (o->metrics_addr == NULL && o->metrics_file == NULL)
		return 0;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->reg = metrics_new()) == NULL) {
		free(b);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	b->o = o;
	make_metrics(b);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->retries_seen = store_retries();
	if ((r = store_open_opts(o->store_url, o->store_opts, &b->store,
	    errmsg)) != 0 || (o->metrics_addr != NULL &&
	    (r = metrics_serve(b->reg, o->metrics_addr, errmsg)) != 0))
		goto fail;
	if (pthread_create(&b->thread, NULL, robs_main, b) != 0) {
		r = ls_errf(errmsg, LS_ERR_INTERNAL, "cannot start the metrics "
		    "thread");
		goto fail;
	}
	if (o->metrics_addr != NULL)
		log_info("metrics", "serving metrics on %s", o->metrics_addr);
	*out = b;
	return 0;
 fail:
	store_free(b->store);
	metrics_free(b->reg);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
	return r;
}

void
robs_stop(struct robs *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	b->quit = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	update_head(b);
	write_file(b);
	store_free(b->store);
	metrics_free(b->reg);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

void
robs_applied(struct robs *b, const struct state_marker *mk,
    uint64_t txns_total, uint64_t rows_total)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	memcpy(b->generation, mk->generation, sizeof(b->generation));
	b->segno = mk->segno;
	pthread_mutex_unlock(&b->lock);
	metric_set(b->segment, (double)mk->segno);
	metric_set(b->lsn, (double)mk->end_lsn);
	metric_set(b->commit_time, (double)mk->commit_time / 1e6);
	metric_set(b->heartbeat_time, (double)mk->heartbeat_time / 1e6);
	metric_set(b->txns, (double)txns_total);
	metric_set(b->rows, (double)rows_total);
}

void
robs_error(struct robs *b)
{
	if (b != NULL)
		metric_add(b->errors, 1);
}

void
robs_retry(struct robs *b)
{
	if (b != NULL)
		metric_add(b->retries, 1);
}
