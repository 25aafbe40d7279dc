/*
 * stream.c: the replication stream.  Each transaction's pgoutput messages
 * are buffered (txnbuf) until its commit, then written whole into the open
 * segment; a segment closes at N transactions, SIZE bytes or the flush
 * interval, goes to the store with put_if_absent, and only then is its last
 * end LSN confirmed to the server.  Transactions the store (or the open
 * segment) already holds are skipped by end LSN, so a crash or reconnect
 * between upload and confirm duplicates nothing.
 *
 * A closed segment goes up in a thread of its own while this loop keeps
 * reading the stream into the next segment, which closes only once the
 * upload is done: a slow store, or one that is down and retried, never
 * leaves the walsender without replies (it would end the connection after
 * wal_sender_timeout), and nothing is confirmed past the stored segment.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "newbase.h"
#include "common/crashpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/service.h"
#include "common/util.h"
#include "ddl.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "pg/pgoutput.h"
#include "repo/catalog.h"
#include "source.h"
#include "store/store.h"
#include "txnbuf.h"

/* ---- positions and confirmation ---- */

static bool
idle(const struct agent *a)
{
	return a->seg == NULL && a->cur == NULL && a->nstreams == 0 &&
	    !a->uploading;
}

/* The position safe to confirm: never past what the store holds. */
static uint64_t
confirm_position(const struct agent *a)
{
	uint64_t pos = a->stored_end_lsn;

	if (idle(a) && a->server_pos > pos)
		pos = a->server_pos;
	return pos;
}

/* The end of what the store records: a transaction, the base, an idle position. */
static uint64_t
recorded_end(const struct agent *a)
{
	uint64_t end = a->stored_end_lsn;

	if (a->base_lsn > end)
		end = a->base_lsn;
	if (a->idle_lsn > end)
		end = a->idle_lsn;
	return end;
}

/*
 * An idle position past what the store records is confirmed only once the
 * store holds it (<gen>.confirmed), written at most every status interval,
 * so that on resume the store's end is never behind the slot.  Returns the
 * position that may be confirmed now.
 */
static uint64_t
record_idle(struct agent *a, uint64_t pos, int64_t now)
{
	uint64_t end = recorded_end(a);
	char *err = NULL, lsn[32];

	if (pos <= end)
		return pos;
	if (a->idle_lsn_us != 0 && now - a->idle_lsn_us < AGENT_STATUS_INTERVAL_US)
		return end;
	a->idle_lsn_us = now;
	if (catalog_confirmed_write(a->store, a->generation, pos, &err) != 0) {
		ls_lsn_format(pos, lsn);
		log_warn("agent", "not confirming idle position %s yet: %s", lsn,
		    err);
		free(err);
		return end;
	}
	a->idle_lsn = pos;
	return pos;
}

static int
send_status(struct agent *a, bool reply, char **errmsg)
{
	uint8_t buf[PGO_STATUS_LEN];
	int64_t now = ls_now_us();
	uint64_t pos;
	size_t n;

	if (a->repl == NULL || !a->in_copy)
		return 0;	/* e.g. after a base, before START_REPLICATION */
	pos = record_idle(a, confirm_position(a), now);
	if (pos > a->confirmed)
		a->confirmed = pos;
	n = pgo_build_status(buf, a->confirmed, a->confirmed, a->confirmed,
	    now - PGO_EPOCH_OFFSET_US, reply);
	a->last_status_us = now;
	metric_set(a->m.confirmed_lsn, (double)a->confirmed);
	if (PQputCopyData(a->repl, (const char *)buf, (int)n) != 1 ||
	    PQflush(a->repl) != 0)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "sending a status update: %s",
		    PQerrorMessage(a->repl));
	return 0;
}

/* ---- segments ---- */

static int
open_segment(struct agent *a, char **errmsg)
{
	struct segment_writer_opts o = { 0 };

	o.segno = a->segno;
	o.generation = a->generation;
	o.system_id = a->system_id;
	o.database = a->database;
	o.prev_sha256 = a->have_prev ? a->prev_sha : NULL;
	o.key = a->key;
	o.comp = a->cfg->comp;
	o.spool_dir = a->cfg->spool_dir;
	a->seg_first_us = ls_now_us();
	return segment_writer_new(&o, &a->seg, errmsg);
}

static int
add_rec(struct agent *a, const struct ls_record *rec, char **errmsg)
{
	if (a->seg == NULL) {
		int r = open_segment(a, errmsg);
		if (r != 0)
			return r;
	}
	return segment_writer_add(a->seg, rec, errmsg);
}

