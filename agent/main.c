/*
 * logship-agent: stream a PostgreSQL source's committed transactions into a
 * logship store (design.md, "Agent durability protocol").
 *
 * The main loop runs sessions.  A session that fails for a transient reason
 * (connection lost, server restart, store outage) is retried with
 * exponential back-off and jitter once the agent has streamed at least
 * once; before that, every failure is reported and the agent exits 1, so a
 * misconfiguration is seen at once.  Committed transactions already in the
 * open segment are stored before a retry.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "common/error.h"
#include "common/log.h"
#include "common/secfile.h"
#include "common/service.h"
#include "common/util.h"
#include "ddl.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "newbase.h"
#include "pg/pgoutput.h"
#include "repo/catalog.h"
#include "source.h"
#include "store/store.h"

volatile sig_atomic_t agent_stop;
volatile sig_atomic_t agent_hup;

static void
on_stop(int sig)
{
	(void)sig;
	agent_stop++;
}

static void
on_hup(int sig)
{
	(void)sig;
	agent_hup = 1;
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Sleep for about us microseconds, waking early on a stop signal. */
static void
nap(int64_t us)
{
	while (us > 0 && !agent_stop) {
		struct timespec ts = { 0, 100000000 };	/* 0.1 s */
		service_watchdog();
		nanosleep(&ts, NULL);
		us -= 100000;
	}
}

/* Can we write to the store at all?  A tiny object, then delete it. */
static int
probe_store(struct store *st, char **errmsg)
{
	char key[64];
	int r;

	snprintf(key, sizeof(key), "probe/agent-%d-%ld", (int)getpid(),
	    (long)time(NULL));
	if ((r = store_put_buf(st, key, "ok", 2, 1, errmsg)) != 0)
		return ls_errprefix(errmsg, r, "the store is not writable; check "
		    "its path/permissions or credentials");
	return store_delete(st, key, errmsg);
}

/*
 * Is this a logship store?  Reads logship.json and writes nothing, so a
 * mistyped --store is refused before any object or directory exists there.
 * Without logship.json the store is new, which only --init may create.
 */
static int
check_store(struct store *st, bool init, char **errmsg)
{
	struct catalog_identity id;
	int r;

	r = catalog_identity_read(st, &id, errmsg);
	if (r == LS_ERR_NOTFOUND && !init)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds no %s: "
		    "not a logship store (a typo in --store?); to create a new "
		    "store there, run logship-agent once with --init",
		    store_url(st), CATALOG_IDENTITY);
	if (r == LS_ERR_NOTFOUND) {	/* created with the first base */
		free(*errmsg);
		*errmsg = NULL;
		return 0;
	}
	if (r == 0 && init)
		log_info("agent", "store %s already exists (generation %s); "
		    "--init has nothing to do", store_url(st), id.generation);
	return r;
}

static int
setup(struct agent *a, const struct agent_config *c, uint8_t key[32])
{
	char *err = NULL;

	store_global_init();	/* before any thread (base copy workers) */

	if (log_init(c->log_format, c->log_file, (int)c->verbose, &err) != 0 ||
	    (c->key_file != NULL && ls_key_load(c->key_file, key, &err) != 0) ||
	    (c->spool_dir != NULL && secfile_check_dir(c->spool_dir,
	    "spool dir", &err) != 0)) {
		fprintf(stderr, "logship-agent: %s\n", err);
		free(err);
		return 2;
	}
	if (store_open_opts(c->store, &c->store_opts, &a->store, &err) != 0) {
		fprintf(stderr, "logship-agent: %s\n", err);
		free(err);
		return 2;
	}
	if (check_store(a->store, c->init, &err) != 0 ||
	    probe_store(a->store, &err) != 0) {
		log_error("agent", "%s", err);
		free(err);
		return 1;
	}
	if (c->source_scrubbed)
		log_warn("agent", "--source holds a password, which other users "
		    "could see in ps until it was overwritten; put it in a .pgpass "
		    "file (PGPASSFILE) or the --config file instead");
	a->key = c->key_file != NULL ? key : NULL;
	a->cfg = c;
	if (observe_start(a, &err) != 0) {
		fprintf(stderr, "logship-agent: %s\n", err);
		free(err);
		return 2;
	}
	return 0;
}

static void
teardown(struct agent *a)
{
	newbase_stop(a);
	observe_stop(a);
	stream_reset_inflight(a);
	stream_free(a);
	segment_writer_free(a->seg);
	relcache_free(a->rels);
	pgo_decoder_free(a->dec);
	store_free(a->store);
}

