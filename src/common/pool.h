/*
 * pool.h: n threads running one worker function over shared state.
 *
 * The first failure ends the run: a worker that returns an error, or a
 * thread that cannot be created.  From then on pool_stopping() is true, so
 * the workers still running finish the piece they hold and return; the
 * pool joins every thread it started and hands the first error, with its
 * message, to the caller.  A run never ends in a silent partial success.
 */
#ifndef LS_POOL_H
#define LS_POOL_H

#include <stdbool.h>

struct pool;

/*
 * A worker: takes pieces of the work in arg until none is left or
 * pool_stopping(pool) is true, then returns 0; or returns a negative
 * LS_ERR_* with *errmsg set (error.h), which stops the other workers.
 * n workers run at once, so what they share in arg needs a lock.  pool
 * is valid while the worker runs.
 */
typedef int pool_fn(const struct pool *pool, void *arg, char **errmsg);

/*
 * Run fn(pool, arg, errmsg) in n threads and return when all of them have
 * returned.  0 when every worker returned 0.  Otherwise the first error:
 *	- a worker's code and message (a worker that gave no message gets
 *	  one naming the code);
 *	- LS_ERR_INTERNAL "cannot start worker k of n: <reason>" when a
 *	  thread could not be created; the workers already running were
 *	  told to stop and have been joined;
 *	- LS_ERR_INVALID when n < 1 or fn is NULL (no thread is started).
 * On failure *errmsg (if errmsg != NULL) is a malloc'd message the caller
 * frees; on success it is left untouched.
 *
 * Test hook: LOGSHIP_TEST_FAIL_WORKER_START=k in the environment makes
 * workers k..n fail to start (EAGAIN), as if the system had no threads
 * left.
 */
int pool_run(int n, pool_fn *fn, void *arg, char **errmsg);

/* True once a worker failed or a thread could not start: take no more work. */
bool pool_stopping(const struct pool *);

#endif
