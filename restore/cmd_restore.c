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
#include "common/conffile.h"
#include "common/error.h"
#include "common/secfile.h"
#include "common/util.h"
#include "pg/pgtool.h"
#include "replay.h"
#include "store/store.h"
#include "store/store_opts.h"

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

static const struct option restore_opts[] = {
	{ "store", required_argument, NULL, 's' },
	{ "target", required_argument, NULL, 't' },
	{ "state-dir", required_argument, NULL, 'd' },
	{ "follow", no_argument, NULL, 'F' },
	{ "until-lsn", required_argument, NULL, 'L' },
	{ "until-time", required_argument, NULL, 'T' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "batch-txns", required_argument, NULL, 'b' },
	{ "apply-workers", required_argument, NULL, 'a' },
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
	{ "config", required_argument, NULL, 'C' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* The options a config file may not set. */
#define NOT_IN_FILE	"ChV"

struct parse {
	struct replay_opts	 o;
	struct store_opts	 so;
	uint64_t		*skip;
	const char		*config;
	char			 set[128];	/* option chars given on argv */
	char			**kept;		/* config file values */
	size_t			 nkept;
	bool			 secret;	/* the file holds a password */
};

/* One option (ch, its value v, which must outlive the restore). */
static int
restore_opt(struct parse *p, int ch, const char *v)
{
	struct replay_opts *o = &p->o;

	switch (ch) {
	case 's': o->store_url = v; return 0;
	case 't': o->target = v; return 0;
	case 'd': o->state_dir = v; return 0;
	case 'F': o->follow = true; return 0;
	case 'L': case 'T': return parse_until(o, ch, v);
	case 'j': return cmd_int_arg("--jobs", v, 1, 64, &o->jobs);
	case 'b': return cmd_int_arg("--batch-txns", v, 1, 1000000,
	    &o->batch_txns);
	case 'a': return cmd_int_arg("--apply-workers", v, 1, 16,
	    &o->apply_workers);
	case 'x': o->truncate = true; return 0;
	case 'I': return id_mode(o, v);
	case 'P': o->filter_path = v; return 0;
	case 'M': return missing_ref(o, v);
	case 'D': return skip_ddl(o, p->skip, v);
	case 'k': o->key_file = v; return 0;
	case 'f': o->log_format = v; return 0;
	case 'l': o->log_file = v; return 0;
	case 'm': o->metrics_addr = v; return 0;
	case 'O': o->metrics_file = v; return 0;
	case 'C': p->config = v; return 0;
	case 'v': o->verbose++; return 0;
	case 'h': cmd_usage(stdout); exit(0);
	case 'V': printf("logship-restore %s\n", PACKAGE_VERSION); exit(0);
	default: return cmd_usage_error("%s", "bad option");
	}
}

/* Keep a copy of a config file value for as long as the restore runs. */
static const char *
keep(struct parse *p, const char *v)
{
	char **bigger, *copy;

	if ((copy = strdup(v)) == NULL || (bigger = realloc(p->kept,
	    (p->nkept + 1) * sizeof(*bigger))) == NULL) {
		free(copy);
		return NULL;
	}
	p->kept = bigger;
	return p->kept[p->nkept++] = copy;
}

/* A "key = value" line of --config: the option of that name. */
static int
file_setting(void *arg, const char *k, const char *v, const char *where)
{
	struct parse *p = arg;
	const struct option *opt;
	const char *copy;
	size_t i;
	int rc = 0;

	for (i = 0; i < STORE_OPTS_N; i++)
		if (strcmp(store_opts_keys[i].name, k) == 0)
			break;
	for (opt = restore_opts; opt->name != NULL; opt++)
		if (strcmp(opt->name, k) == 0 &&
		    strchr(NOT_IN_FILE, opt->val) == NULL)
			break;
	if (opt->name == NULL && i == STORE_OPTS_N)
		return cmd_usage_error("%s: unknown setting \"%s\"", where, k);
	if (opt->name != NULL && opt->val == 't' &&
	    pgtool_conninfo_has_secret(v))
		p->secret = true;
	if (opt->name != NULL && p->set[opt->val & 127])
		return 0;		/* the command line wins */
	if ((copy = keep(p, v)) == NULL)
		return cmd_usage_error("%s", "out of memory");
	cmd_where = where;	/* usage errors name the line */
	if (opt->name == NULL) {
		if (*(const char **)((char *)&p->so + store_opts_keys[i].off) ==
		    NULL)	/* the command line wins */
			store_opts_set(&p->so, &store_opts_keys[i], copy);
	} else if (opt->has_arg == no_argument) {
		if (strcmp(v, "true") == 0)
			rc = restore_opt(p, opt->val, NULL);
		else if (strcmp(v, "false") != 0)
			rc = cmd_usage_error("%s = %s: expected true or false",
			    k, v);
	} else
		rc = restore_opt(p, opt->val, copy);
	cmd_where = NULL;
	return rc;
}

static int
read_config(struct parse *p)
{
	char *err = NULL;
	int rc = conffile_read(p->config, file_setting, p, &err);

	if (rc == 0 && p->secret && secfile_check(p->config, "config file (it holds the target's "
	    "password)", &err) != 0)
		rc = LS_ERR_INVALID;
	if (err != NULL) {
		rc = cmd_usage_error("%s", err);
		free(err);
	}
	return rc;
}

static int
restore_exec(int argc, char **argv)
{
	static uint64_t skip[MAX_SKIP_DDL];
	struct parse p = { .o = { .jobs = 2, .batch_txns = 1000,
	    .apply_workers = 2,
	    .log_format = "text", .skip_ddl = skip }, .skip = skip };
	size_t i;
	int ch, rc = 0;

	p.o.store_opts = &p.so;
	while (rc == 0 && (ch = cmd_getopt(argc, argv, "vh", restore_opts,
	    &p.so)) != -1) {
		rc = restore_opt(&p, ch, optarg);
		p.set[ch & 127] = 1;
	}
	if (rc == 0 && optind < argc)
		rc = cmd_usage_error("unexpected argument %s", argv[optind]);
	if (rc == 0 && p.config != NULL)
		rc = read_config(&p);
	if (rc == 0 && (p.o.store_url == NULL || p.o.target == NULL ||
	    p.o.state_dir == NULL))
		rc = cmd_usage_error("%s", "--store, --target and --state-dir "
		    "are required (on the command line or in --config)");
	if (rc == 0 && p.o.has_until_lsn && p.o.has_until_time)
		rc = cmd_usage_error("%s", "give --until-lsn or --until-time, "
		    "not both");
	if (rc == 0)
		rc = replay_main(&p.o);
	for (i = 0; i < p.nkept; i++)
		free(p.kept[i]);
	free(p.kept);
	return rc;
}

const struct cmd_entry cmd_restore_entry = {
	.name = NULL,
	.synopsis =
"--store URL --target CONNINFO --state-dir DIR\n"
"                       [--follow] [--until-lsn LSN | --until-time TIMESTAMP]\n"
"                       [--jobs N] [--batch-txns N] [--apply-workers N]\n"
"                       [--truncate] [--key-file F]\n"
"                       [--id-mode preserve|remap] [--on-missing-ref error|null|skip]\n"
"                       [--filter FILE] [--skip-ddl LSN]...\n"
"                       [--log-format text|json] [--log-file F] [-v]\n"
"                       [--metrics-addr [HOST:]PORT] [--metrics-file F]\n"
"                       [--config FILE]\n",
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
"  --apply-workers N target connections applying segments at once, each\n"
"                    committing in source order (default 2; 1: serial)\n"
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
"                    (node_exporter textfile collector)\n"
"  --config FILE     read these settings from FILE, key = value a line, the\n"
"                    option names without dashes (logship.conf(5)); the\n"
"                    command line wins\n",
	.exec = restore_exec,
};
