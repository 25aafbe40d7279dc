/*
 * metrics.c: the Prometheus registry, its text exposition, the HTTP
 * endpoint (libmicrohttpd, one internal thread) and the textfile writer
 * (see metrics.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/error.h"
#include "common/metrics.h"

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct metric {
	struct metrics	*reg;
	enum mtype	 type;
	char		*name;
	char		*help;
	char		*labels;	/* rendered: a="b",c="d" or NULL */
	double		 value;		/* counter, gauge; histogram: sum */
	double		*bounds;	/* histogram */
	uint64_t	*counts;	/* per bucket, not cumulative; [n] = +Inf */
	size_t		 nbounds;
	uint64_t	 count;
	struct metric	*next;
};

struct metrics {
	pthread_mutex_t	 lock;
	struct metric	*first, *last;
	struct MHD_Daemon *daemon;
};

/* ---- a growing string ---- */

struct buf {
	char	*p;
	size_t	 len, cap;
	int	 oom;
};

static void __attribute__((format(printf, 2, 3)))
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *bigger;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len :
		    0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p != NULL && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		if ((bigger = realloc(b->p, b->cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = bigger;
	}
}

/* s with \ " and newline escaped (label values); help: no quote escape. */
static void
bescape(struct buf *b, const char *s, int quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			bprintf(b, "\\\\");
		else if (*s == '\n')
			bprintf(b, "\\n");
		else if (*s == '"' && quote)
			bprintf(b, "\\\"");
		else
			bprintf(b, "%c", *s);
	}
}

/* A sample value: integers exactly, others with full precision. */
static void
bvalue(struct buf *b, double v)
{
	if (isnan(v))
		bprintf(b, "NaN");
	else if (isinf(v))
		bprintf(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		bprintf(b, "%.0f", v);
	else {
		char t[40];
		snprintf(t, sizeof(t), "%.15g", v);	/* shortest that reads back */
		if (strtod(t, NULL) != v)
			snprintf(t, sizeof(t), "%.17g", v);
		bprintf(b, "%s", t);
	}
}

/* ---- the registry ---- */

struct metrics *
metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m != NULL)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void
metric_free(struct metric *x)
{
	free(x->name);
	free(x->help);
	free(x->labels);
	free(x->bounds);
	free(x->counts);
	free(x);
}