static int
add_sequence(void *arg, const struct ls_sequence *s)
{
	struct ls_record rec = { .kind = LS_REC_SEQUENCE };
	struct agent *a = arg;

	rec.u.seq = *s;
	return segment_writer_add(a->seg, &rec, NULL);
}


/* ---- the published tables (LS_TABLES_MESSAGE, see record.h) ---- */

static const char tables_sql[] =
    "SELECT json_build_object('publication', $1::text, 'tables', "
    "coalesce(json_agg(json_build_array(schemaname, tablename) ORDER BY "
    "schemaname, tablename), '[]'::json))::text, pg_current_wal_lsn()::text "
    "FROM pg_publication_tables WHERE pubname = $1";

/*
 * A dropped table sends no change: so that a restore notices, the tables
 * the publication covers are sampled when a segment closes.  A sample that
 * differs from the last one written waits until the stream has passed the
 * position it was taken at (every change committed before it has then been
 * received), and is then written into the closing segment, outside any
 * transaction.  Best effort: a failed sample is logged and retried.
 */
static void
sample_tables(struct agent *a)
{
	struct ls_record rec = { .kind = LS_REC_MESSAGE };
	const char *params[1] = { a->cfg->publication };
	uint64_t reached = a->written_end_lsn > a->server_pos ?
	    a->written_end_lsn : a->server_pos, lsn = 0;
	char *err = NULL;
	PGresult *res;

	if (a->tables_pending != NULL && reached >= a->tables_lsn) {
		rec.u.msg.lsn = a->tables_lsn;
		rec.u.msg.transactional = false;
		rec.u.msg.prefix = LS_TABLES_MESSAGE;
		rec.u.msg.content = a->tables_pending;
		rec.u.msg.len = (uint32_t)strlen(a->tables_pending);
		if (segment_writer_add(a->seg, &rec, &err) != 0) {
			log_warn("agent", "cannot record the published tables: %s",
			    err);
			free(err);
			return;
		}
		free(a->tables_written);
		a->tables_written = a->tables_pending;
		a->tables_pending = NULL;
	}
	if (a->tables_pending != NULL || a->sql == NULL ||
	    PQstatus(a->sql) != CONNECTION_OK)
		return;
	res = source_query_within(a->sql, tables_sql, 1, params,
	    AGENT_RECV_TIMEOUT_US / 1000, &err);
	if (res == NULL || PQntuples(res) != 1)
		log_warn("agent", "sampling the published tables failed: %s",
		    err != NULL ? err : "no row");
	else if ((a->tables_written == NULL || strcmp(a->tables_written,
	    PQgetvalue(res, 0, 0)) != 0) &&
	    ls_lsn_parse(PQgetvalue(res, 0, 1), &lsn) == 0 &&
	    (a->tables_pending = strdup(PQgetvalue(res, 0, 0))) != NULL)
		a->tables_lsn = lsn;
	PQclear(res);
	free(err);
}

void
stream_free(struct agent *a)
{
	free(a->tables_written);
	free(a->tables_pending);
	a->tables_written = a->tables_pending = NULL;
}

