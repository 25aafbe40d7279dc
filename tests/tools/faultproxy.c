/*
 * faultproxy: a TCP proxy that injects the faults an object store's
 * clients must survive; for tests (not installed).
 *
 *	faultproxy --upstream HOST:PORT [--listen PORT] [--seed N]
 *	    [--p500 F] [--p503 F] [--preset F] [--pstall F]
 *	    [--stall-seconds N] [--mode-file FILE] [--rate BYTES]
 *
 * Listens on 127.0.0.1:PORT (0, the default: any free port) and prints the
 * port as the first line of stdout.  Our HTTP client opens a connection
 * per request, so faults are drawn per connection: connection n gets one
 * action, the same for the same --seed, with the given probabilities:
 *	pass	relay both ways until both sides are done (the rest)
 *	500/503	read the request head, answer with that status and
 *		"Connection: close", then drain what the client still sends
 *	reset	forward part of the request, then reset both connections
 *		(SO_LINGER 0)
 *	stall	forward nothing for --stall-seconds (default 3), then close
 * One line per connection on stderr: "faultproxy: conn=N action=A", and
 * when a passing one ends, "faultproxy: conn=N done up=BYTES down=BYTES
 * seconds=S" (up: from the client).
 * The pass action relays bytes, any protocol (PostgreSQL's too); two
 * signals act on the connections open at that moment, new ones pass:
 *	SIGUSR1	cut: reset both sides of each (a network that drops them)
 *	SIGUSR2	black hole: forward nothing more either way and swallow
 *		what arrives, never closing (a network that went silent)
 * A mode, read from --mode-file at start and again on SIGHUP (its first
 * word; no file or an empty one is "normal"), turns the whole store:
 *	normal	the actions above
 *	down	a store that is down: every new connection is answered
 *		503 as above, and the connections open when it went down
 *		are cut (SIGUSR1)
 *	refuse	the same, but new connections are reset before anything
 *		is read (what a client sees of a dead port, nearly)
 *	slow	as normal, but each new connection that passes is throttled
 *		to --rate bytes a second each way (default 65536)
 * Each mode change is logged: "faultproxy: mode M"; an unknown word ends
 * the proxy with exit 2.
 * SIGTERM or SIGINT: stop and exit 0.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX	65536
#define IO_BUF		65536
#define IDLE_MS		30000		/* a silent client (not in pass) */
#define TICK_MS		100		/* how soon a relay sees a signal */

enum action { A_PASS, A_500, A_503, A_RESET, A_STALL };

static const char *action_names[] = { "pass", "500", "503", "reset", "stall" };

enum mode { M_NORMAL, M_DOWN, M_REFUSE, M_SLOW };

static const char *mode_names[] = { "normal", "down", "refuse", "slow" };

struct config {
	struct sockaddr_storage	upstream;
	socklen_t		upstream_len;
	double			p[A_STALL + 1];	/* probability of each action */
	uint64_t		seed;
	int			stall_s;
	const char		*mode_file;	/* or NULL */
	long			rate;		/* bytes/s in slow mode */
};

struct conn {
	const struct config	*cfg;
	unsigned		 cut, hole;	/* the counts when it began */
	int			 fd;		/* the client */
	int			 up;		/* upstream, or -1 */
	enum action		 action;
	long			 rate;		/* bytes/s each way, 0: any */
	uint64_t		 n;		/* its number */
};

/* One direction of a relay. */
struct pipe_half {
	int		 from, to;
	const struct conn *c;
	uint64_t	 moved;		/* bytes relayed */
};

static volatile sig_atomic_t stop, got_cut, got_hole, got_hup;
static atomic_uint cuts, holes;		/* SIGUSR1s and SIGUSR2s so far */

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_cut = 1;
	else if (sig == SIGUSR2)
		got_hole = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		stop = 1;
}

