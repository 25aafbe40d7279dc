/* config.c: the table of logship-agent settings (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "config.h"
#include "store/store_opts.h"


enum ctype { C_STR, C_INT, C_SIZE, C_SECONDS, C_DURATION, C_LSN, C_FLAG,
    C_BOOL };

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
	{ "endpos", C_LSN, F(endpos_text), NULL,
	    "exit 0 once every transaction committed at or before LSN is stored" },
	{ "segment-max-txns", C_INT, F(segment_max_txns), "10000",
	    "close a segment after N transactions" },
	{ "segment-max-bytes", C_SIZE, F(segment_max_bytes), "64MB",
	    "close a segment after SIZE compressed bytes" },
	{ "flush-interval", C_SECONDS, F(flush_interval), "1",
	    "close a segment SECONDS after its first transaction (the RPO)" },
	{ "heartbeat-interval", C_DURATION, F(heartbeat_interval), "10s",
	    "while the source is idle, record a heartbeat in the store this often" },
	{ "metrics-addr", C_STR, F(metrics_addr), NULL,
	    "serve Prometheus metrics on [HOST:]PORT (HOST default 127.0.0.1)" },
	{ "metrics-file", C_STR, F(metrics_file), NULL,
	    "write the metrics to FILE atomically every 5 s (node_exporter textfile)" },
	{ "jobs", C_INT, F(jobs), "2", "parallel workers for the base snapshot" },
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

int
config_parse_size(const char *s, int64_t *out)
{
	char *end;
	double v;
	int64_t mult = 1;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || v < 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mult = 1024; end++; break;
	case 'M': mult = 1024 * 1024; end++; break;
	case 'G': mult = 1024LL * 1024 * 1024; end++; break;
	case 'B': break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	*out = (int64_t)(v * (double)mult);
	return 0;
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
			usage_error("%s: --%s %s: expected an LSN like 16/B374D848",
			    where, k->name, v);
		free(*(char **)p);
		*(char **)p = strdup(v);
		c->endpos = lsn;
		c->has_endpos = true;
		break;
	case C_INT:
	case C_FLAG:
		n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || n < 0)
			usage_error("%s: --%s %s: expected a whole number", where,
			    k->name, v);
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
			usage_error("%s: %s = %s: expected true or false", where,
			    k->name, v);
		break;
	case C_SIZE:
		if (config_parse_size(v, &n) != 0 || n <= 0)
			usage_error("%s: --%s %s: expected a size like 64MB", where,
			    k->name, v);
		*(int64_t *)p = n;
		break;
	case C_SECONDS:
		d = strtod(v, &end);
		if (*v == '\0' || *end != '\0' || d <= 0 || d > 86400)
			usage_error("%s: --%s %s: expected seconds (0 < s <= 86400)",
			    where, k->name, v);
		*(double *)p = d;
		break;
	case C_DURATION:
		if (ls_parse_duration(v, &d) != 0 || d <= 0 || d > 86400)
			usage_error("%s: --%s %s: expected a duration like 10s, "
			    "500ms or 5m (0 < d <= 1d)", where, k->name, v);
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

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* "key = value" lines; values may be 'single-quoted'.  Lines set[] on argv win. */
static void
read_file(struct agent_config *c, const char *path, const bool *set)
{
	char line[4096], where[4200], *eq, *k, *v;
	const struct ckey *key;
	FILE *fp = fopen(path, "r");
	int lineno = 0;

	if (fp == NULL)
		usage_error("config file %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (*(k = trim(line)) == '#' || *k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL)
			usage_error("%s: expected key = value", where);
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		if (*v == '\'' && strlen(v) >= 2 && v[strlen(v) - 1] == '\'') {
			v[strlen(v) - 1] = '\0';
			v++;
		}
		if ((key = find_key(k)) == NULL || strcmp(k, "config") == 0 ||
		    strcmp(k, "ddl-uninstall") == 0)
			usage_error("%s: unknown setting \"%s\"", where, k);
		if (!set[key - keys])
			set_value(c, key, v, where);
	}
	fclose(fp);
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
check_required(const struct agent_config *c)
{
	if (c->source == NULL)
		usage_error("--source CONNINFO is required");
	if (c->ddl_uninstall)
		return;		/* a command of its own: needs nothing else */
	if (c->store == NULL)
		usage_error("--store URL is required");
	if (c->jobs < 1 || c->jobs > 64)
		usage_error("--jobs %lld: expected 1..64", (long long)c->jobs);
	if (c->segment_max_txns < 1)
		usage_error("--segment-max-txns must be at least 1");
	if (strcmp(c->log_format, "text") != 0 && strcmp(c->log_format, "json") != 0)
		usage_error("--log-format %s: use text or json", c->log_format);
	if (c->tables != NULL)
		check_tables(c->tables);
}

void
config_parse(int argc, char **argv, struct agent_config *c)
{
	struct option opts[NKEYS + 3];
	bool set[NKEYS] = { false };
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
		if (strcmp(keys[idx].name, "source") == 0)
			c->source_on_argv = true;
	}
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
