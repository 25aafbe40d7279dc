/*
 * cmd_mirror.c: logship-restore mirror, which copies one store into
 * another (mirror.c).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "mirror.h"
#include "store/store.h"

static int
mirror_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct store_opts so = { 0 };
	struct mirror_opts o = { .jobs = 4 };
	const char *from = NULL, *to = NULL, *key_file = NULL;
	uint8_t key[32];
	int ch, rc = 0;

	while (rc == 0 &&
	    (ch = cmd_getopt(argc, argv, "h", opts, &so)) != -1) {
		switch (ch) {
		case 'F': from = optarg; break;
		case 'T': to = optarg; break;
		case 'k': key_file = optarg; break;
		case 'j': rc = cmd_int_arg("--jobs", optarg, 1, 64, &o.jobs); break;
		case 'h': cmd_usage(stdout); exit(0);
		default: rc = cmd_usage_error("%s", "bad option for mirror");
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return cmd_usage_error("unexpected argument %s", argv[optind]);
	if (from == NULL || to == NULL)
		return cmd_usage_error("%s", "mirror needs --from URL and --to URL");
	if ((rc = cmd_key_load(key_file, key)) != 0)
		return rc;
	o.key = key_file != NULL ? key : NULL;
	if ((rc = cmd_store_open(from, &so, &o.src)) == 0 &&
	    (rc = cmd_store_open(to, &so, &o.dst)) == 0)
		rc = mirror_main(&o);
	store_free(o.src);
	store_free(o.dst);
	return rc;
}

const struct cmd_entry cmd_mirror_entry = {
	.name = "mirror",
	.synopsis = "mirror --from URL --to URL [--key-file F] [--jobs N]\n",
	.help =
"  --from URL, --to URL\n"
"                    mirror: copy each object --to lacks, verified first\n"
"                    (an encrypted store needs --key-file); logship.json last\n",
	.exec = mirror_exec,
};
