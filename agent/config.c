/* config.c: the table of logship-agent settings (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conffile.h"
#include "common/error.h"
#include "common/secfile.h"
#include "common/util.h"
#include "config.h"
#include "pg/pgtool.h"
#include "store/store_opts.h"


enum ctype { C_STR, C_INT, C_SIZE, C_SECONDS, C_LSN, C_FLAG, C_BOOL,
    C_DURATION };

struct ckey {
	const char	*name;
	enum ctype	 type;
	size_t		 off;
	const char	*def;
	const char	*help;
};

#define F(m) offsetof(struct agent_config, m)
static const struct ckey agent_keys[] = {
	{ "source", C_STR, F(source), NULL,
	    "libpq connection string of the source (password: use PGPASSFILE or --config)" },
	{ "store", C_STR, F(store), NULL, "store URL: a directory or file:///abs/path" },
	{ "init", C_BOOL, F(init), NULL,
	    "create the store if it holds no logship.json (else refuse it)" },
	{ "slot", C_STR, F(slot), "logship", "logical replication slot name" },
	{ "publication", C_STR, F(publication), "logship", "publication name" },
	{ "tables", C_STR, F(tables), NULL,
	    "SCHEMA.TABLE,... to publish (default: FOR ALL TABLES)" },
	{ "ddl", C_BOOL, F(ddl), NULL,
	    "capture DDL on the source (installs event triggers; superuser)" },
	{ "ddl-uninstall", C_BOOL, F(ddl_uninstall), NULL,
	    "remove the DDL capture from --source and exit" },
	{ "drop-slot", C_BOOL, F(drop_slot), NULL,
	    "drop the store's replication slot and the publication on --source "
	    "(a retired store), then exit" },
	{ "new-base", C_BOOL, F(new_base), NULL,
	    "take a fresh base of the live store now (beside a running agent) and exit" },
	{ "base-interval", C_DURATION, F(base_interval_us), NULL,
	    "take a fresh base whenever the newest is older than DURATION (7d, 12h, 3600)" },
	{ "endpos", C_LSN, F(endpos_text), NULL,
	    "exit 0 once every transaction committed at or before LSN is stored" },
	{ "segment-max-txns", C_INT, F(segment_max_txns), "10000",
	    "close a segment after N transactions" },
	{ "segment-max-bytes", C_SIZE, F(segment_max_bytes), "64MB",
	    "close a segment after SIZE compressed bytes" },
	{ "flush-interval", C_SECONDS, F(flush_interval), "1",
	    "close a segment SECONDS after its first transaction (the RPO)" },
	{ "heartbeat-interval", C_SECONDS, F(heartbeat_interval), "10s",
	    "while the source is idle, record a heartbeat in the store this often" },
	{ "metrics-addr", C_STR, F(metrics_addr), NULL,
	    "serve Prometheus metrics on [HOST:]PORT (HOST default 127.0.0.1)" },
	{ "metrics-file", C_STR, F(metrics_file), NULL,
	    "write the metrics to FILE atomically every 5 s (node_exporter textfile)" },
	{ "jobs", C_INT, F(jobs), "2", "parallel workers for the base snapshot" },
	{ "compression", C_STR, F(compression_text), "zstd",
	    "segment and base compression: zlib or zstd, optionally :LEVEL "
	    "(zlib:1..9, zstd:1..19; default level 3)" },
	{ "key-file", C_STR, F(key_file), NULL,
	    "32-byte key (raw or 64 hex digits): encrypt segments and base" },
	{ "log-format", C_STR, F(log_format), "text", "text or json" },
	{ "log-file", C_STR, F(log_file), NULL, "log here instead of stderr (SIGHUP reopens)" },
	{ "spool-dir", C_STR, F(spool_dir), NULL,
	    "local directory for temp files (default $TMPDIR or /tmp)" },
	{ "config", C_STR, F(config_file), NULL, "read settings from FILE (key = value)" },
	{ "verbose", C_FLAG, F(verbose), "0", "more logging (repeat for more)" },
};
#define NAGENT (sizeof(agent_keys) / sizeof(agent_keys[0]))
#define NKEYS (NAGENT + STORE_OPTS_N)

/* The agent's own keys, then every store option: filled by keys_init(). */
static struct ckey keys[NKEYS];

