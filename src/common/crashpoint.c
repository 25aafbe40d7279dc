/*
 * crashpoint.c: LOGSHIP_CRASHPOINT=name[:n], read once, kills the process
 * with SIGKILL at the n-th call of crashpoint(name).  See crashpoint.h.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crashpoint.h"

static pthread_once_t	once = PTHREAD_ONCE_INIT;
static char		 want[64];	/* "" when unset */
static long		 want_n = 1;
static atomic_long	 reached;

/* Parse the variable; a malformed one is a test bug: say so and die. */
static void
read_env(void)
{
	const char *env = getenv("LOGSHIP_CRASHPOINT");
	const char *colon;
	char *end;
	size_t len;

	if (env == NULL || *env == '\0')
		return;
	colon = strchr(env, ':');
	len = colon != NULL ? (size_t)(colon - env) : strlen(env);
	if (colon != NULL) {
		want_n = strtol(colon + 1, &end, 10);
		if (*end != '\0' || want_n < 1)
			len = 0;
	}
	if (len == 0 || len >= sizeof(want)) {
		fprintf(stderr, "LOGSHIP_CRASHPOINT=%s: want name or name:n "
		    "(n >= 1); unset it outside tests\n", env);
		_exit(2);
	}
	memcpy(want, env, len);
	want[len] = '\0';
}

void
crashpoint(const char *name)
{
	pthread_once(&once, read_env);
	if (want[0] == '\0' || strcmp(want, name) != 0)
		return;
	if (atomic_fetch_add(&reached, 1) + 1 != want_n)
		return;
	fflush(NULL);
	raise(SIGKILL);
}