void
metrics_free(struct metrics *m)
{
	struct metric *x, *next;

	if (m == NULL)
		return;
	if (m->daemon != NULL)
		MHD_stop_daemon(m->daemon);
	for (x = m->first; x != NULL; x = next) {
		next = x->next;
		metric_free(x);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct metric *
make(struct metrics *m, enum mtype type, const char *name, const char *help,
    const char *const *labels)
{
	struct metric *x;
	struct buf b = { NULL, 0, 0, 0 };
	size_t i;

	if (m == NULL || (x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->reg = m;
	x->type = type;
	for (i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL;
	    i += 2) {
		bprintf(&b, "%s%s=\"", i ? "," : "", labels[i]);
		bescape(&b, labels[i + 1], 1);
		bprintf(&b, "\"");
	}
	x->labels = b.p;
	x->name = strdup(name);
	x->help = strdup(help);
	if (x->name == NULL || x->help == NULL || b.oom) {
		metric_free(x);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	if (m->last != NULL)
		m->last->next = x;
	else
		m->first = x;
	m->last = x;
	pthread_mutex_unlock(&m->lock);
	return x;
}

struct metric *
metrics_counter(struct metrics *m, const char *name, const char *help,
    const char *const *labels)
{
	return make(m, M_COUNTER, name, help, labels);
}

struct metric *
metrics_gauge(struct metrics *m, const char *name, const char *help,
    const char *const *labels)
{
	return make(m, M_GAUGE, name, help, labels);
}

struct metric *
metrics_histogram(struct metrics *m, const char *name, const char *help,
    const double *bounds, size_t n)
{
	struct metric *x = make(m, M_HISTOGRAM, name, help, NULL);

	if (x == NULL)
		return NULL;
	x->bounds = malloc((n ? n : 1) * sizeof(*x->bounds));
	x->counts = calloc(n + 1, sizeof(*x->counts));
	if (x->bounds == NULL || x->counts == NULL)
		return NULL;	/* stays in the registry, freed with it */
	memcpy(x->bounds, bounds, n * sizeof(*bounds));
	x->nbounds = n;
	return x;
}

void
metric_add(struct metric *x, double v)
{
	if (x == NULL)
		return;
	pthread_mutex_lock(&x->reg->lock);
	x->value += v;
	pthread_mutex_unlock(&x->reg->lock);
}

void
metric_set(struct metric *x, double v)
{
	if (x == NULL)
		return;
	pthread_mutex_lock(&x->reg->lock);
	x->value = v;
	pthread_mutex_unlock(&x->reg->lock);
}

double
metric_get(const struct metric *x)
{
	double v;

	if (x == NULL)
		return 0;
	pthread_mutex_lock(&x->reg->lock);
	v = x->value;
	pthread_mutex_unlock(&x->reg->lock);
	return v;
}

void
metric_observe(struct metric *x, double v)
{
	size_t i;

	if (x == NULL || x->counts == NULL)
		return;
	pthread_mutex_lock(&x->reg->lock);
	for (i = 0; i < x->nbounds && v > x->bounds[i]; i++)
		;
	x->counts[i]++;
	x->count++;
	x->value += v;
	pthread_mutex_unlock(&x->reg->lock);
}

/* ---- exposition ---- */

static const char *const type_names[] = { "counter", "gauge", "histogram" };

static void
render_histogram(struct buf *b, const struct metric *x)
{
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i <= x->nbounds; i++) {
		cum += x->counts[i];
		bprintf(b, "%s_bucket{le=\"", x->name);
		bvalue(b, i < x->nbounds ? x->bounds[i] : INFINITY);
		bprintf(b, "\"} %llu\n", (unsigned long long)cum);
	}
	bprintf(b, "%s_sum ", x->name);
	bvalue(b, x->value);
	bprintf(b, "\n%s_count %llu\n", x->name, (unsigned long long)x->count);
}

char *
metrics_render(struct metrics *m)
{
	struct buf b = { NULL, 0, 0, 0 };
	const struct metric *x, *prev = NULL;

	bprintf(&b, "%s", "");
	pthread_mutex_lock(&m->lock);
	for (x = m->first; x != NULL; prev = x, x = x->next) {
		if (x->type == M_HISTOGRAM && x->counts == NULL)
			continue;
		if (prev == NULL || strcmp(prev->name, x->name) != 0) {
			bprintf(&b, "# HELP %s ", x->name);
			bescape(&b, x->help, 0);
			bprintf(&b, "\n# TYPE %s %s\n", x->name, type_names[x->type]);
		}
		if (x->type == M_HISTOGRAM) {
			render_histogram(&b, x);
			continue;
		}
		bprintf(&b, "%s", x->name);
		if (x->labels != NULL)
			bprintf(&b, "{%s}", x->labels);
		bprintf(&b, " ");
		bvalue(&b, x->value);
		bprintf(&b, "\n");
	}
	pthread_mutex_unlock(&m->lock);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- HTTP ---- */

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int status = MHD_HTTP_OK;
	char *text;

	(void)url; (void)version; (void)upload_data; (void)con_cls;
	if (*upload_data_size != 0)
		return MHD_NO;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		text = strdup("only GET\n");
	} else
		text = metrics_render(m);
	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* "HOST:PORT", "[V6]:PORT" or "PORT" into a socket address. */
static int
parse_addr(const char *addr, struct sockaddr_storage *ss, char **errmsg)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	char host[256] = "127.0.0.1", *end;
	const char *port = addr, *colon;
	unsigned long p;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[' && (colon = strstr(addr, "]:")) != NULL) {
		hl = (size_t)(colon - addr - 1);
		port = colon + 2;
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, addr + 1, hl);
		host[hl] = '\0';
	} else if ((colon = strrchr(addr, ':')) != NULL) {
		hl = (size_t)(colon - addr);
		port = colon + 1;
		if (hl == 0 || hl >= sizeof(host) || memchr(addr, ':', hl) != NULL)
			goto bad;
		memcpy(host, addr, hl);
		host[hl] = '\0';
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (*port < '0' || *port > '9' || *end != '\0' || errno != 0 ||
	    p == 0 || p > 65535)
		goto bad;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		return 0;
	}
 bad:
	return ls_errf(errmsg, LS_ERR_INVALID, "metrics address \"%s\" is not "
	    "PORT, IPV4:PORT or [IPV6]:PORT (a numeric address, port 1-65535); "
	    "e.g. 127.0.0.1:9187", addr);
}

int
metrics_serve(struct metrics *m, const char *addr, char **errmsg)
{
	struct sockaddr_storage ss;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int r;

	if ((r = parse_addr(addr, &ss, errmsg)) != 0)
		return r;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, answer, m,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, 16u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (m->daemon == NULL)
		return ls_errf(errmsg, LS_ERR_IO, "cannot serve metrics on %s "
		    "(address in use, or not local?); choose another "
		    "--metrics-addr", addr);
	return 0;
}

/* ---- textfile ---- */

/*
 * The textfile's temp file, 0644 whatever the umask: node_exporter reads
 * it as another user, and it holds no secret.
 */
static FILE *
open_textfile(const char *tmp)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FILE *f;

	if (fd < 0)
		return NULL;
	if ((f = fdopen(fd, "w")) == NULL)
		close(fd);
	return f;
}

int
metrics_write_file(struct metrics *m, const char *path, char **errmsg)
{
	char *text = metrics_render(m), *tmp = NULL;
	FILE *f = NULL;
	int r = LS_ERR_IO;

	if (text == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (asprintf(&tmp, "%s.%ld.tmp", path, (long)getpid()) < 0) {
		tmp = NULL;
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((f = open_textfile(tmp)) == NULL ||
	    fputs(text, f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "writing %s: %s; check "
		    "--metrics-file", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		r = ls_errf(errmsg, LS_ERR_IO, "writing %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "renaming %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	r = 0;
 out:
	if (f != NULL)
		fclose(f);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(text);
	return r;
}
