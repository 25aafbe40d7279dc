/*
 * logship-restore: replays a logship store into a PostgreSQL target,
 * inspects stores (ls, verify, cat) and copies them (mirror).
 *
 * main() picks the subcommand by the first argument (an option: the
 * restore itself); the cmd_*.c files parse their own options.  What they
 * share is here: the usage, usage errors, the cloud store options and
 * opening a store.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common/error.h"
#include "common/util.h"
#include "pg/pgtool.h"
#include "store/store.h"
#include "store/store_opts.h"

/* In the order of the usage. */
static const struct cmd_entry *const cmds[] = {
	&cmd_restore_entry, &cmd_idmap_entry, &cmd_ls_entry, &cmd_verify_entry,
	&cmd_cat_entry, &cmd_mirror_entry, &cmd_expire_entry, &cmd_status_entry,
	NULL
};

/* getopt_long's value for every store option; its index says which. */
#define STORE_OPT	0x100

/* The store options' lines, from the table every program shares. */
static void
usage_store_opts(FILE *fp)
{
	const struct store_opts_key *k;
	int n;

	fputs("  cloud store settings (credentials from the environment; "
	    "mirror applies\n  them to both stores):\n", fp);
	for (k = store_opts_keys; k < store_opts_keys + STORE_OPTS_N; k++) {
		n = fprintf(fp, "  --%s %s", k->name, k->arg);
		if (n >= 20) {		/* too long: the help on a line of its own */
			fputc('\n', fp);
			n = 0;
		}
		fprintf(fp, "%*s%s\n", 20 - n, "", k->help);
	}
}

void
cmd_usage(FILE *fp)
{
	size_t i;

	for (i = 0; cmds[i] != NULL; i++)
		fprintf(fp, "%slogship-restore %s", i == 0 ? "usage: " :
		    "       ", cmds[i]->synopsis);
	fputc('\n', fp);
	for (i = 0; cmds[i] != NULL; i++)
		if (cmds[i]->help != NULL)
			fputs(cmds[i]->help, fp);
	usage_store_opts(fp);
}

const char *cmd_where;

int
cmd_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "logship-restore: ");
	if (cmd_where != NULL)
		fprintf(stderr, "%s: ", cmd_where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"logship-restore --help\".\n");
	return LS_EXIT_USAGE;
}

int
cmd_int_arg(const char *opt, const char *v, int lo, int hi, int *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n < lo || n > hi)
		return cmd_usage_error("%s %s: expected a number from %d to %d",
		    opt, v, lo, hi);
	*out = (int)n;
	return 0;
}

/* The index in opts of the long option whose value is ch, or -1. */
static int
long_index(const struct option *opts, int ch)
{
	int i;

	for (i = 0; opts[i].name != NULL; i++)
		if (opts[i].flag == NULL && opts[i].val == ch)
			return i;
	return -1;
}

/*
 * A conninfo given on our command line: if it holds a password, a copy is
 * kept for the run and the original is overwritten, so that ps and
 * /proc/PID/cmdline stop showing it.  The last --target wins, so only the
 * last copy is kept.
 */
static char *
scrub_conninfo(char *arg)
{
	static char *kept;
	char *copy;

	if (!pgtool_conninfo_has_secret(arg) || (copy = strdup(arg)) == NULL)
		return arg;
	free(kept);
	kept = copy;
	pgtool_conninfo_scrub(arg);
	fprintf(stderr, "logship-restore: warning: --target holds a password, "
	    "which other users could see in ps until it was overwritten; put "
	    "it in a password file (PGPASSFILE) or the --config file\n");
	return copy;
}

int
cmd_getopt(int argc, char **argv, const char *shortopts,
    const struct option *longopts, struct store_opts *so)
{
	struct option all[CMD_MAXOPTS + STORE_OPTS_N + 1];
	size_t n, i;
	int ch, idx;

	for (n = 0; longopts[n].name != NULL; n++) {
		if (n == CMD_MAXOPTS)
			abort();
		all[n] = longopts[n];
	}
	for (i = 0; i < STORE_OPTS_N; i++)
		all[n + i] = (struct option){ store_opts_keys[i].name,
		    required_argument, NULL, STORE_OPT };
	all[n + i] = (struct option){ NULL, 0, NULL, 0 };
	while ((ch = getopt_long(argc, argv, shortopts, all, &idx)) ==
	    STORE_OPT)
		store_opts_set(so, &store_opts_keys[idx - (int)n], optarg);
	if (ch > 0 && ch != '?' && optarg != NULL && (idx = long_index(all,
	    ch)) >= 0 && strcmp(all[idx].name, "target") == 0)
		optarg = scrub_conninfo(optarg);
	return ch;
}

int
cmd_key_load(const char *path, uint8_t key[32])
{
	char *err = NULL;

	if (path == NULL || ls_key_load(path, key, &err) == 0)
		return 0;
	fprintf(stderr, "logship-restore: %s\n", err);
	free(err);
	return LS_EXIT_USAGE;
}

int
cmd_store_open(const char *url, const struct store_opts *so,
    struct store **out)
{
	char *err = NULL;

	if (store_open_opts(url, so, out, &err) == 0)
		return 0;
	fprintf(stderr, "logship-restore: %s\n", err);
	free(err);
	return LS_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	size_t i;

	for (i = 0; argc > 1 && cmds[i] != NULL; i++)
		if (cmds[i]->name != NULL && strcmp(argv[1], cmds[i]->name) == 0)
			return cmds[i]->exec(argc - 1, argv + 1);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		cmd_usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("logship-restore %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1 && argv[1][0] == '-')
		return cmd_restore_entry.exec(argc, argv);
	cmd_usage(stderr);
	return LS_EXIT_USAGE;
}
