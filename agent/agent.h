/*
 * agent.h: logship-agent's state, shared by its files.
 *	main.c		options, signals, the restart loop
 *	session.c	one connected run: store identity, generation, base,
 *			then the stream
 *	stream.c	the replication stream: transactions, segments,
 *			uploads, confirmations
 */
#ifndef LS_AGENT_H
#define LS_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"

struct store;
struct segment_writer;
struct relcache;
struct pgo_decoder;
struct txnbuf;
struct newbase;
struct metric;
struct metrics;
struct observer;

/* The agent's metrics (observe.c); every handle NULL when metrics are off. */
struct agent_metrics {
	struct metrics	*reg;
	struct metric	*source_lsn, *source_commit_time;
	struct metric	*durable_lsn, *durable_segment, *durable_commit_time;
	struct metric	*confirmed_lsn;
	struct metric	*slot_lag_bytes, *slot_lag_seconds, *slot_active;
	struct metric	*txns, *changes, *segments, *bytes;
	struct metric	*upload_errors, *retries, *upload_seconds;
	struct metric	*heartbeats, *heartbeat_time;
	struct metric	*batched_waits;
	struct metric	*base_tables_done, *base_tables, *base_bytes_done;
	struct metric	*base_bytes_estimate;
};

#define AGENT_TXN_MEMLIMIT	(4u << 20)	/* per transaction, then spill */
#define AGENT_STATUS_INTERVAL_US 10000000	/* confirm at least every 10 s */
/*
 * While the loop is busy with one thing (writing a large transaction into
 * the segment at its commit, waiting for an upload once stopping), a
 * status goes out at least this often: a walsender that hears nothing for
 * wal_sender_timeout (60 s by default, a few seconds on some servers)
 * ends the connection, and a reconnection would only redo the same work.
 */
#define AGENT_BUSY_STATUS_US	1000000
/*
 * Waiting this long on the replication socket with nothing arriving, while
 * the idle agent asks the server for a reply every status interval, means
 * the connection is dead without a reset (a network gone silent): the
 * agent reconnects, as PostgreSQL's walreceiver does after
 * wal_receiver_timeout (also 60 s by default).
 */
#define AGENT_RECV_TIMEOUT_US	60000000
/*
 * Catching up, the walsender sends faster than it decodes only a message
 * at a time, and waking the agent for each one costs both sides more than
 * the message itself (a pgbench backlog: half the agent's time and a fifth
 * of the walsender's, bench/results.md).  After AGENT_QUICK_POLLS waits in
 * a row that each found data at once, a wait asks the kernel for
 * AGENT_LOWAT_BYTES (SO_RCVLOWAT) but for at most AGENT_LOWAT_WAIT_MS; the
 * first wait that times out goes back to waking for every byte.
 */
#define AGENT_QUICK_POLLS	8
#define AGENT_QUICK_POLL_US	1000
#define AGENT_LOWAT_BYTES	(32 << 10)
#define AGENT_LOWAT_WAIT_MS	10

extern volatile sig_atomic_t agent_stop;	/* SIGTERM/SIGINT */
extern volatile sig_atomic_t agent_hup;

struct agent {
	const struct agent_config *cfg;
	struct store	*store;
	const uint8_t	*key;
	bool		 ever_streamed;	/* failures after this are retried */
	bool		 got_data;	/* this session received a message */
	bool		 ddl_on;	/* the source's DDL capture is installed */

	/* identity of this run */
	char		 generation[17];
	uint64_t	 system_id;
	char		 database[64];
	PGconn		*sql;
	PGconn		*repl;
	bool		 in_copy;	/* repl is streaming (START_REPLICATION) */
	struct pgo_decoder *dec;
	struct relcache	*rels;
	char		*tables_written;	/* last logship.tables content */
	char		*tables_pending;	/* a newer one, once the stream */
	uint64_t	 tables_lsn;		/* has passed this position */

	/* segments */
	struct segment_writer *seg;	/* open segment or NULL */
	uint64_t	 segno;		/* number of the next/open segment */
	uint8_t		 prev_sha[32];
	bool		 have_prev;
	int64_t		 seg_first_us;	/* when its first transaction came */
	bool		 uploading;	/* a closed segment is going up */
	bool		 flush_due;	/* the open segment is full: close it */
	uint64_t	 stored_end_lsn;	/* durable in the store */
	uint64_t	 written_end_lsn;	/* in the store or the open segment */

	/* transactions in flight */
	struct txnbuf	*cur;		/* between Begin and Commit */
	uint32_t	 cur_xid;
	uint64_t	 cur_commit_lsn;
	int64_t		 cur_commit_time;
	char		 cur_origin[128];
	struct txnbuf	**streams;	/* open streamed transactions */
	size_t		 nstreams;
	bool		 in_stream_block;
	uint32_t	 stream_xid;

	/* positions */
	uint64_t	 server_pos;	/* sent by the server, reached while idle */
	uint64_t	 confirmed;
	uint64_t	 slot_lsn;	/* the generation's slot was created here */
	uint64_t	 base_lsn;	/* its base snapshot is consistent here */
	uint64_t	 idle_lsn;	/* in <gen>.confirmed: confirmed while idle */
	int64_t		 idle_lsn_us;	/* when that was last written */
	uint64_t	 slot_confirmed; /* the slot's confirmed_flush_lsn at start */
	bool		 caveats_logged;
	int64_t		 last_status_us;
	int64_t		 silent_us;	/* waited since the last message */
	unsigned	 burst;		/* messages read without a pause */
	unsigned	 quick_polls;	/* waits in a row that found data at once */
	bool		 endpos_reached;
	uint64_t	 txns_total, segs_total;
	struct newbase	*newbase;	/* --base-interval's thread */

	/* observability */
	struct agent_metrics m;
	struct observer	*obs;		/* metrics thread, or NULL */
	int64_t		 last_stored_us;	/* a segment was last stored */
	int64_t		 server_time;	/* the last keepalive's time (Unix us) */
};

/* stream.c */
int stream_run(struct agent *, char **errmsg);
/* Close, upload and confirm the open segment (if any). */
int stream_flush(struct agent *, char **errmsg);
/* Store a segment holding only sequence samples (after a base snapshot). */
int stream_sample_now(struct agent *, char **errmsg);
void stream_reset_inflight(struct agent *);
/* Free what the stream keeps across sessions. */
void stream_free(struct agent *);

/* observe.c: metrics (--metrics-addr, --metrics-file) and status. */
/* Make the metrics, serve them, start the thread that samples the slot
 * and writes the textfile; nothing when neither option is set. */
int observe_start(struct agent *, char **errmsg);
/* Write the textfile a last time, stop the thread and the server. */
void observe_stop(struct agent *);
/* basecopy_opts.progress for the base progress gauges (arg: the agent). */
void observe_base(void *arg, size_t tables_done, size_t tables,
    uint64_t bytes_done, uint64_t bytes_estimate);
/* logship-agent status [options]: the exit status (0, 1 warn, 2 crit). */
int status_main(int argc, char **argv);
/* dropslot.c: --drop-slot, a command of its own; the exit status. */
int drop_slot_main(const struct agent_config *);

/* session.c: one connected run (returns 0 when done: stop or endpos). */
int session_run(struct agent *, char **errmsg);

#endif
