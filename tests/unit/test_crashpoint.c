/*
 * test_crashpoint: LOGSHIP_CRASHPOINT=name[:n] kills a process with
 * SIGKILL at the n-th call of crashpoint(name) and at no other call; a
 * malformed value ends it with exit 2.  Each case runs in a child, as the
 * variable is read once per process.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/crashpoint.h"
#include "tap.h"

/*
 * Run one child with LOGSHIP_CRASHPOINT=env (NULL: unset) calling
 * crashpoint("other") and then crashpoint("x") 5 times, writing a byte to
 * a pipe before each call of "x".  The wait status; *calls the bytes read.
 */
static int
run(const char *env, int *calls)
{
	int fd[2], st = 0, i;
	char b;
	pid_t pid;

	if (pipe(fd) != 0 || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		close(fd[0]);
		if (env != NULL)
			setenv("LOGSHIP_CRASHPOINT", env, 1);
		else
			unsetenv("LOGSHIP_CRASHPOINT");
		crashpoint("other");
		for (i = 0; i < 5; i++) {
			if (write(fd[1], "c", 1) != 1)
				_exit(3);
			crashpoint("x");
		}
		_exit(0);
	}
	close(fd[1]);
	for (*calls = 0; read(fd[0], &b, 1) == 1; (*calls)++)
		;
	close(fd[0]);
	waitpid(pid, &st, 0);
	return st;
}

static int
killed(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

int
main(void)
{
	int st, n;

	st = run(NULL, &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 5, "unset: every call returns");
	st = run("", &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 5, "empty: every call returns");
	st = run("x", &n);
	ok(killed(st) && n == 1, "x: SIGKILL at the first call of x, not at other (%d)", n);
	st = run("x:3", &n);
	ok(killed(st) && n == 3, "x:3: SIGKILL at the third call (%d)", n);
	st = run("x:6", &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 5, "x:6: five calls return");
	st = run("y", &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 5, "another name: every call returns");
	st = run("x:0", &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "x:0 is refused (exit 2)");
	st = run("x:3z", &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "x:3z is refused (exit 2)");
	st = run(":2", &n);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, ":2 is refused (exit 2)");
	return tap_done();
}
