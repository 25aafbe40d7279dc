/*
 * cmd_restore.c: logship-restore with an option first, the restore itself:
 * replay a store into a target (replay.c).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common/util.h"
#include "replay.h"
#include "store/store.h"

static int
parse_until(struct replay_opts *o, int ch, const char *v)
{
	if (ch == 'L') {
		if (ls_lsn_parse(v, &o->until_lsn) != 0)
			return cmd_usage_error("--until-lsn %s: expected an "
			    "LSN like 16/B374D848", v);
		o->has_until_lsn = true;
	} else {
		if (ls_parse_time(v, &o->until_time) != 0)
			return cmd_usage_error("--until-time %s: expected a "
			    "timestamp like 2026-11-21 05:44:30+00", v);
		o->has_until_time = true;
	}
	return 0;
}

static int
id_mode(struct replay_opts *o, const char *v)
{
	if (strcmp(v, "remap") == 0)
		o->remap = true;
	else if (strcmp(v, "preserve") == 0)
		o->remap = false;
	else
		return cmd_usage_error("--id-mode %s: use preserve or remap", v);
	return 0;
}

static int
missing_ref(struct replay_opts *o, const char *v)
{
	static const char *const names[] = { "error", "null", "skip" };
	int i;

	for (i = 0; i < 3; i++)
		if (strcmp(v, names[i]) == 0) {
			o->on_missing = i;	/* enum missing_ref order */
			return 0;
		}
	return cmd_usage_error("--on-missing-ref %s: use error, null or skip",
	    v);
}

#define MAX_SKIP_DDL	64

static int
skip_ddl(struct replay_opts *o, uint64_t *skip, const char *v)
{
	if (o->nskip_ddl == MAX_SKIP_DDL)
		return cmd_usage_error("--skip-ddl: at most %d", MAX_SKIP_DDL);
	if (ls_lsn_parse(v, &skip[o->nskip_ddl]) != 0)
		return cmd_usage_error("--skip-ddl %s: expected an LSN like "
		    "16/B374D848", v);
	o->nskip_ddl++;
	return 0;
}

static int
restore_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "follow", no_argument, NULL, 'F' },
		{ "until-lsn", required_argument, NULL, 'L' },
		{ "until-time", required_argument, NULL, 'T' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "batch-txns", required_argument, NULL, 'b' },
		{ "truncate", no_argument, NULL, 'x' },
		{ "id-mode", required_argument, NULL, 'I' },
		{ "filter", required_argument, NULL, 'P' },
		{ "on-missing-ref", required_argument, NULL, 'M' },
		{ "skip-ddl", required_argument, NULL, 'D' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "metrics-addr", required_argument, NULL, 'm' },
		{ "metrics-file", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static uint64_t skip[MAX_SKIP_DDL];
	struct store_opts so = { 0 };
	struct replay_opts o = { .jobs = 2, .batch_txns = 1000,
	    .log_format = "text", .store_opts = &so, .skip_ddl = skip };
	int ch, rc = 0;

	while (rc == 0 &&
	    (ch = cmd_getopt(argc, argv, "vh", opts, &so)) != -1) {
		switch (ch) {
		case 's': o.store_url = optarg; break;
		case 't': o.target = optarg; break;
		case 'd': o.state_dir = optarg; break;
		case 'F': o.follow = true; break;
		case 'L': case 'T': rc = parse_until(&o, ch, optarg); break;
		case 'j': rc = cmd_int_arg("--jobs", optarg, 1, 64, &o.jobs); break;
		case 'b': rc = cmd_int_arg("--batch-txns", optarg, 1, 1000000,
		    &o.batch_txns); break;
		case 'x': o.truncate = true; break;
		case 'I': rc = id_mode(&o, optarg); break;
		case 'P': o.filter_path = optarg; break;
		case 'M': rc = missing_ref(&o, optarg); break;
		case 'D': rc = skip_ddl(&o, skip, optarg); break;
		case 'k': o.key_file = optarg; break;
		case 'f': o.log_format = optarg; break;
		case 'l': o.log_file = optarg; break;
		case 'm': o.metrics_addr = optarg; break;
		case 'O': o.metrics_file = optarg; break;
		case 'v': o.verbose++; break;
		case 'h': cmd_usage(stdout); exit(0);
		case 'V': printf("logship-restore %s\n", PACKAGE_VERSION); exit(0);
		default: rc = cmd_usage_error("%s", "bad option");
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return cmd_usage_error("unexpected argument %s", argv[optind]);
	if (o.store_url == NULL || o.target == NULL || o.state_dir == NULL)
		return cmd_usage_error("%s", "--store, --target and --state-dir "
		    "are required");
	if (o.has_until_lsn && o.has_until_time)
		return cmd_usage_error("%s", "give --until-lsn or --until-time, "
		    "not both");
	return replay_main(&o);
}

const struct cmd_entry cmd_restore_entry = {
	.name = NULL,
	.synopsis =
"--store URL --target CONNINFO --state-dir DIR\n"
"                       [--follow] [--until-lsn LSN | --until-time TIMESTAMP]\n"
"                       [--jobs N] [--batch-txns N] [--truncate] [--key-file F]\n"
"                       [--id-mode preserve|remap] [--on-missing-ref error|null|skip]\n"
"                       [--filter FILE] [--skip-ddl LSN]...\n"
"                       [--log-format text|json] [--log-file F] [-v]\n"
"                       [--metrics-addr [HOST:]PORT] [--metrics-file F]\n",
	.help =
"  --store URL       a directory path or file:///abs/path\n"
"  --target CONNINFO the database to restore into (libpq connection string)\n"
"  --state-dir DIR   local LMDB state: marker and base progress\n"
"  --follow          keep applying new segments (a standby); SIGTERM stops\n"
"  --until-lsn LSN, --until-time TIMESTAMP\n"
"                    stop after the last transaction committed at or before\n"
"  --jobs N          parallel base-load workers (default 2); mirror:\n"
"                    parallel transfers (default 4)\n"
"  --batch-txns N    source transactions per target transaction (default 1000)\n"
"  --truncate        empty the restored tables of a non-empty target first\n"
"  --id-mode preserve|remap\n"
"                    remap: new keys from the target for tables whose single-\n"
"                    column key has a default; foreign keys follow (default\n"
"                    preserve)\n"
"  --filter FILE     elision filters: tables, rows, columns (logship-filter(5))\n"
"  --skip-ddl LSN    do not replay the DDL message at LSN (after running it\n"
"                    by hand, as the error that stopped the restore says)\n"
"  --on-missing-ref error|null|skip\n"
"                    remap: a reference to a key not in the ID map\n"
"  --key-file F      32-byte key (raw or 64 hex digits) for encrypted stores\n"
"  --metrics-addr [HOST:]PORT\n"
"                    serve Prometheus metrics there (HOST default 127.0.0.1)\n"
"  --metrics-file F  write the metrics to F every 5 s and at exit, atomically\n"
"                    (node_exporter textfile collector)\n",
	.exec = restore_exec,
};
