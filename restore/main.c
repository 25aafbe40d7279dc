/*
 * logship-restore: replays a logship store into a PostgreSQL target,
 * inspects stores (ls, verify, cat) and copies them (mirror).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "inspect.h"
#include "mirror.h"
#include "replay.h"
#include "state.h"
#include "store/store.h"


/* Long options of the cloud stores, shared by every subcommand. */
#define STORE_LONGOPTS \
	{ "s3-endpoint", required_argument, NULL, 1001 }, \
	{ "s3-region", required_argument, NULL, 1002 }, \
	{ "s3-uri-style", required_argument, NULL, 1003 }, \
	{ "s3-ca-file", required_argument, NULL, 1004 }, \
	{ "s3-credentials-file", required_argument, NULL, 1005 }, \
	{ "azure-endpoint", required_argument, NULL, 1006 }, \
	{ "gcs-endpoint", required_argument, NULL, 1007 }

static struct store_opts store_opts;

/* 1 if ch was a store option (and is now set), else 0. */
static int
store_option(int ch, const char *arg)
{
	switch (ch) {
	case 1001: store_opts.s3_endpoint = arg; return 1;
	case 1002: store_opts.s3_region = arg; return 1;
	case 1003: store_opts.s3_uri_style = arg; return 1;
	case 1004: store_opts.s3_ca_file = arg; return 1;
	case 1005: store_opts.s3_credentials_file = arg; return 1;
	case 1006: store_opts.azure_endpoint = arg; return 1;
	case 1007: store_opts.gcs_endpoint = arg; return 1;
	}
	return 0;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: logship-restore --store URL --target CONNINFO --state-dir DIR\n"
"                       [--follow] [--until-lsn LSN | --until-time TIMESTAMP]\n"
"                       [--jobs N] [--batch-txns N] [--truncate] [--key-file F]\n"
"                       [--id-mode preserve|remap] [--on-missing-ref error|null|skip]\n"
"                       [--filter FILE] [--skip-ddl LSN]...\n"
"                       [--log-format text|json] [--log-file F] [-v]\n"
"       logship-restore idmap --state-dir DIR [--reverse] SCHEMA.TABLE KEY\n"
"       logship-restore idmap --state-dir DIR --count\n"
"       logship-restore ls --store URL [--key-file F] [--generation G]\n"
"       logship-restore verify --store URL [--key-file F] [--generation G]\n"
"       logship-restore cat --store URL [--key-file F] [--generation G]\n"
"                       [--format ndjson] [SEGNO...]\n"
"       logship-restore mirror --from URL --to URL [--key-file F] [--jobs N]\n"
"\n"
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
"  --generation G    only this generation (16 hex digits); cat: default last\n"
"  --format ndjson   cat output: a header line, then one JSON record a line\n"
"  --from URL, --to URL\n"
"                    mirror: copy each object --to lacks, verified first\n"
"                    (an encrypted store needs --key-file); logship.json last\n"
"  --s3-endpoint URL, --s3-region R, --s3-uri-style path|host, --s3-ca-file F,\n"
"  --s3-credentials-file F, --azure-endpoint URL, --gcs-endpoint URL\n"
"                    cloud store settings (credentials from the environment);\n"
"                    mirror applies them to both stores\n"
"  SEGNO             segment numbers, decimal or as 16 hex digits\n");
}

static int die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "logship-restore: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"logship-restore --help\".\n");
	return LS_EXIT_USAGE;
}

/* Decimal, or 16 hex digits as ls prints them. */
static int
parse_segno(const char *s, uint64_t *out)
{
	char *end;

	if (strlen(s) == 16)
		*out = strtoull(s, &end, 16);
	else
		*out = strtoull(s, &end, 10);
	return *s != '\0' && *end == '\0' && *out > 0 ? 0 : -1;
}

struct cli {
	const char	*cmd;
	const char	*store_url;
	const char	*key_file;
	const char	*generation;
	const char	*format;
};

static int
parse_args(int argc, char **argv, struct cli *c)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "generation", required_argument, NULL, 'g' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		STORE_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (store_option(ch, optarg))
			continue;
		switch (ch) {
		case 's': c->store_url = optarg; break;
		case 'k': c->key_file = optarg; break;
		case 'g': c->generation = optarg; break;
		case 'f': c->format = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return die_usage("bad option for %s", c->cmd);
		}
	}
	if (c->store_url == NULL)
		return die_usage("%s needs --store URL", c->cmd);
	if (c->format != NULL && strcmp(c->format, "ndjson") != 0)
		return die_usage("--format %s: only ndjson is supported", c->format);
	if (c->generation != NULL && strlen(c->generation) != 16)
		return die_usage("--generation %s: expected 16 hex digits",
		    c->generation);
	return 0;
}

