/*
 * cmd_inspect.c: logship-restore ls, verify and cat, which read a store
 * (inspect.c).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "inspect.h"
#include "store/store.h"

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
parse_args(int argc, char **argv, struct cli *c, struct store_opts *so)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "generation", required_argument, NULL, 'g' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = cmd_getopt(argc, argv, "h", opts, so)) != -1) {
		switch (ch) {
		case 's': c->store_url = optarg; break;
		case 'k': c->key_file = optarg; break;
		case 'g': c->generation = optarg; break;
		case 'f': c->format = optarg; break;
		case 'h': cmd_usage(stdout); exit(0);
		default: return cmd_usage_error("bad option for %s", c->cmd);
		}
	}
	if (c->store_url == NULL)
		return cmd_usage_error("%s needs --store URL", c->cmd);
	if (c->format != NULL && strcmp(c->format, "ndjson") != 0)
		return cmd_usage_error("--format %s: only ndjson is supported",
		    c->format);
	if (c->generation != NULL && strlen(c->generation) != 16)
		return cmd_usage_error("--generation %s: expected 16 hex digits",
		    c->generation);
	return 0;
}

/* ls, verify and cat: argv[0] says which. */
static int
inspect_exec(int argc, char **argv)
{
	struct cli c = { .cmd = argv[0] };
	struct store_opts so = { 0 };
	struct inspect_opts o = { 0 };
	uint8_t key[32];
	int rc, i;

	if ((rc = parse_args(argc, argv, &c, &so)) != 0)
		return rc;
	if (strcmp(c.cmd, "cat") != 0 && optind < argc)
		return cmd_usage_error("unexpected argument %s", argv[optind]);
	if ((rc = cmd_key_load(c.key_file, key)) != 0 ||
	    (rc = cmd_store_open(c.store_url, &so, &o.store)) != 0)
		return rc;
	o.key = c.key_file != NULL ? key : NULL;
	o.generation = c.generation;
	o.nsegnos = (size_t)(argc - optind);
	o.segnos = calloc(o.nsegnos + 1, sizeof(*o.segnos));
	for (i = optind, rc = 0; i < argc && rc == 0; i++)
		if (parse_segno(argv[i], &o.segnos[i - optind]) != 0)
			rc = cmd_usage_error("%s is not a segment number",
			    argv[i]);
	if (rc == 0)
		rc = strcmp(c.cmd, "ls") == 0 ? inspect_ls(&o) :
		    strcmp(c.cmd, "verify") == 0 ? inspect_verify(&o) :
		    inspect_cat(&o);
	free(o.segnos);
	store_free(o.store);
	return rc;
}

const struct cmd_entry cmd_ls_entry = {
	.name = "ls",
	.synopsis = "ls --store URL [--key-file F] [--generation G]\n",
	.help =
"  --generation G    only this generation (16 hex digits); cat: default last\n"
"  --format ndjson   cat output: a header line, then one JSON record a line\n"
"  SEGNO             segment numbers, decimal or as 16 hex digits\n",
	.exec = inspect_exec,
};

const struct cmd_entry cmd_verify_entry = {
	.name = "verify",
	.synopsis = "verify --store URL [--key-file F] [--generation G]\n",
	.exec = inspect_exec,
};

const struct cmd_entry cmd_cat_entry = {
	.name = "cat",
	.synopsis = "cat --store URL [--key-file F] [--generation G]\n"
"                       [--format ndjson] [SEGNO...]\n",
	.exec = inspect_exec,
};