static void
sleep_us(int64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Put the finished segment until it is stored.  Never confirms anything
 * meanwhile.  Gives up only when asked to stop twice.  Runs in the upload
 * thread (or, when no thread can be made, in the loop's).
 */
static int
upload(struct agent *a, const char *key, int fd, char **errmsg)
{
	int attempt, r;
	char *err = NULL;

	for (attempt = 0;; attempt++) {
		r = store_put_if_absent(a->store, key, fd, &err);
		if (r == 0 || r == LS_ERR_EXISTS)
			break;
		metric_add(a->m.upload_errors, 1);
		if (agent_stop > 1) {
			ls_errf(errmsg, r, "giving up on %s after a second stop "
			    "signal: %s", key, err);
			free(err);
			return r;
		}
		log_warn("store", "writing %s failed (try %d): %s; retrying", key,
		    attempt + 1, err);
		free(err);
		err = NULL;
		metric_add(a->m.retries, 1);
		sleep_us(ls_backoff_us(attempt));
	}
	if (r == LS_ERR_EXISTS)
		ls_errf(errmsg, LS_ERR_EXISTS, "%s already exists in the store: "
		    "another logship-agent is writing to this store; stop it (one "
		    "agent per store)", key);
	free(err);
	return r;
}

/* One segment upload in the background; done[1] is written when it ends. */
struct upload_job {
	struct agent	*a;
	const char	*key;
	int		 fd;
	int		 done[2];	/* a pipe the loop polls */
	int		 r;
	char		*err;
};

static void *
upload_main(void *arg)
{
	struct upload_job *j = arg;
	ssize_t n;

	j->r = upload(j->a, j->key, j->fd, &j->err);
	while ((n = write(j->done[1], "u", 1)) < 0 && errno == EINTR)
		;
	return NULL;
}

static int step(struct agent *, int, char **);

/* Has the open segment reached --segment-max-txns or --segment-max-bytes? */
static bool
segment_full(const struct agent *a)
{
	return a->seg != NULL &&
	    ((int64_t)segment_writer_txns(a->seg) >= a->cfg->segment_max_txns ||
	    (int64_t)segment_writer_bytes(a->seg) >= a->cfg->segment_max_bytes);
}

/* Has the upload thread finished (its pipe readable)? */
static bool
upload_done(const struct upload_job *j)
{
	struct pollfd p = { .fd = j->done[0], .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/*
 * Keep the stream going until the upload thread is done: read and buffer
 * as usual (the next segment does not close meanwhile), or, once the agent
 * is stopping or the next segment is full, read nothing more and only send
 * a status every second (segments keep their size limits: a backlog read
 * during an upload would otherwise pile into one segment).  The first
 * error is returned once the upload is over.
 */
static int
pump(struct agent *a, struct upload_job *j, char **errmsg)
{
	struct pollfd p = { .fd = j->done[0], .events = POLLIN };
	bool reading = a->repl != NULL && a->in_copy;
	int r = 0;

	a->uploading = true;
	while (!upload_done(j)) {
		service_watchdog();
		if (reading && r == 0 && !agent_stop && !a->endpos_reached &&
		    !segment_full(a)) {
			r = step(a, j->done[0], errmsg);
			continue;
		}
		if (poll(&p, 1, AGENT_BUSY_STATUS_US / 1000) == 0 && r == 0 &&
		    reading)
			r = send_status(a, false, errmsg);
	}
	a->uploading = false;
	return r;
}

/*
 * Store the finished segment in fd under key: in a thread while the
 * stream is read (pump), or here when no thread can be had.  0 once it
 * is stored; *stream_err holds an error the stream met meanwhile.
 */
static int
upload_streaming(struct agent *a, const char *key, int fd, int *stream_r,
    char **stream_err, char **errmsg)
{
	struct upload_job j = { .a = a, .key = key, .fd = fd,
	    .done = { -1, -1 } };
	pthread_t t;

	*stream_r = 0;
	if (pipe2(j.done, O_CLOEXEC) != 0 ||
	    pthread_create(&t, NULL, upload_main, &j) != 0) {
		if (j.done[0] >= 0) {
			close(j.done[0]);
			close(j.done[1]);
		}
		return upload(a, key, fd, errmsg);
	}
	*stream_r = pump(a, &j, stream_err);
	pthread_join(t, NULL);
	close(j.done[0]);
	close(j.done[1]);
	if (j.r != 0)
		*errmsg = j.err;
	else
		free(j.err);
	return j.r;
}

/* A segment is in the store: what it holds. */
static void
stored_metrics(struct agent *a, const struct segment_header *h)
{
	const struct agent_metrics *m = &a->m;
	uint64_t durable = a->stored_end_lsn;

	if (h->has_heartbeat) {
		metric_add(m->heartbeats, 1);
		metric_set(m->heartbeat_time, (double)h->heartbeat_time / 1e6);
		if (h->heartbeat_lsn > durable)
			durable = h->heartbeat_lsn;
	}
	if (h->txns > 0)
		metric_set(m->durable_commit_time, (double)h->last_time / 1e6);
	if (durable > metric_get(m->durable_lsn))
		metric_set(m->durable_lsn, (double)durable);
	metric_set(m->durable_segment, (double)h->segno);
	metric_add(m->txns, (double)h->txns);
	metric_add(m->changes, (double)h->changes);
	metric_add(m->segments, 1);
	metric_add(m->bytes, (double)h->total_len);
}

/* The highest source position seen. */
static void
seen_lsn(struct agent *a, uint64_t lsn)
{
	if ((double)lsn > metric_get(a->m.source_lsn))
		metric_set(a->m.source_lsn, (double)lsn);
}

/*
 * While nothing is in flight and nothing was stored for a heartbeat
 * interval, store a segment without transactions whose header says how
 * far the source had got (the last keepalive's position and time): a
 * restore that has applied it is caught up as of that time.  At most one
 * per interval, only when idle.
 */
static int
heartbeat(struct agent *a, int64_t now, char **errmsg)
{
	int64_t every = (int64_t)(a->cfg->heartbeat_interval * 1e6);
	uint64_t pos = a->server_pos > a->stored_end_lsn ? a->server_pos :
	    a->stored_end_lsn;
	int r;

	if (!idle(a) || every <= 0 || a->server_time == 0 ||
	    now - a->last_stored_us < every)
		return 0;
	if ((r = open_segment(a, errmsg)) != 0)
		return r;
	segment_writer_heartbeat(a->seg, pos, a->server_time);
	return stream_flush(a, errmsg);
}

/*
 * A segment that went up while the stream was read: the next one, open
 * meanwhile, chains to it; if it could not be stored, that next one is
 * dropped too (nothing in it was confirmed: the slot sends it again).
 */
static void
drop_next(struct agent *a, const uint8_t prev_sha[32], bool had_prev)
{
	segment_writer_free(a->seg);
	a->seg = NULL;
	a->segno--;
	memcpy(a->prev_sha, prev_sha, 32);
	a->have_prev = had_prev;
	a->written_end_lsn = a->stored_end_lsn;
}

int
stream_flush(struct agent *a, char **errmsg)
{
	struct segment_writer *w = a->seg;
	struct segment_header h;
	char key[64], l1[32], l2[32], *stream_err = NULL;
	uint8_t sha[32], old_sha[32];
	bool had_prev = a->have_prev;
	int fd, r, stream_r = 0;

	if (a->uploading)
		return 0;	/* closes once the upload in flight is stored */
	a->flush_due = false;
	if (w == NULL) {
		(void)send_status(a, false, NULL);	/* best effort */
		return 0;
	}
	if (a->sql != NULL && PQstatus(a->sql) == CONNECTION_OK &&
	    source_sample_sequences(a->sql, AGENT_RECV_TIMEOUT_US / 1000,
	    add_sequence, a, NULL) != 0)
		log_warn("agent", "sequence sampling failed: %s",
		    PQerrorMessage(a->sql));
	sample_tables(a);
	if ((fd = ls_temp_fd(a->cfg->spool_dir, errmsg)) < 0)
		return fd;
	if ((r = segment_writer_finish(w, fd, &h, sha, errmsg)) != 0) {
		close(fd);
		return r;
	}
	segment_object_key(a->generation, a->segno, key);
	/* what arrives during the upload opens the next segment, chained */
	memcpy(old_sha, a->prev_sha, 32);
	memcpy(a->prev_sha, sha, 32);
	a->have_prev = true;
	a->seg = NULL;
	a->segno++;
	r = upload_streaming(a, key, fd, &stream_r, &stream_err, errmsg);
	close(fd);
	if (r != 0) {
		drop_next(a, old_sha, had_prev);
		a->seg = w;	/* finished: only freeing it is left */
		free(stream_err);
		return r;
	}
	crashpoint("agent-after-upload");
	segment_writer_free(w);
	if (h.txns > 0)
		a->stored_end_lsn = h.end_lsn;
	a->segs_total++;
	a->last_stored_us = ls_now_us();
	stored_metrics(a, &h);
	ls_lsn_format(h.first_lsn, l1);
	ls_lsn_format(h.end_lsn, l2);
	log_info("agent", "segment stored: %s txns=%" PRIu64 " changes=%" PRIu64
	    " bytes=%" PRIu64 " lsn=%s..%s", key, h.txns, h.changes, h.total_len,
	    l1, l2);
	service_status("streaming generation %s: segment %016" PRIx64 " stored "
	    "(lsn %s)", a->generation, a->segno - 1, l2);
	if (stream_r != 0) {	/* the stream broke during the upload */
		*errmsg = stream_err;
		return stream_r;
	}
	if (send_status(a, false, errmsg) != 0)
		log_warn("agent", "confirm after upload: %s", *errmsg);
	return 0;
}

int
stream_sample_now(struct agent *a, char **errmsg)
{
	int r;

	if (a->seg == NULL && (r = open_segment(a, errmsg)) != 0)
		return r;
	return stream_flush(a, errmsg);
}

/* ---- applying a committed transaction ---- */

struct replay {
	struct agent	*a;
	bool		 skip;		/* already stored: only learn relations */
	char		**errmsg;
};

static int
ensure_relation(struct agent *a, uint32_t oid, char **errmsg)
{
	struct ls_record rec = { .kind = LS_REC_RELATION };
	const struct ls_relation *rel;

	if (segment_writer_has_relation(a->seg, oid))
		return 0;
	if ((rel = relcache_get(a->rels, oid)) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: change for "
		    "relation %u before its Relation message", oid);
	rec.u.rel = *rel;
	return segment_writer_add(a->seg, &rec, errmsg);
}

static int
replay_change(struct agent *a, const struct ls_change *c, char **errmsg)
{
	struct ls_record rec = { .kind = LS_REC_CHANGE };
	uint32_t i;
	int r;

	if (c->kind == LS_CHANGE_TRUNCATE) {
		for (i = 0; i < c->nrelids; i++)
			if ((r = ensure_relation(a, c->relids[i], errmsg)) != 0)
				return r;
	} else if ((r = ensure_relation(a, c->relid, errmsg)) != 0)
		return r;
	rec.u.change = *c;
	return segment_writer_add(a->seg, &rec, errmsg);
}

/*
 * Long work between two reads of the stream: keep the walsender hearing
 * from the agent (a status repeating the confirmed position; best effort,
 * the loop notices a broken connection).
 */
static void
busy_status(struct agent *a)
{
	if (++a->burst % 256 == 0 &&
	    ls_now_us() - a->last_status_us >= AGENT_BUSY_STATUS_US)
		(void)send_status(a, false, NULL);
}

/* One buffered message, decoded here for the first and only time. */
static int
replay_one(void *arg, const uint8_t *buf, size_t len, bool in_stream)
{
	struct replay *rp = arg;
	struct agent *a = rp->a;
	struct ls_record rec;
	struct pgo_msg m;
	int r;

	busy_status(a);

	if (rp->skip && len > 0 && buf[0] != PGO_RELATION)
		return 0;	/* already stored: only relations matter */
	if ((r = pgo_decode(a->dec, buf, len, in_stream, &m, rp->errmsg)) != 0)
		return r;
	switch (m.type) {
	case PGO_RELATION:
		if ((r = relcache_put(a->rels, &m.u.rel)) != 0 || rp->skip)
			return r;
		rec.kind = LS_REC_RELATION;
		rec.u.rel = m.u.rel;
		return segment_writer_add(a->seg, &rec, rp->errmsg);
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
	case PGO_TRUNCATE:
		return rp->skip ? 0 : replay_change(a, &m.u.change, rp->errmsg);
	case PGO_MESSAGE:
		if (rp->skip)
			return 0;
		ddl_warn_unpublished(a->sql, a->cfg->publication,
		    &m.u.message);
		rec.kind = LS_REC_MESSAGE;
		rec.u.msg = m.u.message;
		return segment_writer_add(a->seg, &rec, rp->errmsg);
	default:
		return 0;	/* Type, Origin: nothing to keep */
	}
}

static int
commit_txn(struct agent *a, struct txnbuf *tb, const struct ls_txn *t,
    char **errmsg)
{
	struct replay rp = { a, false, errmsg };
	struct ls_record rec = { .kind = LS_REC_BEGIN };
	int r;

	if (t->end_lsn <= a->written_end_lsn) {
		rp.skip = true;		/* the store already holds it */
		log_debug("agent", "skipping xid %u: already stored", t->xid);
		return txnbuf_replay(tb, replay_one, &rp, errmsg);
	}
	if (a->cfg->has_endpos && t->commit_lsn > a->cfg->endpos) {
		a->endpos_reached = true;
		return 0;
	}
	rec.u.txn = *t;
	if ((r = add_rec(a, &rec, errmsg)) != 0 ||
	    (r = txnbuf_replay(tb, replay_one, &rp, errmsg)) != 0)
		return r;
	rec.kind = LS_REC_COMMIT;
	if ((r = segment_writer_add(a->seg, &rec, errmsg)) != 0)
		return r;
	a->written_end_lsn = t->end_lsn;
	a->txns_total++;
	seen_lsn(a, t->end_lsn);
	metric_set(a->m.source_commit_time, (double)t->commit_time / 1e6);
	if (segment_full(a))
		a->flush_due = true;	/* by step(), once this message is done */
	return 0;
}

/* ---- streamed (in-progress) transactions ---- */

static struct txnbuf *
find_stream(struct agent *a, uint32_t xid, size_t *idx)
{
	size_t i;

	for (i = 0; i < a->nstreams; i++)
		if (txnbuf_xid(a->streams[i]) == xid) {
			if (idx != NULL)
				*idx = i;
			return a->streams[i];
		}
	return NULL;
}

static void
drop_stream(struct agent *a, size_t i)
{
	txnbuf_free(a->streams[i]);
	a->streams[i] = a->streams[--a->nstreams];
}

static int
stream_start(struct agent *a, uint32_t xid, char **errmsg)
{
	struct txnbuf **bigger, *tb;
	int r;

	a->in_stream_block = true;
	a->stream_xid = xid;
	if (find_stream(a, xid, NULL) != NULL)
		return 0;
	if ((r = txnbuf_new(xid, AGENT_TXN_MEMLIMIT, a->cfg->spool_dir, &tb,
	    errmsg)) != 0)
		return r;
	bigger = realloc(a->streams, (a->nstreams + 1) * sizeof(*bigger));
	if (bigger == NULL) {
		txnbuf_free(tb);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	a->streams = bigger;
	a->streams[a->nstreams++] = tb;
	return 0;
}

static int
stream_commit(struct agent *a, const struct pgo_msg *m, char **errmsg)
{
	struct ls_txn t = m->u.txn;
	size_t i;
	int r;

	if (find_stream(a, m->xid, &i) == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: Stream Commit "
		    "for unknown transaction %u", m->xid);
	t.xid = m->xid;
	r = commit_txn(a, a->streams[i], &t, errmsg);
	if (find_stream(a, m->xid, &i) != NULL)
		drop_stream(a, i);
	return r;
}

static int
stream_abort(struct agent *a, const struct pgo_msg *m, char **errmsg)
{
	struct txnbuf *tb;
	size_t i;

	if ((tb = find_stream(a, m->xid, &i)) == NULL)
		return 0;
	if (m->u.stream_abort.subxid == m->xid || m->u.stream_abort.subxid == 0) {
		drop_stream(a, i);
		return 0;
	}
	return txnbuf_abort_sub(tb, m->u.stream_abort.subxid, errmsg);
}

void
stream_reset_inflight(struct agent *a)
{
	txnbuf_free(a->cur);
	a->cur = NULL;
	while (a->nstreams > 0)
		drop_stream(a, a->nstreams - 1);
	free(a->streams);
	a->streams = NULL;
	a->in_stream_block = false;
}

/* ---- dispatch ---- */

/* Append a message, still raw, to the open transaction or stream. */
static int
append_raw(struct agent *a, uint32_t xid, const uint8_t *buf, size_t len,
    char **errmsg)
{
	struct txnbuf *tb;

	if (a->in_stream_block) {
		if ((tb = find_stream(a, a->stream_xid, NULL)) == NULL)
			return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: no "
			    "stream open for xid %u", a->stream_xid);
		return txnbuf_append(tb, xid, true, buf, len, errmsg);
	}
	return txnbuf_append(a->cur, 0, false, buf, len, errmsg);
}

/*
 * A message buffered until commit (replay_one decodes it then): the
 * content of a transaction or stream block.  A non-transactional Message
 * is not part of any, whatever block it arrives in.
 */
static bool
deferred(const struct agent *a, const struct pgo_peek *pk)
{
	if (a->cur == NULL && !a->in_stream_block)
		return false;
	switch (pk->type) {
	case PGO_RELATION:
	case PGO_TYPE:
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
	case PGO_TRUNCATE:
		return true;
	case PGO_MESSAGE:
		return pk->transactional;
	default:
		return false;
	}
}

/* A message that is not deferred and not a transaction's edge. */
static int
other_msg(struct agent *a, const struct pgo_msg *m, char **errmsg)
{
	struct ls_record rec = { .kind = LS_REC_MESSAGE };

	if (m->type == PGO_MESSAGE && !m->u.message.transactional) {
		rec.u.msg = m->u.message;	/* not part of any transaction */
		return add_rec(a, &rec, errmsg);
	}
	if (m->type == PGO_RELATION)	/* outside a transaction: just learn it */
		return relcache_put(a->rels, &m->u.rel);
	if (m->type == PGO_TYPE)
		return 0;
	return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: %s outside a "
	    "transaction", pgo_type_name(m->type));
}

static int
on_begin(struct agent *a, const struct pgo_msg *m, char **errmsg)
{
	if (a->cur != NULL || a->in_stream_block)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: Begin inside a "
		    "transaction");
	a->cur_xid = m->u.txn.xid;
	a->cur_commit_lsn = m->u.txn.commit_lsn;
	a->cur_commit_time = m->u.txn.commit_time;
	a->cur_origin[0] = '\0';
	return txnbuf_new(m->u.txn.xid, AGENT_TXN_MEMLIMIT, a->cfg->spool_dir,
	    &a->cur, errmsg);
}

static int
on_commit(struct agent *a, const struct pgo_msg *m, char **errmsg)
{
	struct ls_txn t = m->u.txn;
	int r;

	if (a->cur == NULL)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "pgoutput: Commit without "
		    "Begin");
	t.xid = a->cur_xid;
	t.origin = a->cur_origin[0] ? a->cur_origin : NULL;
	r = commit_txn(a, a->cur, &t, errmsg);
	txnbuf_free(a->cur);
	a->cur = NULL;
	return r;
}

/*
 * One pgoutput message.  The content of a transaction is only peeked at
 * and buffered raw: it is decoded once, at commit (replay_one).
 */
static int
on_pgoutput(struct agent *a, const uint8_t *buf, size_t len, char **errmsg)
{
	struct pgo_peek pk;
	struct pgo_msg m;
	int r;

	if ((r = pgo_peek(buf, len, a->in_stream_block, &pk, errmsg)) != 0)
		return r;
	if (deferred(a, &pk))
		return append_raw(a, pk.xid, buf, len, errmsg);
	if ((r = pgo_decode(a->dec, buf, len, a->in_stream_block, &m, errmsg)) != 0)
		return r;
	switch (m.type) {
	case PGO_BEGIN:		return on_begin(a, &m, errmsg);
	case PGO_COMMIT:	return on_commit(a, &m, errmsg);
	case PGO_ORIGIN:
		snprintf(a->cur_origin, sizeof(a->cur_origin), "%s",
		    m.u.origin.name);
		return 0;
	case PGO_STREAM_START:	return stream_start(a, m.xid, errmsg);
	case PGO_STREAM_STOP:
		a->in_stream_block = false;
		return 0;
	case PGO_STREAM_COMMIT:	return stream_commit(a, &m, errmsg);
	case PGO_STREAM_ABORT:	return stream_abort(a, &m, errmsg);
	default:		return other_msg(a, &m, errmsg);
	}
}

static int
on_keepalive(struct agent *a, const uint8_t *buf, size_t len, char **errmsg)
{
	uint64_t wal_end;
	int64_t sent;
	bool reply;
	int r;

	if ((r = pgo_parse_keepalive(buf, len, &wal_end, &sent, &reply, errmsg)) != 0)
		return r;
	seen_lsn(a, wal_end);
	if (a->cur == NULL && a->nstreams == 0) {
		if (a->seg == NULL && wal_end >= a->server_pos) {
			a->server_pos = wal_end;
			a->server_time = sent + PGO_EPOCH_OFFSET_US;
		}
		if (a->cfg->has_endpos && wal_end >= a->cfg->endpos)
			a->endpos_reached = true;
	}
	return reply ? send_status(a, false, errmsg) : 0;
}

static int
on_copydata(struct agent *a, const uint8_t *buf, size_t len, char **errmsg)
{
	uint64_t start, end;
	int64_t sent;
	const uint8_t *payload;
	size_t plen;
	int r;

	if (len > 0 && buf[0] == 'k')
		return on_keepalive(a, buf, len, errmsg);
	if (len == 0 || buf[0] != 'w')
		return ls_errf(errmsg, LS_ERR_CORRUPT, "replication: unexpected "
		    "message type 0x%02x", len ? buf[0] : 0);
	if ((r = pgo_parse_xlogdata(buf, len, &start, &end, &sent, &payload,
	    &plen, errmsg)) != 0)
		return r;
	return on_pgoutput(a, payload, plen, errmsg);
}

/* ---- the loop ---- */

static int
tick(struct agent *a, char **errmsg)
{
	int64_t now = ls_now_us();
	int64_t flush_us = (int64_t)(a->cfg->flush_interval * 1e6);
	int r;

	/* during an upload the next segment waits, and the statuses go on */
	if (a->seg != NULL && !a->uploading && now - a->seg_first_us >= flush_us)
		return stream_flush(a, errmsg);
	if ((r = heartbeat(a, now, errmsg)) != 0)
		return r;
	if (now - a->last_status_us >= AGENT_STATUS_INTERVAL_US ||
	    (idle(a) && now - a->last_status_us >= flush_us))
		return send_status(a, true, errmsg);
	return 0;
}

/* Wait for the replication socket, or extra_fd (-1: none). */
static int
wait_input(struct agent *a, int extra_fd, char **errmsg)
{
	struct pollfd pfd[2] = { { PQsocket(a->repl), POLLIN, 0 },
	    { extra_fd, POLLIN, 0 } };
	int64_t flush_us = (int64_t)(a->cfg->flush_interval * 1e6);
	int timeout_ms = (int)(flush_us / 4000);
	int64_t t0 = ls_now_us();
	int lowat = AGENT_LOWAT_BYTES, one = 1, n;
	bool batch = false;

	if (timeout_ms < 10)
		timeout_ms = 10;
	if (timeout_ms > 1000)
		timeout_ms = 1000;
	/* catching up: wait for a batch (AGENT_LOWAT_BYTES, agent.h) */
	if (a->quick_polls >= AGENT_QUICK_POLLS && setsockopt(pfd[0].fd,
	    SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)) == 0) {
		batch = true;
		metric_add(a->m.batched_waits, 1);
		if (timeout_ms > AGENT_LOWAT_WAIT_MS)
			timeout_ms = AGENT_LOWAT_WAIT_MS;
	}
	n = poll(pfd, extra_fd >= 0 ? 2 : 1, timeout_ms);
	/* every other wait on the socket (libpq's own) wakes for one byte */
	if (batch && setsockopt(pfd[0].fd, SOL_SOCKET, SO_RCVLOWAT, &one,
	    sizeof(one)) != 0)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "replication socket: "
		    "SO_RCVLOWAT: %s", strerror(errno));
	if (n < 0 && errno != EINTR)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "poll: %s", strerror(errno));
	if (n > 0 && (pfd[0].revents & POLLIN) &&
	    (batch || ls_now_us() - t0 < AGENT_QUICK_POLL_US))
		a->quick_polls++;
	else
		a->quick_polls = 0;
	if (n == 0)
		a->silent_us += ls_now_us() - t0;
	if (a->silent_us > AGENT_RECV_TIMEOUT_US)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "no message from the "
		    "source in %d s of waiting although the agent asked for one "
		    "every %d s: the replication connection is dead (a network "
		    "or server gone silent)", AGENT_RECV_TIMEOUT_US / 1000000,
		    AGENT_STATUS_INTERVAL_US / 1000000);
	if (PQconsumeInput(a->repl) != 1)
		return ls_errf(errmsg, LS_ERR_TRANSIENT, "lost the replication "
		    "connection: %s", PQerrorMessage(a->repl));
	return 0;
}

