/* test_metrics.c: the Prometheus registry's exposition text, exactly. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/metrics.h"
#include "tap.h"

static const char expected[] =
    "# HELP logship_test_things_total Things done.\n"
    "# TYPE logship_test_things_total counter\n"
    "logship_test_things_total 3\n"
    "# HELP logship_test_lsn Last LSN \\\\ a backslash\\nand a newline.\n"
    "# TYPE logship_test_lsn gauge\n"
    "logship_test_lsn 97500059720\n"
    "# HELP logship_test_info Labels.\n"
    "# TYPE logship_test_info gauge\n"
    "logship_test_info{store=\"s3://b/p\\\"q\\\\r\\ns\",generation=\"00ab\"} 1\n"
    "logship_test_info{store=\"other\"} 0.25\n"
    "# HELP logship_test_upload_seconds Upload latency.\n"
    "# TYPE logship_test_upload_seconds histogram\n"
    "logship_test_upload_seconds_bucket{le=\"0.01\"} 1\n"
    "logship_test_upload_seconds_bucket{le=\"0.1\"} 1\n"
    "logship_test_upload_seconds_bucket{le=\"1\"} 3\n"
    "logship_test_upload_seconds_bucket{le=\"+Inf\"} 4\n"
    "logship_test_upload_seconds_sum 6.505\n"
    "logship_test_upload_seconds_count 4\n";

struct hammer {
	struct metric	*c;
	int		 n;
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < h->n; i++)
		metric_add(h->c, 1);
	return NULL;
}

int
main(void)
{
	static const double bounds[] = { 0.01, 0.1, 1 };
	static const char *const l1[] = { "store", "s3://b/p\"q\\r\ns",
	    "generation", "00ab", NULL };
	static const char *const l2[] = { "store", "other", NULL };
	struct metrics *m = metrics_new();
	struct metric *c, *g, *h, *i1, *i2;
	struct hammer hm;
	pthread_t th[4];
	char *text, *err = NULL, path[] = "/tmp/test_metrics.XXXXXX", buf[4096];
	FILE *f;
	size_t n;
	int k, fd;

	c = metrics_counter(m, "logship_test_things_total", "Things done.", NULL);
	g = metrics_gauge(m, "logship_test_lsn",
	    "Last LSN \\ a backslash\nand a newline.", NULL);
	i1 = metrics_gauge(m, "logship_test_info", "Labels.", l1);
	i2 = metrics_gauge(m, "logship_test_info", "Labels.", l2);
	h = metrics_histogram(m, "logship_test_upload_seconds",
	    "Upload latency.", bounds, 3);
	ok(c && g && h && i1 && i2, "metrics made");
	metric_add(c, 1);
	metric_add(c, 2);
	metric_set(g, (double)0x16B374D848ULL);
	metric_set(i1, 1);
	metric_set(i2, 0.25);
	metric_observe(h, 0.005);
	metric_observe(h, 0.5);
	metric_observe(h, 1);		/* on a bound: in that bucket */
	metric_observe(h, 5);
	metric_add(NULL, 1);		/* NULL handles are no-ops */
	ok(metric_get(NULL) == 0, "metric_get(NULL) is 0");
	text = metrics_render(m);
	ok(text != NULL && strcmp(text, expected) == 0, "exposition text");
	if (text != NULL && strcmp(text, expected) != 0)
		diag("got:\n%s", text);
	free(text);

	/* thread-safe counting */
	metric_set(c, 0);
	hm.c = c;
	hm.n = 100000;
	for (k = 0; k < 4; k++)
		pthread_create(&th[k], NULL, hammer, &hm);
	for (k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	ok(metric_get(c) == 400000, "4 threads x 100000 adds: %.0f",
	    metric_get(c));

	/* the textfile: whole, renamed into place */
	fd = mkstemp(path);
	close(fd);
	ok(metrics_write_file(m, path, &err) == 0, "write textfile: %s",
	    err ? err : "ok");
	f = fopen(path, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	ok(strstr(buf, "logship_test_things_total 400000\n") != NULL &&
	    strstr(buf, "logship_test_upload_seconds_count 4\n") != NULL,
	    "textfile holds the exposition");
	unlink(path);
	free(err);
	err = NULL;
	k = metrics_write_file(m, "/nonexistent-dir/x.prom", &err);
	ok(k == LS_ERR_IO && err != NULL &&
	    strstr(err, "/nonexistent-dir/x.prom") != NULL,
	    "unwritable textfile: %s", err ? err : "?");
	free(err);
	err = NULL;

	/* addresses */
	k = metrics_serve(m, "localhost:80", &err);
	ok(k == LS_ERR_INVALID, "a host name is refused: %s", err ? err : "?");
	free(err);
	err = NULL;
	ok(metrics_serve(m, "127.0.0.1:0", &err) == LS_ERR_INVALID,
	    "port 0 is refused");
	free(err);
	err = NULL;
	ok(metrics_serve(m, "9x", &err) == LS_ERR_INVALID, "junk is refused");
	free(err);
	metrics_free(m);
	metrics_free(NULL);
	return tap_done();
}
