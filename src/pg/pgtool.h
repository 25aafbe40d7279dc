/*
 * pgtool.h: running a PostgreSQL client program (pg_dump, psql) against a
 * libpq conninfo, with no secret on its command line.
 *
 * The conninfo's options reach the child in their PG* environment
 * variables (PGHOST, PGPASSWORD, ...), overriding ours; the few options
 * without one go in a trailing --dbname=<conninfo>, and a secret without
 * one (sslpassword) is refused.  "--no-password" is always added, so the
 * child never prompts.  The child starts with default signal dispositions
 * and an empty signal mask, whatever ours are; its stderr is kept in an
 * anonymous memory file so that a failure can be reported with its message.
 */
#ifndef LS_PGTOOL_H
#define LS_PGTOOL_H

#include <stdbool.h>

/* A running child. */
struct pgtool;

#define PGTOOL_DEVNULL	(-1)	/* stdin_fd/stdout_fd: /dev/null */
#define PGTOOL_PIPE	(-2)	/* stdout_fd: a pipe read with pgtool_stdout */

/*
 * Start program ("pg_dump", "psql") as
 *	<path> <args...> --no-password [--dbname=<options without env vars>]
 * path is given_path if not NULL, else $LOGSHIP_<PROGRAM> (LOGSHIP_PG_DUMP,
 * LOGSHIP_PSQL) if set and not empty, else program in $PATH, else in
 * `pg_config --bindir`.  conninfo (keyword=value or URI; NULL: none) gives
 * the connection; "replication" is dropped.  args is NULL-terminated (may
 * be NULL) and holds no connection options.  stdin_fd is PGTOOL_DEVNULL or
 * an fd to read; stdout_fd is PGTOOL_DEVNULL, PGTOOL_PIPE or an fd to
 * write.  The child gets its own duplicates: the caller keeps and closes
 * its fds.
 *
 * Returns 0 with *out (finish it with pgtool_wait or pgtool_kill), or
 * LS_ERR_INVALID (bad conninfo, a secret with no environment variable, a
 * given path that is not executable), LS_ERR_NOTFOUND (program not found,
 * no file at the given path), LS_ERR_IO (spawn failed) or LS_ERR_NOMEM,
 * with *errmsg (caller frees) naming the program.
 */
int pgtool_spawn(const char *program, const char *given_path,
    const char *conninfo, const char *const *args, int stdin_fd,
    int stdout_fd, struct pgtool **out, char **errmsg);

/* The read end of the child's stdout (PGTOOL_PIPE), else -1; pgtool owns it. */
int pgtool_stdout(const struct pgtool *);

/*
 * Close stdout's pipe, reap the child and free p.  Returns 0 if it exited
 * with status 0, LS_ERR_INTERNAL if it could not be waited for (SIGCHLD
 * ignored), else LS_ERR_PG with *errmsg
 *	"<what> failed (exit N): <message>"	(or "(signal N)")
 * where what defaults to the program's name and message is the last line
 * of its stderr that reports an error ("ERROR:", "FATAL:", "error:"...),
 * else its last line, else "no message on stderr".  On success, if note is
 * not NULL, *note is the last line of stderr (a warning; caller frees) or
 * NULL if there was none.  A child that still writes to its stdout pipe
 * when it is closed dies of SIGPIPE, so read it to the end first.
 */
int pgtool_wait(struct pgtool *p, const char *what, char **note,
    char **errmsg);

/* Stop the child with SIGTERM, reap it and free p; NULL is a no-op. */
void pgtool_kill(struct pgtool *p);

/*
 * pgtool_spawn then pgtool_wait: run program to its end.  stdout_fd may
 * not be PGTOOL_PIPE (LS_ERR_INVALID).
 */
int pgtool_run(const char *program, const char *given_path,
    const char *conninfo, const char *const *args, int stdin_fd,
    int stdout_fd, const char *what, char **note, char **errmsg);

/* Does conninfo set password or sslpassword?  NULL or unparsable: false. */
bool pgtool_conninfo_has_secret(const char *conninfo);

/*
 * If arg, a conninfo in our own argv, holds a secret, overwrite it in place
 * with 'x's so that ps and /proc/PID/cmdline no longer show it (keep a copy
 * first), and return true.
 */
bool pgtool_conninfo_scrub(char *arg);

/*
 * Is a connection to host (as PQhost gives it: a name, an address, or a
 * socket directory; NULL or "": the default socket) with sslmode (NULL:
 * libpq's default, prefer) open to a machine on the path posing as the
 * server?  True for a TCP host that is not a loopback address when
 * sslmode is neither verify-ca nor verify-full.
 */
bool pgtool_tls_unverified(const char *host, const char *sslmode);

/*
 * For an open connection c: NULL if it is verified or local, else a
 * warning (caller frees) naming the host, the sslmode and the fix, with
 * option ("--source") as the place to put sslmode=verify-full.
 */
struct pg_conn;
char *pgtool_tls_warning(struct pg_conn *c, const char *option);
/* Log that warning as component, once per process. */
void pgtool_tls_note(struct pg_conn *c, const char *option,
    const char *component);

#endif