static int
stream_ended(struct agent *a, char **errmsg)
{
	PGresult *res = PQgetResult(a->repl);
	const char *m = res != NULL ? PQresultErrorMessage(res) : "";
	int r;

	r = ls_errf(errmsg, LS_ERR_TRANSIENT, "the server ended the replication "
	    "stream: %s", *m ? m : PQerrorMessage(a->repl));
	PQclear(res);
	return r;
}

/*
 * One turn of the loop: handle a message, or run the timers and wait for
 * input (or for extra_fd, when not -1).
 */
static int
step(struct agent *a, int extra_fd, char **errmsg)
{
	char *buf = NULL;
	int n, r;

	/*
	 * A full segment closes here, between two messages, never inside the
	 * commit that filled it: its upload reads the stream (pump), and the
	 * next Begin must not arrive while that commit is still being handled.
	 */
	if (a->flush_due && !a->uploading)
		return stream_flush(a, errmsg);
	n = PQgetCopyData(a->repl, &buf, 1);
	if (n > 0) {
		a->got_data = true;
		a->silent_us = 0;
		r = on_copydata(a, (const uint8_t *)buf, (size_t)n, errmsg);
		PQfreemem(buf);
		if (r == 0 && ++a->burst % 512 == 0)
			r = tick(a, errmsg);
		return r;
	}
	if (n == 0) {
		if (!a->uploading)
			newbase_tick(a);
		if ((r = tick(a, errmsg)) == 0)
			r = wait_input(a, extra_fd, errmsg);
		return r;
	}
	return n == -1 ? stream_ended(a, errmsg) : ls_errf(errmsg,
	    LS_ERR_TRANSIENT, "lost the replication connection: %s",
	    PQerrorMessage(a->repl));
}

int
stream_run(struct agent *a, char **errmsg)
{
	int r;

	a->last_status_us = ls_now_us();
	a->silent_us = 0;
	if (a->last_stored_us == 0)
		a->last_stored_us = a->last_status_us;
	for (;;) {
		service_watchdog();
		if (agent_hup) {
			agent_hup = 0;
			log_reopen();
		}
		if (agent_stop || a->endpos_reached) {
			/* what arrived while the last one went up, too */
			while ((r = stream_flush(a, errmsg)) == 0 && a->seg != NULL)
				;
			return r;
		}
		if ((r = step(a, -1, errmsg)) != 0)
			return r;
	}
}
