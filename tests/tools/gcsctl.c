/*
 * gcsctl: drive the GCS backend (store_gcs_open, not store_open) one call
 * at a time, for the tests (not installed).
 *
 *	gcsctl [-e ENDPOINT] [-t THRESHOLD] [-p PART] [-d DEADLINE_S]
 *	    gcs://BUCKET[/PREFIX] COMMAND ARGS...
 *
 *	put KEY FILE		put-new KEY FILE (put_if_absent)
 *	get KEY			(to stdout)
 *	range KEY OFF LEN	(to stdout)
 *	head KEY		(prints the size)
 *	ls PREFIX AFTER MAX	(one "key size" line each, then "truncated")
 *	del KEY
 *	race N KEY FILE		N threads put_if_absent KEY at once; prints
 *				"won W exists E failed F"
 *
 * On failure: "gcsctl: <code>: <message>" on stderr and exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "store/http.h"
#include "store/store_int.h"

static struct store *st;

static int
fail(int r, char *err)
{
	fprintf(stderr, "gcsctl: %s: %s\n", ls_strerror(r), err ? err : "");
	free(err);
	return 1;
}

static int
open_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		fprintf(stderr, "gcsctl: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static int
cmd_put(char **av, int excl)
{
	char *err = NULL;
	int fd = open_file(av[1]), r;

	r = excl ? st->ops->put_if_absent(st, av[0], fd, &err) :
	    st->ops->put(st, av[0], fd, &err);
	close(fd);
	return r != 0 ? fail(r, err) : 0;
}

static int
cmd_range(char **av)
{
	size_t len = strtoul(av[2], NULL, 10), got = 0;
	char *buf = malloc(len + 1), *err = NULL;
	int r;

	r = st->ops->get_range(st, av[0], strtoull(av[1], NULL, 10), len, buf,
	    &got, &err);
	if (r == 0 && ls_write_all(STDOUT_FILENO, buf, got) != 0)
		r = LS_ERR_IO;
	free(buf);
	return r != 0 ? fail(r, err) : 0;
}

static int
cmd_ls(char **av)
{
	struct store_list l;
	char *err = NULL;
	size_t i;
	int r;

	memset(&l, 0, sizeof(l));
	r = st->ops->list_after(st, av[0], av[1], strtoul(av[2], NULL, 10), &l,
	    &err);
	if (r != 0)
		return fail(r, err);
	for (i = 0; i < l.n; i++)
		printf("%s %" PRIu64 "\n", l.entries[i].key, l.entries[i].size);
	if (l.truncated)
		printf("truncated\n");
	store_list_clear(&l);
	return 0;
}

struct racer {
	const char	*key;
	const char	*path;
	int		 r;
	char		*err;
};

static void *
race_one(void *arg)
{
	struct racer *x = arg;
	int fd = open_file(x->path);

	x->r = st->ops->put_if_absent(st, x->key, fd, &x->err);
	close(fd);
	return NULL;
}

static int
cmd_race(char **av)
{
	int n = atoi(av[0]), i, won = 0, lost = 0, bad = 0;
	struct racer *x = calloc((size_t)n, sizeof(*x));
	pthread_t *t = calloc((size_t)n, sizeof(*t));

	for (i = 0; i < n; i++) {
		x[i] = (struct racer){ av[1], av[2], 0, NULL };
		pthread_create(&t[i], NULL, race_one, &x[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		won += x[i].r == 0;
		lost += x[i].r == LS_ERR_EXISTS;
		if (x[i].r != 0 && x[i].r != LS_ERR_EXISTS) {
			bad++;
			fprintf(stderr, "gcsctl: %s\n", x[i].err);
		}
		free(x[i].err);
	}
	printf("won %d exists %d failed %d\n", won, lost, bad);
	free(x);
	free(t);
	return 0;
}

static int
run(const char *cmd, char **av, int ac)
{
	char *err = NULL;
	uint64_t size;
	int r;

	if (strcmp(cmd, "put") == 0 && ac == 2)
		return cmd_put(av, 0);
	if (strcmp(cmd, "put-new") == 0 && ac == 2)
		return cmd_put(av, 1);
	if (strcmp(cmd, "get") == 0 && ac == 1)
		return (r = st->ops->get(st, av[0], STDOUT_FILENO, &err)) ?
		    fail(r, err) : 0;
	if (strcmp(cmd, "range") == 0 && ac == 3)
		return cmd_range(av);
	if (strcmp(cmd, "head") == 0 && ac == 1) {
		if ((r = st->ops->head(st, av[0], &size, &err)) != 0)
			return fail(r, err);
		printf("%" PRIu64 "\n", size);
		return 0;
	}
	if (strcmp(cmd, "ls") == 0 && ac == 3)
		return cmd_ls(av);
	if (strcmp(cmd, "del") == 0 && ac == 1)
		return (r = st->ops->del(st, av[0], &err)) ? fail(r, err) : 0;
	if (strcmp(cmd, "race") == 0 && ac == 3)
		return cmd_race(av);
	fprintf(stderr, "gcsctl: bad command or arguments (see the source)\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct store_opts o = { 0 };
	char *bucket, *slash, *err = NULL;
	int ch, r;

	while ((ch = getopt(argc, argv, "e:t:p:d:")) != -1) {
		if (ch == 'e')
			o.gcs_endpoint = optarg;
		else if (ch == 't')
			o.multipart_threshold = strtoull(optarg, NULL, 10);
		else if (ch == 'p')
			o.part_size = strtoull(optarg, NULL, 10);
		else if (ch == 'd')
			o.deadline_s = strtoll(optarg, NULL, 10);
		else
			return 2;
	}
	if (argc - optind < 2 || strncmp(argv[optind], "gcs://", 6) != 0) {
		fprintf(stderr, "usage: gcsctl [options] gcs://BUCKET[/PREFIX] "
		    "COMMAND ARGS...\n");
		return 2;
	}
	http_global_init();
	bucket = strdup(argv[optind] + 6);
	if ((slash = strchr(bucket, '/')) != NULL)
		*slash = '\0';
	r = store_gcs_open(argv[optind], bucket, slash ? slash + 1 : "", &o,
	    &st, &err);
	free(bucket);
	if (r != 0)
		return fail(r, err);
	r = run(argv[optind + 1], argv + optind + 2, argc - optind - 2);
	store_free(st);
	return r;
}