static void
keys_init(void)
{
	const struct store_opts_key *k;
	size_t i;

	memcpy(keys, agent_keys, sizeof(agent_keys));
	for (i = 0; i < STORE_OPTS_N; i++) {
		k = &store_opts_keys[i];
		keys[NAGENT + i] = (struct ckey){ k->name, C_STR,
		    F(store_opts) + k->off, NULL, k->help };
	}
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "logship-agent: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"logship-agent --help\".\n");
	exit(LS_EXIT_USAGE);
}

static void
help(void)
{
	size_t i;

	printf("usage: logship-agent --source CONNINFO --store URL [options]\n\n"
	    "Streams a PostgreSQL database's committed transactions into a "
	    "logship store.\n\n");
	for (i = 0; i < NKEYS; i++)
		printf("  --%-20s %s%s%s%s\n", keys[i].name, keys[i].help,
		    keys[i].def ? " (default " : "", keys[i].def ? keys[i].def : "",
		    keys[i].def ? ")" : "");
	printf("  -v, --help, --version\n\nExit: 0 done or SIGTERM, 1 error, "
	    "2 usage.  See logship-agent(1).\n\n"
	    "logship-agent status [--format text|json] [--warn DURATION] "
	    "[--crit DURATION] [options]\n"
	    "  how current the store is (the slot, the newest segment and "
	    "heartbeat);\n  exit 0 ok, 1 lag over --warn, 2 over --crit or an "
	    "error\n");
}

/* "--key value" on the command line, "key = value" in a file. */
static void __attribute__((noreturn))
bad_value(const struct ckey *k, const char *v, const char *where,
    const char *want)
{
	if (strcmp(where, "command line") == 0 || strcmp(where, "default") == 0)
		usage_error("%s: --%s %s: %s", where, k->name, v, want);
	usage_error("%s: %s = %s: %s", where, k->name, v, want);
}

/* Only digits: no sign, space or base prefix. */
static bool
all_digits(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v != '\0'; v++)
		if (!isdigit((unsigned char)*v))
			return false;
	return true;
}

/* Set key k from text; "where" names the source for messages. */
static void
set_value(struct agent_config *c, const struct ckey *k, const char *v,
    const char *where)
{
	char *p = (char *)c + k->off, *end;
	int64_t n;
	double d;
	uint64_t lsn;

	switch (k->type) {
	case C_STR:
		free(*(char **)p);
		*(char **)p = strdup(v);
		break;
	case C_LSN:
		if (ls_lsn_parse(v, &lsn) != 0)
			bad_value(k, v, where, "expected an LSN like 16/B374D848");
		free(*(char **)p);
		*(char **)p = strdup(v);
		c->endpos = lsn;
		c->has_endpos = true;
		break;
	case C_INT:
	case C_FLAG:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!all_digits(v) || errno != 0)
			bad_value(k, v, where, "expected a whole number (digits "
			    "only)");
		*(int64_t *)p = n;
		break;
	case C_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
		    strcmp(v, "on") == 0 || strcmp(v, "1") == 0)
			*(bool *)p = true;
		else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
		    strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
			*(bool *)p = false;
		else
			bad_value(k, v, where, "expected true or false");
		break;
	case C_SIZE:
		if (ls_parse_size(v, &n) != 0 || n <= 0)
			bad_value(k, v, where, "expected a size like 64MB: digits, "
			    "then B, kB, MB, GB or KiB, MiB, GiB right after them "
			    "(no space)");
		*(int64_t *)p = n;
		break;
	case C_DURATION:
		if (ls_parse_duration_us(v, &n) != 0)
			bad_value(k, v, where, "expected a duration like 7d: "
			    "seconds, or a number with s, min, h, d or w right "
			    "after it (no space)");
		*(int64_t *)p = n;
		break;
	case C_SECONDS:
		if (ls_parse_duration(v, &d) != 0 || d <= 0 || d > 86400)
			bad_value(k, v, where, "expected a duration like 1.5 or "
			    "500ms, 30s, 5min, 1h (a unit right after the number, "
			    "no space; 0 < duration <= 1 day)");
		*(double *)p = d;
		break;
	}
}

static const struct ckey *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

struct file_ctx {
	struct agent_config	*c;
	const bool		*set;	/* keys given on argv: they win */
	bool			 secret;	/* the file holds a password */
};

static int
file_setting(void *arg, const char *k, const char *v, const char *where)
{
	struct file_ctx *x = arg;
	const struct ckey *key;

	if ((key = find_key(k)) == NULL || strcmp(k, "config") == 0 ||
	    strcmp(k, "ddl-uninstall") == 0 || strcmp(k, "drop-slot") == 0)
		usage_error("%s: unknown setting \"%s\"", where, k);
	if (strcmp(k, "source") == 0 && pgtool_conninfo_has_secret(v))
		x->secret = true;
	if (!x->set[key - keys])
		set_value(x->c, key, v, where);
	return 0;
}