static int
run_inspect(int argc, char **argv)
{
	struct cli c = { .cmd = argv[0] };
	struct inspect_opts o = { 0 };
	uint8_t key[32];
	char *err = NULL;
	int rc, i;

	if ((rc = parse_args(argc, argv, &c)) != 0)
		return rc;
	if (strcmp(c.cmd, "cat") != 0 && optind < argc)
		return die_usage("unexpected argument %s", argv[optind]);
	if (c.key_file != NULL) {
		if (ls_key_load(c.key_file, key, &err) != 0) {
			fprintf(stderr, "logship-restore: %s\n", err);
			free(err);
			return LS_EXIT_USAGE;
		}
		o.key = key;
	}
	if (store_open_opts(c.store_url, &store_opts, &o.store, &err) != 0) {
		fprintf(stderr, "logship-restore: %s\n", err);
		free(err);
		return LS_EXIT_USAGE;
	}
	o.generation = c.generation;
	o.nsegnos = (size_t)(argc - optind);
	o.segnos = calloc(o.nsegnos + 1, sizeof(*o.segnos));
	for (i = optind, rc = 0; i < argc && rc == 0; i++)
		if (parse_segno(argv[i], &o.segnos[i - optind]) != 0)
			rc = die_usage("%s is not a segment number", argv[i]);
	if (rc == 0)
		rc = strcmp(c.cmd, "ls") == 0 ? inspect_ls(&o) :
		    strcmp(c.cmd, "verify") == 0 ? inspect_verify(&o) :
		    inspect_cat(&o);
	free(o.segnos);
	store_free(o.store);
	return rc;
}

static int
int_arg(const char *opt, const char *v, int lo, int hi, int *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n < lo || n > hi)
		return die_usage("%s %s: expected a number from %d to %d", opt, v,
		    lo, hi);
	*out = (int)n;
	return 0;
}

