/*
 * metrics.h: a small registry of Prometheus metrics and their text
 * exposition (format 0.0.4), served over HTTP (libmicrohttpd) and written
 * to a node_exporter textfile.
 *
 * A registry holds metrics in the order they were made: counters, gauges
 * and histograms with fixed buckets, each optionally with one constant
 * label set.  Series of one name share a # HELP and # TYPE line and must
 * be made one after the other.  Every update and the rendering take the
 * registry's lock, so any thread may update while another renders.
 * Values are doubles: an LSN is exact up to 2^53.
 */
#ifndef LS_METRICS_H
#define LS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;
struct metric;

/* A new, empty registry; NULL when out of memory. */
struct metrics *metrics_new(void);
/* Free the registry and every metric it made (NULL: no-op). */
void metrics_free(struct metrics *);

/*
 * Make a metric.  name and help are copied; labels is NULL or a
 * NULL-terminated list of name, value pairs (copied).  Returns NULL when
 * out of memory; every update function takes NULL as a no-op, so a
 * program without metrics passes NULL handles around.
 */
struct metric *metrics_counter(struct metrics *, const char *name,
    const char *help, const char *const *labels);
struct metric *metrics_gauge(struct metrics *, const char *name,
    const char *help, const char *const *labels);
/* bounds: n ascending upper bounds (the +Inf bucket is implicit). */
struct metric *metrics_histogram(struct metrics *, const char *name,
    const char *help, const double *bounds, size_t n);

void metric_add(struct metric *, double v);	/* counters and gauges */
void metric_set(struct metric *, double v);	/* gauges */
void metric_observe(struct metric *, double v);	/* histograms */
double metric_get(const struct metric *);	/* 0 for NULL */

/* The exposition text, malloc'd and NUL-terminated; NULL when out of memory. */
char *metrics_render(struct metrics *);

/*
 * Serve the registry at http://addr/metrics (any path answers the same).
 * addr is "HOST:PORT", "[V6]:PORT" or "PORT" (then 127.0.0.1).  Returns 0
 * or LS_ERR_INVALID (a bad address) / LS_ERR_IO (cannot listen) with
 * *errmsg.  One server per registry; metrics_free stops it.
 */
int metrics_serve(struct metrics *, const char *addr, char **errmsg);

/*
 * Write the exposition to path atomically (a temp file beside it, then
 * rename), for node_exporter's textfile collector.  0 or LS_ERR_IO.
 */
int metrics_write_file(struct metrics *, const char *path, char **errmsg);

#endif
