/*
 * cmd_status.c: logship-restore status.  How far a restore has got (the
 * marker in the target's logship.applied, which is authoritative, or in
 * the state dir) against the store's head: one JSON object (--format
 * json) or a few lines, and an exit status for monitoring: 0 ok, 1 the
 * lag is over --warn, 2 over --crit or something could not be read.  The
 * lag is the restore metrics' (observe.c, head_lag_seconds): 0 when the
 * newest segment, heartbeats included, is applied.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd.h"
#include "common/error.h"
#include "common/util.h"
#include "repo/catalog.h"
#include "repo/head.h"
#include "state.h"
#include "store/store.h"
#include "target.h"

struct cli {
	const char	*store_url;
	const char	*state_dir;
	const char	*target;
	bool		 json;
	double		 warn, crit;
};

static int
duration_arg(const char *opt, const char *v, double *out)
{
	if (ls_parse_duration(v, out) != 0 || *out <= 0)
		return cmd_usage_error("%s %s: expected a duration like 30s or "
		    "5m", opt, v);
	return 0;
}

static int
parse_args(int argc, char **argv, struct cli *c, struct store_opts *so)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "target", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "warn", required_argument, NULL, 'w' },
		{ "crit", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, rc = 0;

	while (rc == 0 && (ch = cmd_getopt(argc, argv, "h", opts, so)) != -1) {
		switch (ch) {
		case 's': c->store_url = optarg; break;
		case 'd': c->state_dir = optarg; break;
		case 't': c->target = optarg; break;
		case 'f':
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "text") != 0)
				return cmd_usage_error("--format %s: use text "
				    "or json", optarg);
			c->json = strcmp(optarg, "json") == 0;
			break;
		case 'w': rc = duration_arg("--warn", optarg, &c->warn); break;
		case 'c': rc = duration_arg("--crit", optarg, &c->crit); break;
		case 'h': cmd_usage(stdout); exit(0);
		default: return cmd_usage_error("%s", "bad option for status");
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return cmd_usage_error("unexpected argument %s", argv[optind]);
	if (c->store_url == NULL)
		return cmd_usage_error("%s", "status needs --store URL");
	if (c->state_dir == NULL && c->target == NULL)
		return cmd_usage_error("%s", "status needs --target CONNINFO or "
		    "--state-dir DIR (where the restore's marker is)");
	if (c->warn > 0 && c->crit > 0 && c->warn > c->crit)
		return cmd_usage_error("%s", "--warn must not be above --crit");
	return 0;
}

/* The marker: from the target when given (authoritative), else LMDB. */
static int
read_marker(const struct cli *c, json_t *o, struct state_marker *mk,
    char **errmsg)
{
	struct state *st = NULL;
	PGconn *conn = NULL;
	char store_id[256];
	int r;

	if (c->target != NULL) {
		json_object_set_new(o, "marker_from", json_string("target"));
		if ((r = target_connect(c->target, &conn, errmsg)) == 0) {
			r = target_get_marker(conn, mk, store_id, sizeof(store_id),
			    errmsg);
			if (r == LS_ERR_NOTFOUND)
				r = ls_errf(errmsg, r, "the target has no "
				    "logship.applied marker: nothing restored "
				    "into it yet");
		}
		PQfinish(conn);
		return r;
	}
	json_object_set_new(o, "marker_from", json_string("state-dir"));
	if ((r = state_open_readonly(c->state_dir, &st, errmsg)) == 0) {
		r = state_get_marker(st, mk, errmsg);
		if (r == LS_ERR_NOTFOUND)
			r = ls_errf(errmsg, r, "state dir %s holds no marker: "
			    "nothing restored with it yet", c->state_dir);
	}
	state_close(st);
	return r;
}

