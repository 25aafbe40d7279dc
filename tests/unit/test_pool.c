/* test_pool.c: the worker pool: all run, first error wins, failed starts. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/pool.h"
#include "tap.h"

#define ITEMS		1000
#define WAIT_MS		5000	/* what a test waits for before giving up */

struct work {
	pthread_mutex_t	 lock;
	int		 started;	/* workers that have begun */
	int		 finished;	/* workers about to return */
	int		 next;		/* the next item to take */
	int		 done[ITEMS];	/* times each item was processed */
	int		 bad;		/* this item fails, or -1 */
	int		 saw_stop;	/* workers that saw pool_stopping */
	int		 n;		/* workers expected to run together */
};

static void
work_init(struct work *w, int n, int bad)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->n = n;
	w->bad = bad;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int
count(struct work *w, int *field, int add)
{
	int v;

	pthread_mutex_lock(&w->lock);
	v = *field += add;
	pthread_mutex_unlock(&w->lock);
	return v;
}

/* Wait up to WAIT_MS for pool_stopping; 1 if it came. */
static int
wait_stop(const struct pool *pool)
{
	int ms;

	for (ms = 0; ms < WAIT_MS && !pool_stopping(pool); ms++)
		sleep_ms(1);
	return pool_stopping(pool);
}

/* Count this worker in; wait up to WAIT_MS for all n; its ticket or 0. */
static int
all_started(struct work *w)
{
	int ms, ticket = count(w, &w->started, 1);

	for (ms = 0; ms < WAIT_MS && count(w, &w->started, 0) < w->n; ms++)
		sleep_ms(1);
	return count(w, &w->started, 0) < w->n ? 0 : ticket;
}

/*
 * Once all n workers run, share out the items; item bad fails, and the
 * items after it wait for the stop that failure must bring.
 */
static int
take_items(const struct pool *pool, void *arg, char **errmsg)
{
	struct work *w = arg;
	int i;

	if (all_started(w) == 0)
		return ls_errf(errmsg, LS_ERR_INTERNAL, "the workers do not "
		    "run at the same time");
	for (;;) {
		if (pool_stopping(pool)) {
			count(w, &w->saw_stop, 1);
			break;
		}
		pthread_mutex_lock(&w->lock);
		i = w->next < ITEMS ? w->next++ : -1;
		if (i >= 0)
			w->done[i]++;
		pthread_mutex_unlock(&w->lock);
		if (i < 0)
			break;
		if (i == w->bad)
			return ls_errf(errmsg, LS_ERR_CORRUPT, "item %d is bad",
			    i);
		if (w->bad >= 0 && i > w->bad && !wait_stop(pool))
			return ls_errf(errmsg, LS_ERR_INTERNAL, "never told "
			    "to stop");
	}
	count(w, &w->finished, 1);
	return 0;
}

static void
test_all_run(void)
{
	struct work w;
	char *err = NULL;
	int i, once = 1, r;

	work_init(&w, 4, -1);
	r = pool_run(4, take_items, &w, &err);
	ok(r == 0 && err == NULL, "4 workers over shared work: 0, no message "
	    "(%d %s)", r, err ? err : "");
	ok(w.started == 4 && w.finished == 4, "all 4 ran at once and "
	    "returned (started %d, finished %d)", w.started, w.finished);
	for (i = 0; i < ITEMS; i++)
		once &= w.done[i] == 1;
	ok(once && w.saw_stop == 0, "every item processed exactly once, "
	    "no stop seen");
	free(err);

	work_init(&w, 1, -1);
	r = pool_run(1, take_items, &w, NULL);
	ok(r == 0 && w.started == 1 && w.next == ITEMS, "1 worker does it "
	    "all; errmsg may be NULL");
}

static void
test_worker_error(void)
{
	struct work w;
	char *err = strdup("an older message");
	int r;

	work_init(&w, 3, 10);
	r = pool_run(3, take_items, &w, &err);
	ok(r == LS_ERR_CORRUPT, "a worker's error is the result (%d)", r);
	ok(err != NULL && strcmp(err, "item 10 is bad") == 0, "with the "
	    "worker's message, replacing the old one (%s)", err ? err : "");
	ok(w.saw_stop == 2 && w.finished == 2 && w.next < ITEMS, "the other "
	    "2 were told to stop and returned (stopped %d, returned %d, took "
	    "%d of %d items)", w.saw_stop, w.finished, w.next, ITEMS);
	free(err);
}

/* Once all run, worker 1 fails; the others fail after being stopped. */
static int
fail_in_order(const struct pool *pool, void *arg, char **errmsg)
{
	struct work *w = arg;
	int ticket = all_started(w);

	if (ticket == 0)
		return ls_errf(errmsg, LS_ERR_INTERNAL, "the workers do not "
		    "run at the same time");
	if (ticket == 1)
		return ls_errf(errmsg, LS_ERR_IO, "first");
	if (!wait_stop(pool))
		return ls_errf(errmsg, LS_ERR_INTERNAL, "never told to stop");
	count(w, &w->saw_stop, 1);
	return ls_errf(errmsg, LS_ERR_AUTH, "later");
}