/* Keep what is committed before a retry; then forget what is in flight. */
static void
save_and_reset(struct agent *a)
{
	char *err = NULL;

	stream_reset_inflight(a);
	if (stream_flush(a, &err) != 0) {
		log_error("agent", "could not store the open segment: %s", err);
		segment_writer_free(a->seg);	/* not confirmed: resent later */
		a->seg = NULL;
	}
	free(err);
	a->endpos_reached = false;
}

/*
 * The spool dir is full (LS_ERR_NOSPACE): say which directory and what to
 * do, on the one line of err.
 */
static void
spool_full(const struct agent *a, char **err)
{
	const char *dir = ls_temp_dir(a->cfg->spool_dir);
	char *msg = NULL;

	if (asprintf(&msg, "LOCAL DISK FULL: %s; the spool dir %s "
	    "(--spool-dir: large transactions and closing segments) has no "
	    "space left: free space there or point --spool-dir at a larger "
	    "filesystem; nothing the store does not hold is confirmed to the "
	    "source", *err, dir) < 0)
		return;
	free(*err);
	*err = msg;
}

static int
run(struct agent *a)
{
	struct rusage ru;
	struct store_requests req;
	char reqs[160];
	char *err = NULL;
	int attempt = 0, r;

	for (;;) {
		r = session_run(a, &err);
		if (r == 0)
			break;
		if (agent_stop) {	/* e.g. interrupted base snapshot */
			log_info("agent", "stopped: %s", err);
			save_and_reset(a);
			free(err);
			return 0;
		}
		if (r == LS_ERR_NOSPACE)
			spool_full(a, &err);
		if (!a->ever_streamed || (r != LS_ERR_TRANSIENT && r != LS_ERR_PG &&
		    r != LS_ERR_IO && r != LS_ERR_NOSPACE)) {
			log_error("agent", "%s", err);
			save_and_reset(a);
			free(err);
			return 1;
		}
		save_and_reset(a);
		/* the last session worked: start over; a full disk does not
		 * empty itself by reconnecting */
		if (a->got_data && r != LS_ERR_NOSPACE)
			attempt = 0;
		if (r == LS_ERR_NOSPACE)
			log_error("agent", "%s; retrying (try %d)", err,
			    attempt + 1);
		else
			log_warn("agent", "%s; reconnecting (try %d)", err,
			    attempt + 1);
		service_status("reconnecting (try %d): %.200s", attempt + 1, err);
		free(err);
		err = NULL;
		nap(ls_backoff_us(attempt));
		attempt++;
		if (agent_stop)
			return 0;
	}
	getrusage(RUSAGE_SELF, &ru);
	store_requests(&req);
	store_requests_format(&req, reqs, sizeof(reqs));
	log_info("agent", "stopped: %" PRIu64 " transactions in %" PRIu64
	    " segments this run, peak_rss_kb=%ld, store requests: %s",
	    a->txns_total, a->segs_total, ru.ru_maxrss, reqs);
	free(err);
	return 0;
}

/* --ddl-uninstall: remove the DDL capture from the source (ddl.h). */
static int
uninstall_ddl(const struct agent_config *c)
{
	PGconn *conn = NULL;
	char *err = NULL;
	int r;

	if ((r = source_connect(c->source, false, &conn, &err)) == 0)
		r = ddl_uninstall(conn, &err);
	PQfinish(conn);
	if (r != 0) {
		fprintf(stderr, "logship-agent: %s\n", err);
		free(err);
		return LS_EXIT_FAILURE;
	}
	printf("logship-agent: DDL capture removed from the source (event "
	    "triggers, functions and logship.ddl_shadow)\n");
	return 0;
}

/* --new-base: one base beside the running agent, then exit. */
static int
new_base_once(struct agent *a)
{
	char *err = NULL;
	int r = newbase_take(a->cfg, a->store, a->key, &agent_stop, &err);

	if (r != 0) {
		log_error("agent", "%s", err);
		free(err);
		return r == LS_ERR_INVALID && !agent_stop ? LS_EXIT_USAGE :
		    LS_EXIT_FAILURE;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct agent_config cfg;
	struct agent a;
	uint8_t key[32];
	int r;

	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return status_main(argc - 1, argv + 1);
	config_parse(argc, argv, &cfg);
	if (cfg.ddl_uninstall) {
		r = uninstall_ddl(&cfg);
		config_free(&cfg);
		return r;
	}
	if (cfg.drop_slot) {
		r = drop_slot_main(&cfg);
		config_free(&cfg);
		return r;
	}
	memset(&a, 0, sizeof(a));
	srandom((unsigned)(getpid() ^ time(NULL)));
	install_signals();
	if ((r = setup(&a, &cfg, key)) == 0)
		r = cfg.new_base ? new_base_once(&a) : run(&a);
	service_stopping();
	teardown(&a);
	config_free(&cfg);
	return r;
}
