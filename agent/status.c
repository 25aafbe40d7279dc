/*
 * status.c: logship-agent status.  Reads the store's head (the newest
 * segment and heartbeat) and the slot on the source, and says whether the
 * store is current: one JSON object (--format json) or a few lines, and
 * an exit status for monitoring: 0 ok, 1 the lag is over --warn, 2 over
 * --crit or something could not be read.
 *
 * The lag in seconds: 0 when the slot has confirmed everything the source
 * has written; otherwise how old the store's newest news is (the later of
 * its last commit time and its last heartbeat).  An agent is running when
 * the slot is active (a walsender serves it).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"
#include "common/error.h"
#include "common/util.h"
#include "repo/catalog.h"
#include "repo/head.h"
#include "source.h"
#include "store/store.h"

struct status_opts {
	bool		 json;
	double		 warn, crit;	/* seconds; 0: not given */
};

static const char status_sql[] =
    "SELECT pg_current_wal_lsn()::text, confirmed_flush_lsn::text, active, "
    "coalesce(active_pid::text, '') FROM pg_replication_slots "
    "WHERE slot_name = $1";

static int __attribute__((format(printf, 1, 2)))
usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "logship-agent status: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"logship-agent --help\".\n");
	return LS_EXIT_USAGE;
}

/* Take --format, --warn and --crit out of argv (the rest is the agent's). */
static int
own_options(int *argc, char **argv, struct status_opts *so)
{
	const char *names[] = { "--format", "--warn", "--crit" };
	const char *v;
	double d;
	int i, j, k, take;

	for (i = 1; i < *argc; i++) {
		for (k = 0; k < 3; k++) {
			size_t nl = strlen(names[k]);
			if (strncmp(argv[i], names[k], nl) != 0 ||
			    (argv[i][nl] != '\0' && argv[i][nl] != '='))
				continue;
			take = argv[i][nl] == '=' ? 1 : 2;
			if (take == 2 && i + 1 >= *argc)
				return usage("%s needs a value", names[k]);
			v = take == 1 ? argv[i] + nl + 1 : argv[i + 1];
			if (k == 0 && strcmp(v, "json") != 0 &&
			    strcmp(v, "text") != 0)
				return usage("--format %s: use text or json", v);
			if (k == 0)
				so->json = strcmp(v, "json") == 0;
			else if (ls_parse_duration(v, &d) != 0 || d <= 0)
				return usage("%s: expected a duration like 30s "
				    "or 5m", v);
			else if (k == 1)
				so->warn = d;
			else
				so->crit = d;
			for (j = i; j + take <= *argc; j++)
				argv[j] = argv[j + take];
			*argc -= take;
			i--;
			break;
		}
	}
	if (so->warn > 0 && so->crit > 0 && so->warn > so->crit)
		return usage("%s", "--warn must not be above --crit");
	return 0;
}

/* The store's part; 0 or an error with *errmsg. */
static int
read_store(const struct agent_config *c, json_t *o, int64_t *as_of,
    char **errmsg)
{
	struct catalog_identity id;
	struct store_head hd;
	struct store *st = NULL;
	int r;

	if ((r = store_open_opts(c->store, &c->store_opts, &st, errmsg)) != 0)
		return r;
	json_object_set_new(o, "store", json_string(store_url(st)));
	if ((r = catalog_identity_read(st, &id, errmsg)) == 0 &&
	    (r = head_read(st, id.generation, 0, HEAD_SCAN_MAX, &hd,
	    errmsg)) == 0) {
		json_object_set_new(o, "generation", json_string(id.generation));
		json_object_set_new(o, "last_segment",
		    json_integer((json_int_t)hd.last_segno));
		head_json_lsn(o, "last_end_lsn", hd.end_lsn);
		head_json_time(o, "last_commit_time", hd.commit_time);
		head_json_time(o, "heartbeat_time", hd.heartbeat_time);
		head_json_time(o, "as_of", hd.as_of);
		*as_of = hd.as_of;
	}
	store_free(st);
	return r;
}

