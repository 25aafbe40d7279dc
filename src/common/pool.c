/*
 * pool.c: n threads running one worker function.  The first failure, a
 * worker's or a thread's that could not start, is kept, raises the stop
 * flag the workers poll, and becomes the result once all are joined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/pool.h"

struct pool {
	pool_fn		*fn;
	void		*arg;
	atomic_bool	 stop;
	pthread_mutex_t	 lock;		/* protects r and err */
	int		 r;		/* the first error */
	char		*err;
};

/* Keep the first error (taking *err) and stop the workers. */
static void
fail(struct pool *p, int r, char **err)
{
	pthread_mutex_lock(&p->lock);
	if (p->r == 0) {
		p->r = r;
		p->err = *err;
		*err = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->stop, true);
	free(*err);
	*err = NULL;
}

static void *
thread_main(void *arg)
{
	struct pool *p = arg;
	char *err = NULL;
	int r;

	if ((r = p->fn(p, p->arg, &err)) != 0) {
		if (r > 0)
			r = LS_ERR_INTERNAL;
		if (err == NULL)
			ls_errf(&err, r, "a worker failed: %s", ls_strerror(r));
		fail(p, r, &err);
	}
	free(err);		/* a message from a worker that succeeded */
	return NULL;
}

/* The test hook's first worker (1-based) that fails to start, or 0. */
static int
fail_start_from(void)
{
	const char *env = getenv("LOGSHIP_TEST_FAIL_WORKER_START");
	int k = env != NULL ? atoi(env) : 0;

	return k > 0 ? k : 0;
}

int
pool_run(int n, pool_fn *fn, void *arg, char **errmsg)
{
	struct pool p = { .fn = fn, .arg = arg };
	pthread_t *t;
	char *err = NULL;
	int i, started, e, from = fail_start_from(), r;

	if (n < 1)
		return ls_errf(errmsg, LS_ERR_INVALID, "worker pool: %d "
		    "workers asked for, at least 1 expected", n);
	if (fn == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "worker pool: no worker "
		    "function");
	if ((t = calloc((size_t)n, sizeof(*t))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	atomic_init(&p.stop, false);
	pthread_mutex_init(&p.lock, NULL);
	for (started = 0; started < n && !pool_stopping(&p); started++) {
		e = from > 0 && started + 1 >= from ? EAGAIN :
		    pthread_create(&t[started], NULL, thread_main, &p);
		if (e != 0) {
			ls_errf(&err, LS_ERR_INTERNAL, "cannot start worker %d "
			    "of %d: %s", started + 1, n, strerror(e));
			fail(&p, LS_ERR_INTERNAL, &err);
			break;
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if ((r = p.r) != 0 && errmsg != NULL) {
		free(*errmsg);
		*errmsg = p.err;
		p.err = NULL;
	}
	free(p.err);
	free(t);
	pthread_mutex_destroy(&p.lock);
	return r;
}

bool
pool_stopping(const struct pool *p)
{
	return atomic_load(&p->stop);
}
