/*
 * cmd_idmap.c: logship-restore idmap, lookups in the ID map of a restore's
 * state directory (state.c).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "common/error.h"
#include "state.h"

/* idmap --state-dir DIR [--reverse] TABLE KEY */
static int
idmap_exec(int argc, char **argv)
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
			return cmd_usage_error("%s", "bad option for idmap");
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
		return cmd_usage_error("%s", "idmap needs --state-dir DIR TABLE KEY");
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

const struct cmd_entry cmd_idmap_entry = {
	.name = "idmap",
	.synopsis =
"idmap --state-dir DIR [--reverse] SCHEMA.TABLE KEY\n"
"       logship-restore idmap --state-dir DIR --count\n",
	.exec = idmap_exec,
};