/* The slot's part. */
static int
read_slot(const struct agent_config *c, json_t *o, uint64_t *lag_bytes,
    char **errmsg)
{
	const char *params[1] = { c->slot };
	uint64_t cur = 0, confirmed = 0;
	PGconn *conn = NULL;
	PGresult *res;
	bool active;
	int r;

	json_object_set_new(o, "slot", json_string(c->slot));
	if ((r = source_connect(c->source, false, &conn, errmsg)) != 0)
		return r;
	res = PQexecParams(conn, status_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		r = ls_errf(errmsg, LS_ERR_PG, "reading the slot: %s",
		    PQresultErrorMessage(res));
	else if (PQntuples(res) != 1)
		r = ls_errf(errmsg, LS_ERR_NOTFOUND, "the source has no slot "
		    "%s: the agent has not run yet, or it was dropped", c->slot);
	else {
		ls_lsn_parse(PQgetvalue(res, 0, 0), &cur);
		ls_lsn_parse(PQgetvalue(res, 0, 1), &confirmed);
		active = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		head_json_lsn(o, "source_lsn", cur);
		head_json_lsn(o, "slot_confirmed_lsn", confirmed);
		*lag_bytes = cur > confirmed ? cur - confirmed : 0;
		json_object_set_new(o, "slot_lag_bytes",
		    json_integer((json_int_t)*lag_bytes));
		json_object_set_new(o, "agent_running", json_boolean(active));
		if (active)
			json_object_set_new(o, "agent_pid", json_integer(
			    atoi(PQgetvalue(res, 0, 3))));
	}
	PQclear(res);
	PQfinish(conn);
	return r;
}

static void
print_text(json_t *o)
{
	const char *err = json_string_value(json_object_get(o, "error"));
	const char *asof = json_string_value(json_object_get(o, "as_of"));

	printf("logship-agent: %s", json_string_value(json_object_get(o,
	    "status")));
	if (err != NULL)
		printf(": %s", err);
	printf("\n");
	if (json_object_get(o, "lag_seconds") != NULL)
		printf("  lag %.1f s, %" JSON_INTEGER_FORMAT " bytes behind the "
		    "source (slot %s, %s)\n", json_real_value(json_object_get(o,
		    "lag_seconds")), json_integer_value(json_object_get(o,
		    "slot_lag_bytes")), json_string_value(json_object_get(o,
		    "slot")), json_is_true(json_object_get(o, "agent_running")) ?
		    "agent running" : "no agent running");
	if (json_object_get(o, "generation") != NULL)
		printf("  store %s generation %s: segment %" JSON_INTEGER_FORMAT
		    ", complete as of %s\n", json_string_value(json_object_get(o,
		    "store")), json_string_value(json_object_get(o,
		    "generation")), json_integer_value(json_object_get(o,
		    "last_segment")), asof != NULL ? asof : "-");
}

int
status_main(int argc, char **argv)
{
	struct status_opts so = { false, 0, 0 };
	struct agent_config cfg;
	json_t *o = json_object();
	uint64_t lag_bytes = 0;
	int64_t as_of = 0, now = ls_now_us();
	char *err = NULL;
	double lag = 0;
	const char *state;
	int r, status;

	if ((r = own_options(&argc, argv, &so)) != 0)
		return r;
	config_parse(argc, argv, &cfg);
	store_global_init();
	r = read_store(&cfg, o, &as_of, &err);
	if (r == 0)
		r = read_slot(&cfg, o, &lag_bytes, &err);
	if (r == 0) {
		lag = lag_bytes == 0 || as_of == 0 ? 0 :
		    now > as_of ? (double)(now - as_of) / 1e6 : 0;
		json_object_set_new(o, "lag_seconds", json_real(lag));
	}
	status = r != 0 || (so.crit > 0 && lag > so.crit) ? 2 :
	    so.warn > 0 && lag > so.warn ? 1 : 0;
	state = status == 0 ? "ok" : status == 1 ? "warn" : "crit";
	json_object_set_new(o, "status", json_string(state));
	json_object_set_new(o, "error", err ? json_string(err) : json_null());
	if (so.json) {
		char *s = json_dumps(o, JSON_COMPACT);
		if (s != NULL)
			printf("%s\n", s);
		free(s);
	} else
		print_text(o);
	json_decref(o);
	free(err);
	config_free(&cfg);
	return status;
}