static int
parse_until(struct replay_opts *o, int ch, const char *v)
{
	if (ch == 'L') {
		if (ls_lsn_parse(v, &o->until_lsn) != 0)
			return die_usage("--until-lsn %s: expected an LSN like "
			    "16/B374D848", v);
		o->has_until_lsn = true;
	} else {
		if (ls_parse_time(v, &o->until_time) != 0)
			return die_usage("--until-time %s: expected a timestamp like "
			    "2026-11-21 05:44:30+00", v);
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
		return die_usage("--id-mode %s: use preserve or remap", v);
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
	return die_usage("--on-missing-ref %s: use error, null or skip", v);
}

#define MAX_SKIP_DDL	64

static int
skip_ddl(struct replay_opts *o, uint64_t *skip, const char *v)
{
	if (o->nskip_ddl == MAX_SKIP_DDL)
		return die_usage("--skip-ddl: at most %d", MAX_SKIP_DDL);
	if (ls_lsn_parse(v, &skip[o->nskip_ddl]) != 0)
		return die_usage("--skip-ddl %s: expected an LSN like 16/B374D848",
		    v);
	o->nskip_ddl++;
	return 0;
}

static int
run_replay(int argc, char **argv)
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		STORE_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	static uint64_t skip[MAX_SKIP_DDL];
	struct replay_opts o = { .jobs = 2, .batch_txns = 1000,
	    .log_format = "text", .skip_ddl = skip };
	int ch, rc = 0;

	while (rc == 0 && (ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (store_option(ch, optarg))
			continue;
		switch (ch) {
		case 's': o.store_url = optarg; break;
		case 't': o.target = optarg; break;
		case 'd': o.state_dir = optarg; break;
		case 'F': o.follow = true; break;
		case 'L': case 'T': rc = parse_until(&o, ch, optarg); break;
		case 'j': rc = int_arg("--jobs", optarg, 1, 64, &o.jobs); break;
		case 'b': rc = int_arg("--batch-txns", optarg, 1, 1000000,
		    &o.batch_txns); break;
		case 'x': o.truncate = true; break;
		case 'I': rc = id_mode(&o, optarg); break;
		case 'P': o.filter_path = optarg; break;
		case 'M': rc = missing_ref(&o, optarg); break;
		case 'D': rc = skip_ddl(&o, skip, optarg); break;
		case 'k': o.key_file = optarg; break;
		case 'f': o.log_format = optarg; break;
		case 'l': o.log_file = optarg; break;
		case 'v': o.verbose++; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("logship-restore %s\n", PACKAGE_VERSION); exit(0);
		default: rc = die_usage("%s", "bad option");
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return die_usage("unexpected argument %s", argv[optind]);
	if (o.store_url == NULL || o.target == NULL || o.state_dir == NULL)
		return die_usage("%s", "--store, --target and --state-dir are "
		    "required");
	if (o.has_until_lsn && o.has_until_time)
		return die_usage("%s", "give --until-lsn or --until-time, not both");
	o.store_opts = &store_opts;
	return replay_main(&o);
}

/* idmap --state-dir DIR [--reverse] TABLE KEY */
static int
run_idmap(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "reverse", no_argument, NULL, 'r' },
		{ "count", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t n = 0;
	bool count = false;
	const char *dir = NULL;
	struct state *st = NULL;
	char *err = NULL, *out = NULL;
	bool reverse = false;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'd')
			dir = optarg;
		else if (ch == 'r')
			reverse = true;
		else if (ch == 'c')
			count = true;
		else
			return die_usage("%s", "bad option for idmap");
	}
	if (dir != NULL && count && optind == argc) {
		if ((rc = state_open_readonly(dir, &st, &err)) == 0 &&
		    (rc = state_map_count(st, &n, &err)) == 0)
			printf("%" PRIu64 "\n", n);
		else
			fprintf(stderr, "logship-restore: %s\n", err);
		state_close(st);
		free(err);
		return rc == 0 ? 0 : LS_EXIT_USAGE;
	}
	if (dir == NULL || argc - optind != 2)
		return die_usage("%s", "idmap needs --state-dir DIR TABLE KEY");
	if ((rc = state_open_readonly(dir, &st, &err)) == 0)
		rc = reverse ? state_map_reverse(st, argv[optind], argv[optind + 1],
		    &out, &err) : state_map_get(st, NULL, argv[optind],
		    argv[optind + 1], &out, &err);
	if (rc == 0)
		printf("%s\n", out);
	else if (rc == LS_ERR_NOTFOUND)
		fprintf(stderr, "logship-restore: %s key %s is not in the ID map\n",
		    argv[optind], argv[optind + 1]);
	else
		fprintf(stderr, "logship-restore: %s\n", err);
	state_close(st);
	free(out);
	free(err);
	return rc == 0 ? 0 : rc == LS_ERR_NOTFOUND ? 1 : LS_EXIT_USAGE;
}

/* Open url for mirror; 0, or a message and -1. */
static int
open_store(const char *url, struct store **out)
{
	char *err = NULL;

	if (store_open_opts(url, &store_opts, out, &err) == 0)
		return 0;
	fprintf(stderr, "logship-restore: %s\n", err);
	free(err);
	return -1;
}

static int
run_mirror(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		STORE_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct mirror_opts o = { .jobs = 4 };
	const char *from = NULL, *to = NULL, *key_file = NULL;
	uint8_t key[32];
	char *err = NULL;
	int ch, rc = 0;

	while (rc == 0 && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (store_option(ch, optarg))
			continue;
		switch (ch) {
		case 'F': from = optarg; break;
		case 'T': to = optarg; break;
		case 'k': key_file = optarg; break;
		case 'j': rc = int_arg("--jobs", optarg, 1, 64, &o.jobs); break;
		case 'h': usage(stdout); exit(0);
		default: rc = die_usage("%s", "bad option for mirror");
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return die_usage("unexpected argument %s", argv[optind]);
	if (from == NULL || to == NULL)
		return die_usage("%s", "mirror needs --from URL and --to URL");
	if (key_file != NULL && ls_key_load(key_file, key, &err) != 0) {
		fprintf(stderr, "logship-restore: %s\n", err);
		free(err);
		return LS_EXIT_USAGE;
	}
	o.key = key_file != NULL ? key : NULL;
	if (open_store(from, &o.src) != 0 || open_store(to, &o.dst) != 0)
		rc = LS_EXIT_USAGE;
	else
		rc = mirror_main(&o);
	store_free(o.src);
	store_free(o.dst);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "mirror") == 0)
		return run_mirror(argc - 1, argv + 1);
	if (argc > 1 && (strcmp(argv[1], "ls") == 0 ||
	    strcmp(argv[1], "verify") == 0 || strcmp(argv[1], "cat") == 0))
		return run_inspect(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "idmap") == 0)
		return run_idmap(argc - 1, argv + 1);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("logship-restore %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1 && argv[1][0] == '-')
		return run_replay(argc, argv);
	usage(stderr);
	return LS_EXIT_USAGE;
}