static int
read_all(const struct cli *c, struct store *st, json_t *o, double *lag,
    char **errmsg)
{
	struct catalog_identity id;
	struct state_marker mk;
	struct store_head hd;
	int r;

	if ((r = catalog_identity_read(st, &id, errmsg)) != 0)
		return r;
	json_object_set_new(o, "store_generation", json_string(id.generation));
	if ((r = read_marker(c, o, &mk, errmsg)) != 0)
		return r;
	json_object_set_new(o, "generation", json_string(mk.generation));
	json_object_set_new(o, "phase", json_integer(mk.phase & PHASE_MASK));
	json_object_set_new(o, "applied_segment",
	    json_integer((json_int_t)mk.segno));
	head_json_lsn(o, "applied_lsn", mk.end_lsn);
	head_json_time(o, "applied_commit_time", mk.commit_time);
	head_json_time(o, "heartbeat_time", mk.heartbeat_time);
	if ((r = head_read(st, mk.generation, mk.segno, 0, &hd, errmsg)) != 0)
		return r;
	*lag = head_lag_seconds(&hd, ls_now_us());
	json_object_set_new(o, "head_segment",
	    json_integer((json_int_t)hd.last_segno));
	json_object_set_new(o, "lag_segments", json_integer((json_int_t)hd.nsegs));
	json_object_set_new(o, "lag_bytes", json_integer((json_int_t)hd.bytes));
	json_object_set_new(o, "lag_seconds", json_real(*lag));
	json_object_set_new(o, "caught_up", json_boolean(hd.nsegs == 0 &&
	    strcmp(mk.generation, id.generation) == 0));
	if (strcmp(mk.generation, id.generation) != 0)
		return ls_errf(errmsg, LS_ERR_CHAIN, "the store moved on to "
		    "generation %s (the restore is in %s): restore the store "
		    "into a new, empty database", id.generation, mk.generation);
	return 0;
}

static void
print_text(json_t *o)
{
	const char *err = json_string_value(json_object_get(o, "error"));
	const char *hb = json_string_value(json_object_get(o, "heartbeat_time"));
	const char *ct = json_string_value(json_object_get(o,
	    "applied_commit_time"));

	printf("logship-restore: %s", json_string_value(json_object_get(o,
	    "status")));
	if (err != NULL)
		printf(": %s", err);
	printf("\n");
	if (json_object_get(o, "lag_seconds") == NULL)
		return;
	printf("  applied segment %" JSON_INTEGER_FORMAT " of %"
	    JSON_INTEGER_FORMAT " (lsn %s, commit %s, heartbeat %s)\n",
	    json_integer_value(json_object_get(o, "applied_segment")),
	    json_integer_value(json_object_get(o, "head_segment")),
	    json_string_value(json_object_get(o, "applied_lsn")),
	    ct ? ct : "-", hb ? hb : "-");
	printf("  lag %.1f s, %" JSON_INTEGER_FORMAT " segments, %"
	    JSON_INTEGER_FORMAT " bytes%s\n", json_real_value(json_object_get(o,
	    "lag_seconds")), json_integer_value(json_object_get(o,
	    "lag_segments")), json_integer_value(json_object_get(o,
	    "lag_bytes")), json_is_true(json_object_get(o, "caught_up")) ?
	    " (caught up)" : "");
}

static int
status_exec(int argc, char **argv)
{
	struct cli c = { 0 };
	struct store_opts so = { 0 };
	struct store *st = NULL;
	json_t *o;
	char *err = NULL;
	double lag = 0;
	int rc, status;

	if ((rc = parse_args(argc, argv, &c, &so)) != 0)
		return rc;
	store_global_init();
	if ((rc = cmd_store_open(c.store_url, &so, &st)) != 0)
		return rc;
	o = json_object();
	json_object_set_new(o, "store", json_string(store_url(st)));
	rc = read_all(&c, st, o, &lag, &err);
	status = rc != 0 || (c.crit > 0 && lag > c.crit) ? 2 :
	    c.warn > 0 && lag > c.warn ? 1 : 0;
	json_object_set_new(o, "status", json_string(status == 0 ? "ok" :
	    status == 1 ? "warn" : "crit"));
	json_object_set_new(o, "error", err ? json_string(err) : json_null());
	if (c.json) {
		char *s = json_dumps(o, JSON_COMPACT);
		if (s != NULL)
			printf("%s\n", s);
		free(s);
	} else
		print_text(o);
	json_decref(o);
	free(err);
	store_free(st);
	return status;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.synopsis =
"status --store URL (--target CONNINFO | --state-dir DIR)\n"
"                       [--format text|json] [--warn DURATION] [--crit DURATION]\n",
	.help =
"  --warn D, --crit D status: exit 1 when the lag is over D, 2 over --crit\n"
"                    (or on an error); D like 30s, 5m\n",
	.exec = status_exec,
};