/* splitmix64 of (seed, n): a uniform double in [0, 1). */
static double
draw(uint64_t seed, uint64_t n)
{
	uint64_t z = seed + n * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

static enum action
choose(const struct config *cfg, uint64_t n)
{
	double u = draw(cfg->seed, n), sum = 0;
	int a;

	for (a = A_500; a <= A_STALL; a++) {
		sum += cfg->p[a];
		if (u < sum)
			return (enum action)a;
	}
	return A_PASS;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* read(2) after waiting at most ms for data; -1 on timeout or error. */
static ssize_t
read_wait(int fd, char *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return -1;
	return read(fd, buf, len);
}

/* Close fd so that the peer sees a reset rather than an orderly end. */
static void
close_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static int
connect_upstream(const struct config *cfg)
{
	int fd = socket(cfg->upstream.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (const struct sockaddr *)&cfg->upstream,
	    cfg->upstream_len) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Wait up to TICK_MS for data on fd: 1 readable, 0 not yet, -1 error. */
static int
readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, TICK_MS);

	return r < 0 ? (errno == EINTR ? 0 : -1) : r;
}

/*
 * Copy one direction until EOF, then pass the EOF on; after a cut, reset
 * both sides; in a black hole, swallow until the sender closes.
 */
/* Sleep until moved bytes fit rate bytes/s since t0 (rate 0: no limit). */
static void
throttle(long rate, uint64_t moved, const struct timespec *t0)
{
	struct timespec now, ts;
	int64_t due_us, spent_us;

	if (rate <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	due_us = (int64_t)(moved * 1000000 / (uint64_t)rate);
	spent_us = (now.tv_sec - t0->tv_sec) * 1000000LL +
	    (now.tv_nsec - t0->tv_nsec) / 1000;
	if (due_us <= spent_us)
		return;
	ts.tv_sec = (time_t)((due_us - spent_us) / 1000000);
	ts.tv_nsec = (long)((due_us - spent_us) % 1000000) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *
relay_half(void *arg)
{
	struct pipe_half *h = arg;
	char *buf = malloc(IO_BUF);
	size_t chunk = IO_BUF;
	struct timespec t0;
	bool hole = false;
	ssize_t n = 1;
	int r;

	if (h->c->rate > 0 && (size_t)h->c->rate / 10 + 1 < chunk)
		chunk = (size_t)h->c->rate / 10 + 1;	/* ten steps a second */
	clock_gettime(CLOCK_MONOTONIC, &t0);

	while (buf != NULL && n > 0) {
		if (atomic_load(&cuts) != h->c->cut) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(h->from, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			setsockopt(h->to, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			free(buf);	/* closed by conn_main: a reset */
			return NULL;
		}
		hole = hole || atomic_load(&holes) != h->c->hole;
		if ((r = readable(h->from)) < 0)
			break;
		if (r == 0)
			continue;
		if ((n = read(h->from, buf, chunk)) > 0 && !hole &&
		    write_all(h->to, buf, (size_t)n) != 0)
			break;
		if (n > 0)
			throttle(h->c->rate, h->moved += (uint64_t)n, &t0);
	}
	free(buf);
	if (!hole)
		shutdown(h->to, SHUT_WR);
	shutdown(h->from, SHUT_RD);
	return NULL;
}

/* pass: relay both ways, a thread per direction. */
static void
do_pass(struct conn *c)
{
	struct pipe_half up = { c->fd, c->up, c, 0 }, down = { c->up, c->fd, c, 0 };
	struct timespec t0, t1;
	pthread_t t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pthread_create(&t, NULL, relay_half, &down) != 0) {
		close_reset(c->fd);
		c->fd = -1;
		return;
	}
	relay_half(&up);
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "faultproxy: conn=%llu done up=%llu down=%llu "
	    "seconds=%.1f\n", (unsigned long long)c->n,
	    (unsigned long long)up.moved, (unsigned long long)down.moved,
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* Read the request head (up to the blank line); 0 or -1. */
static int
read_head(int fd)
{
	char *buf = malloc(HEAD_MAX + 1);
	size_t len = 0;
	ssize_t n;
	int r = -1;

	while (buf != NULL && len < HEAD_MAX &&
	    (n = read_wait(fd, buf + len, HEAD_MAX - len, IDLE_MS)) > 0) {
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL) {
			r = 0;
			break;
		}
	}
	free(buf);
	return r;
}

/* 500/503: answer after the head, then drain until the client is done. */
static void
do_error(struct conn *c)
{
	static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<Error><Code>ServiceUnavailable</Code><Message>injected by "
	    "faultproxy</Message></Error>\n";
	char head[256], buf[4096];
	int code = c->action == A_500 ? 500 : 503;

	if (read_head(c->fd) != 0)
		return;
	snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: "
	    "application/xml\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    code, code == 500 ? "Internal Server Error" : "Service Unavailable",
	    sizeof(body) - 1);
	if (write_all(c->fd, head, strlen(head)) != 0 ||
	    write_all(c->fd, body, sizeof(body) - 1) != 0)
		return;
	shutdown(c->fd, SHUT_WR);
	while (read_wait(c->fd, buf, sizeof(buf), IDLE_MS) > 0)
		;
}

/* reset: forward the first half of what the client sent first, then reset. */
static void
do_reset(struct conn *c)
{
	char buf[4096];
	ssize_t n = read_wait(c->fd, buf, sizeof(buf), IDLE_MS);

	if (n > 0)
		write_all(c->up, buf, (size_t)(n + 1) / 2);
	close_reset(c->fd);
	close_reset(c->up);
	c->fd = c->up = -1;
}

/* stall: swallow what arrives for stall_s seconds, then close. */
static void
do_stall(struct conn *c)
{
	struct timespec t0, now;
	char buf[4096];
	long left_ms = c->cfg->stall_s * 1000L;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (left_ms > 0 &&
	    read_wait(c->fd, buf, sizeof(buf), (int)left_ms) > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left_ms = c->cfg->stall_s * 1000L - (now.tv_sec - t0.tv_sec) *
		    1000L - (now.tv_nsec - t0.tv_nsec) / 1000000L;
	}
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;

	if ((c->action == A_PASS || c->action == A_RESET) &&
	    (c->up = connect_upstream(c->cfg)) < 0)
		fprintf(stderr, "faultproxy: upstream connect: %s\n",
		    strerror(errno));
	else if (c->action == A_PASS)
		do_pass(c);
	else if (c->action == A_RESET)
		do_reset(c);
	else if (c->action == A_STALL)
		do_stall(c);
	else
		do_error(c);
	if (c->up >= 0)
		close(c->up);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return NULL;
}

static _Atomic int mode;		/* enum mode, set by the accept loop */

/* Hand a new connection to a detached thread of its own. */
static void
serve(const struct config *cfg, int fd, uint64_t n)
{
	enum mode m = (enum mode)atomic_load(&mode);

	struct conn *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;

	if (c == NULL) {
		close(fd);
		return;
	}
	*c = (struct conn){ .cfg = cfg, .fd = fd, .up = -1,
	    .action = choose(cfg, n), .cut = atomic_load(&cuts),
	    .hole = atomic_load(&holes), .n = n };
	if (m == M_DOWN)
		c->action = A_503;
	else if (m == M_REFUSE) {
		fprintf(stderr, "faultproxy: conn=%llu action=refused\n",
		    (unsigned long long)n);
		close_reset(fd);
		free(c);
		return;
	} else if (m == M_SLOW && c->action == A_PASS)
		c->rate = cfg->rate;
	fprintf(stderr, "faultproxy: conn=%llu action=%s\n",
	    (unsigned long long)n, action_names[c->action]);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_main, c) != 0) {
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

/* The mode --mode-file names now (normal without one); exits if unknown. */
static enum mode
read_mode(const struct config *cfg)
{
	char word[32] = "";
	FILE *f;
	int m;

	if (cfg->mode_file == NULL ||
	    (f = fopen(cfg->mode_file, "r")) == NULL)
		return M_NORMAL;
	if (fscanf(f, "%31s", word) != 1)
		word[0] = '\0';
	fclose(f);
	if (word[0] == '\0')
		return M_NORMAL;
	for (m = M_NORMAL; m <= M_SLOW; m++)
		if (strcmp(word, mode_names[m]) == 0)
			return (enum mode)m;
	fprintf(stderr, "faultproxy: %s says \"%s\": expected normal, down, "
	    "refuse or slow\n", cfg->mode_file, word);
	exit(2);
}

/* Take the mode from the file; going down cuts what is open. */
static void
set_mode(const struct config *cfg)
{
	enum mode m = read_mode(cfg);

	if ((m == M_DOWN || m == M_REFUSE) && atomic_load(&mode) != (int)m)
		atomic_fetch_add(&cuts, 1);
	atomic_store(&mode, (int)m);
	fprintf(stderr, "faultproxy: mode %s\n", mode_names[m]);
}

/* Accept until a signal; signals are let in only while waiting in ppoll. */
static void
accept_loop(const struct config *cfg, int lfd, const sigset_t *waitmask)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	uint64_t n = 0;
	int fd;

	while (!stop) {
		if (got_cut) {
			got_cut = 0;
			atomic_fetch_add(&cuts, 1);
			fprintf(stderr, "faultproxy: cut\n");
		}
		if (got_hole) {
			got_hole = 0;
			atomic_fetch_add(&holes, 1);
			fprintf(stderr, "faultproxy: black hole\n");
		}
		if (got_hup) {
			got_hup = 0;
			set_mode(cfg);
		}
		if (ppoll(&p, 1, NULL, waitmask) <= 0)
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
			serve(cfg, fd, ++n);
	}
}

static int
listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		fprintf(stderr, "faultproxy: listen on 127.0.0.1:%d: %s\n",
		    port, strerror(errno));
		exit(1);
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

static void
resolve_upstream(const char *hostport, struct config *cfg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char host[256];
	const char *colon = strrchr(hostport, ':');
	int r;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
		fprintf(stderr, "faultproxy: --upstream %s: expected "
		    "HOST:PORT\n", hostport);
		exit(2);
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	if ((r = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		fprintf(stderr, "faultproxy: --upstream %s: %s\n", hostport,
		    gai_strerror(r));
		exit(2);
	}
	memcpy(&cfg->upstream, res->ai_addr, res->ai_addrlen);
	cfg->upstream_len = res->ai_addrlen;
	freeaddrinfo(res);
}

static void
usage(void)
{
	fprintf(stderr, "usage: faultproxy --upstream HOST:PORT "
	    "[--listen PORT] [--seed N]\n"
	    "                  [--p500 F] [--p503 F] [--preset F] "
	    "[--pstall F] [--stall-seconds N]\n"
	    "                  [--mode-file FILE] [--rate BYTES]\n");
	exit(2);
}

static double
prob(const char *opt, const char *v)
{
	char *end;
	double p = strtod(v, &end);

	if (*v == '\0' || *end != '\0' || !(p >= 0 && p <= 1)) {
		fprintf(stderr, "faultproxy: %s %s: expected 0 to 1\n", opt, v);
		exit(2);
	}
	return p;
}

/* Options into cfg; returns the port to listen on. */
static int
parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "upstream", required_argument, NULL, 'u' },
		{ "listen", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "p500", required_argument, NULL, '5' },
		{ "p503", required_argument, NULL, '3' },
		{ "preset", required_argument, NULL, 'r' },
		{ "pstall", required_argument, NULL, 't' },
		{ "stall-seconds", required_argument, NULL, 'S' },
		{ "mode-file", required_argument, NULL, 'm' },
		{ "rate", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};
	const char *upstream = NULL;
	int ch, port = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u': upstream = optarg; break;
		case 'l': port = atoi(optarg); break;
		case 's': cfg->seed = strtoull(optarg, NULL, 10); break;
		case '5': cfg->p[A_500] = prob("--p500", optarg); break;
		case '3': cfg->p[A_503] = prob("--p503", optarg); break;
		case 'r': cfg->p[A_RESET] = prob("--preset", optarg); break;
		case 't': cfg->p[A_STALL] = prob("--pstall", optarg); break;
		case 'S': cfg->stall_s = atoi(optarg); break;
		case 'm': cfg->mode_file = optarg; break;
		case 'R': cfg->rate = atol(optarg); break;
		default: usage();
		}
	}
	if (upstream == NULL || optind < argc || port < 0 || port > 65535 ||
	    cfg->stall_s < 0 || cfg->rate <= 0)
		usage();
	if (cfg->p[A_500] + cfg->p[A_503] + cfg->p[A_RESET] + cfg->p[A_STALL] >
	    1.0 + 1e-9) {
		fprintf(stderr, "faultproxy: the probabilities add up to more "
		    "than 1\n");
		exit(2);
	}
	resolve_upstream(upstream, cfg);
	return port;
}

int
main(int argc, char **argv)
{
	struct config cfg = { .stall_s = 3, .rate = 65536 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, waitmask;
	int lfd, port = parse_args(argc, argv, &cfg);

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &block, &waitmask);	/* threads inherit it */
	set_mode(&cfg);
	lfd = listen_on(port);
	accept_loop(&cfg, lfd, &waitmask);
	close(lfd);
	fprintf(stderr, "faultproxy: stopped\n");
	return 0;
}