/* "key = value" lines (conffile.h).  Lines set[] on argv win. */
static void
read_file(struct agent_config *c, const char *path, const bool *set)
{
	struct file_ctx x = { c, set, false };
	char *err = NULL;

	if (conffile_read(path, file_setting, &x, &err) != 0)
		usage_error("%s", err);
	if (x.secret && secfile_check(path, "config file (it holds the "
	    "source's password)", &err) != 0)
		usage_error("%s", err);
}

static void
set_defaults(struct agent_config *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].def != NULL)
			set_value(c, &keys[i], keys[i].def, "default");
}

/* Every --tables item is schema.table: the publication and the base copy
 * must name the same tables. */
static void
check_tables(const char *tables)
{
	const char *p = tables, *comma, *dot;

	while (*p != '\0') {
		comma = strchr(p, ',');
		dot = strchr(p, '.');
		if (dot == NULL || (comma != NULL && dot > comma) || dot == p)
			usage_error("--tables %s: write each table as schema.table",
			    tables);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

static void
check_required(struct agent_config *c)
{
	char *err = NULL;

	if (c->source == NULL)
		usage_error("--source CONNINFO is required");
	if (c->ddl_uninstall)
		return;		/* a command of its own: needs nothing else */
	if (c->store == NULL)
		usage_error("--store URL is required");
	if (c->drop_slot && c->has_endpos)
		usage_error("--drop-slot is a command of its own: no --endpos");
	if (c->jobs < 1 || c->jobs > 64)
		usage_error("--jobs %lld: expected 1..64", (long long)c->jobs);
	if (c->segment_max_txns < 1)
		usage_error("--segment-max-txns must be at least 1");
	if (strcmp(c->log_format, "text") != 0 && strcmp(c->log_format, "json") != 0)
		usage_error("--log-format %s: use text or json", c->log_format);
	if (c->tables != NULL)
		check_tables(c->tables);
	if (compression_parse(c->compression_text, &c->comp, &err) != 0) {
		fprintf(stderr, "logship-agent: %s\n", err);
		free(err);
		fprintf(stderr, "Try \"logship-agent --help\".\n");
		exit(LS_EXIT_USAGE);
	}
}

void
config_parse(int argc, char **argv, struct agent_config *c)
{
	struct option opts[NKEYS + 3];
	bool set[NKEYS] = { false };
	char *source_arg = NULL;
	size_t i;
	int ch, idx;

	keys_init();
	memset(c, 0, sizeof(*c));
	set_defaults(c);
	for (i = 0; i < NKEYS; i++)
		opts[i] = (struct option){ keys[i].name,
		    keys[i].type == C_FLAG || keys[i].type == C_BOOL ?
		    no_argument : required_argument, NULL, 0 };
	opts[NKEYS] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[NKEYS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	opts[NKEYS + 2] = (struct option){ NULL, 0, NULL, 0 };
	while ((ch = getopt_long(argc, argv, "vh", opts, &idx)) != -1) {
		if (ch == 'h') {
			help();
			exit(0);
		}
		if (ch == 'V') {
			printf("logship-agent %s\n", PACKAGE_VERSION);
			exit(0);
		}
		if (ch == 'v') {
			c->verbose++;
			set[find_key("verbose") - keys] = true;
			continue;
		}
		if (ch != 0)
			usage_error("bad option");
		if (keys[idx].type == C_FLAG)
			c->verbose++;
		else if (keys[idx].type == C_BOOL)
			*(bool *)((char *)c + keys[idx].off) = true;
		else
			set_value(c, &keys[idx], optarg, "command line");
		set[idx] = true;
		if (strcmp(keys[idx].name, "source") == 0) {
			c->source_on_argv = true;
			source_arg = optarg;
		}
	}
	/* ps shows argv: the copy in c->source is all we need */
	if (source_arg != NULL)
		c->source_scrubbed = pgtool_conninfo_scrub(source_arg);
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if (c->config_file != NULL)
		read_file(c, c->config_file, set);
	check_required(c);
}

void
config_free(struct agent_config *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].type == C_STR || keys[i].type == C_LSN)
			free(*(char **)((char *)c + keys[i].off));
}