static int
fail_silently(const struct pool *pool, void *arg, char **errmsg)
{
	return LS_ERR_TOOBIG;
}

static int
succeed_with_message(const struct pool *pool, void *arg, char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_IO, "a message") == LS_ERR_IO ? 0 : 1;
}

static void
test_first_error(void)
{
	struct work w;
	char *err = NULL;
	int r;

	work_init(&w, 3, -1);
	r = pool_run(3, fail_in_order, &w, &err);
	ok(r == LS_ERR_IO && err != NULL && strcmp(err, "first") == 0,
	    "the first error wins (%d %s)", r, err ? err : "");
	ok(w.started == 3 && w.saw_stop == 2, "the other 2 were told to stop "
	    "(%d of %d)", w.saw_stop, w.started - 1);
	free(err);
	err = NULL;

	r = pool_run(2, fail_silently, NULL, &err);
	ok(r == LS_ERR_TOOBIG && err != NULL &&
	    strstr(err, ls_strerror(LS_ERR_TOOBIG)) != NULL,
	    "an error without a message gets one naming it (%s)",
	    err ? err : "");
	free(err);
	err = NULL;

	r = pool_run(2, succeed_with_message, NULL, &err);
	ok(r == 0 && err == NULL, "a message from a worker that succeeded "
	    "is dropped");
}

/* Wait for the stop, linger, and count the return: proves the join. */
static int
wait_for_stop(const struct pool *pool, void *arg, char **errmsg)
{
	struct work *w = arg;

	count(w, &w->started, 1);
	if (!wait_stop(pool))
		return ls_errf(errmsg, LS_ERR_INTERNAL, "never told to stop");
	count(w, &w->saw_stop, 1);
	sleep_ms(50);
	count(w, &w->finished, 1);
	return 0;
}

static void
test_start_failure(void)
{
	struct work w;
	char *err = NULL;
	int r;

	setenv("LOGSHIP_TEST_FAIL_WORKER_START", "3", 1);
	work_init(&w, 4, -1);
	r = pool_run(4, wait_for_stop, &w, &err);
	ok(r == LS_ERR_INTERNAL, "worker 3 of 4 cannot start: an error (%d)",
	    r);
	ok(err != NULL && strstr(err, "cannot start worker 3 of 4: ") != NULL
	    && strstr(err, strerror(EAGAIN)) != NULL, "naming the worker and "
	    "the cause (%s)", err ? err : "");
	ok(w.started == 2 && w.saw_stop == 2 && w.finished == 2, "workers 1 "
	    "and 2 were told to stop and joined before the return (started "
	    "%d, stopped %d, returned %d)", w.started, w.saw_stop, w.finished);
	free(err);
	err = NULL;

	setenv("LOGSHIP_TEST_FAIL_WORKER_START", "1", 1);
	work_init(&w, 2, -1);
	r = pool_run(2, wait_for_stop, &w, &err);
	ok(r == LS_ERR_INTERNAL && w.started == 0 && err != NULL &&
	    strstr(err, "cannot start worker 1 of 2") != NULL,
	    "no worker starts: an error, not an empty success (%s)",
	    err ? err : "");
	free(err);
	err = NULL;

	setenv("LOGSHIP_TEST_FAIL_WORKER_START", "5", 1);
	work_init(&w, 4, -1);
	r = pool_run(4, take_items, &w, &err);
	ok(r == 0 && w.finished == 4, "the hook beyond n changes nothing");
	free(err);
	unsetenv("LOGSHIP_TEST_FAIL_WORKER_START");
}

static void
test_bad_arguments(void)
{
	struct work w;
	char *err = NULL;
	int r;

	work_init(&w, 1, -1);
	r = pool_run(0, take_items, &w, &err);
	ok(r == LS_ERR_INVALID && err != NULL && w.started == 0,
	    "0 workers: invalid, nothing runs (%s)", err ? err : "");
	free(err);
	err = NULL;
	r = pool_run(-3, take_items, &w, &err);
	ok(r == LS_ERR_INVALID && err != NULL && strstr(err, "-3") != NULL,
	    "a negative count: invalid, named (%s)", err ? err : "");
	free(err);
	err = NULL;
	r = pool_run(2, NULL, &w, &err);
	ok(r == LS_ERR_INVALID && err != NULL, "no function: invalid (%s)",
	    err ? err : "");
	free(err);
	ok(pool_run(0, take_items, &w, NULL) == LS_ERR_INVALID,
	    "errmsg may be NULL on failure too");
}

int
main(void)
{
	test_all_run();
	test_worker_error();
	test_first_error();
	test_start_failure();
	test_bad_arguments();
	return tap_done();
}
