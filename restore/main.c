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
#include "store/store.h"

/* In the order of the usage. */
static const struct cmd_entry *const cmds[] = {
	&cmd_restore_entry, &cmd_idmap_entry, &cmd_ls_entry, &cmd_verify_entry,
	&cmd_cat_entry, &cmd_mirror_entry, NULL
};

/* Long options of the cloud stores, shared by every subcommand. */
#define STORE_LONGOPTS \
	{ "s3-endpoint", required_argument, NULL, 1001 }, \
	{ "s3-region", required_argument, NULL, 1002 }, \
	{ "s3-uri-style", required_argument, NULL, 1003 }, \
	{ "s3-ca-file", required_argument, NULL, 1004 }, \
	{ "s3-credentials-file", required_argument, NULL, 1005 }, \
	{ "azure-endpoint", required_argument, NULL, 1006 }, \
	{ "gcs-endpoint", required_argument, NULL, 1007 }

/* 1 if ch was a store option (and is now set), else 0. */
static int
store_option(struct store_opts *so, int ch, const char *arg)
{
	switch (ch) {
	case 1001: so->s3_endpoint = arg; return 1;
	case 1002: so->s3_region = arg; return 1;
	case 1003: so->s3_uri_style = arg; return 1;
	case 1004: so->s3_ca_file = arg; return 1;
	case 1005: so->s3_credentials_file = arg; return 1;
	case 1006: so->azure_endpoint = arg; return 1;
	case 1007: so->gcs_endpoint = arg; return 1;
	}
	return 0;
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
	fputs(
"  --s3-endpoint URL, --s3-region R, --s3-uri-style path|host, --s3-ca-file F,\n"
"  --s3-credentials-file F, --azure-endpoint URL, --gcs-endpoint URL\n"
"                    cloud store settings (credentials from the environment);\n"
"                    mirror applies them to both stores\n", fp);
}

int
cmd_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "logship-restore: ");
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

int
cmd_getopt(int argc, char **argv, const char *shortopts,
    const struct option *longopts, struct store_opts *so)
{
	static const struct option store_longopts[] = { STORE_LONGOPTS };
	struct option all[CMD_MAXOPTS + 8];
	size_t n, i;
	int ch;

	for (n = 0; longopts[n].name != NULL; n++) {
		if (n == CMD_MAXOPTS)
			abort();
		all[n] = longopts[n];
	}
	for (i = 0; i < sizeof(store_longopts) / sizeof(*store_longopts); i++)
		all[n++] = store_longopts[i];
	all[n] = (struct option){ NULL, 0, NULL, 0 };
	while ((ch = getopt_long(argc, argv, shortopts, all, NULL)) != -1 &&
	    store_option(so, ch, optarg))
		;
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
