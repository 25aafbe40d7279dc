/*
 * pgtool.c: running pg_dump and psql (see pgtool.h).
 *
 * The program is found once per run, its environment is ours plus the
 * conninfo's options, and it is started with posix_spawn: every fd it gets
 * is first duplicated above 2 so that the dup2s into 0, 1 and 2 cannot
 * clobber each other, whatever fds the caller (or a daemon with closed
 * standard fds) hands in.  Its stderr goes to a memfd that is only read
 * back, from the end, when it has finished.
 */
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "pg/pgtool.h"

#define TAIL		4096	/* bytes of stderr searched for the message */

extern char **environ;

struct pgtool {
	char		*program;	/* "pg_dump", for messages */
	pid_t		 pid;		/* -1 once reaped */
	int		 out;		/* stdout pipe's read end, or -1 */
	int		 err;		/* the memfd holding its stderr */
};

/* The child's environment and the options that have no variable. */
struct env {
	char		**envp;		/* the first nown entries are ours */
	size_t		 nown;
	char		*dbopt;		/* "--dbname=<conninfo>" or NULL */
};

static int
nomem(char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
}

/* ---- finding the program ---- */

/* dir/name if it is executable; malloc'd, or NULL. */
static char *
executable(const char *dir, size_t dirlen, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%.*s/%s", (int)dirlen, dir, name) < 0)
		return NULL;
	if (access(p, X_OK) == 0)
		return p;
	free(p);
	return NULL;
}

static char *
find_in_path(const char *name)
{
	const char *d = getenv("PATH"), *e;
	char *p;

	for (; d != NULL && *d != '\0'; d = *e ? e + 1 : e) {
		e = d + strcspn(d, ":");
		if (e > d && (p = executable(d, (size_t)(e - d), name)) != NULL)
			return p;
	}
	return NULL;
}

static char *
find_in_pg_config(const char *name)
{
	FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
	char dir[4096], *p = NULL;

	if (f == NULL)
		return NULL;
	if (fgets(dir, sizeof(dir), f) != NULL && dir[0] == '/')
		p = executable(dir, strcspn(dir, "\r\n"), name);
	pclose(f);
	return p;
}

/* "LOGSHIP_PG_DUMP" for "pg_dump". */
static void
override_var(const char *program, char *buf, size_t len)
{
	size_t i = (size_t)snprintf(buf, len, "LOGSHIP_");

	for (; *program != '\0' && i + 1 < len; program++)
		buf[i++] = isalnum((unsigned char)*program) ?
		    (char)toupper((unsigned char)*program) : '_';
	buf[i] = '\0';
}

/* Is the given path (from: "" or the variable it came from) executable? */
static int
check_given(const char *program, const char *given, const char *from,
    char **errmsg)
{
	int e;

	if (access(given, X_OK) == 0)
		return 0;
	e = errno;
	return ls_errf(errmsg, e == ENOENT ? LS_ERR_NOTFOUND : LS_ERR_INVALID,
	    "%s at %s%s%s: %s", program, given, *from ? ", from " : "", from,
	    strerror(e));
}

static int
find_program(const char *program, const char *given, char **pathp,
    char **errmsg)
{
	const char *env, *from = "";
	char var[64];
	int r;

	override_var(program, var, sizeof(var));
	if (given == NULL && (env = getenv(var)) != NULL && *env != '\0') {
		given = env;
		from = var;
	}
	if (given != NULL && (r = check_given(program, given, from,
	    errmsg)) != 0)
		return r;
	if (given != NULL)
		*pathp = strdup(given);
	else if ((*pathp = find_in_path(program)) == NULL)
		*pathp = find_in_pg_config(program);
	if (*pathp != NULL)
		return 0;
	if (given != NULL)
		return nomem(errmsg);
	return ls_errf(errmsg, LS_ERR_NOTFOUND, "%s not found in PATH nor in "
	    "`pg_config --bindir`; install the PostgreSQL client programs or "
	    "set %s to the path of %s", program, var, program);
}

/* ---- the connection, in the environment ---- */

/* Append " keyword='value'" (libpq conninfo quoting) to f. */
static void
conninfo_append(FILE *f, const char *kw, const char *val)
{
	fprintf(f, " %s='", kw);
	for (; *val != '\0'; val++)
		fprintf(f, "%s%c", *val == '\'' || *val == '\\' ? "\\" : "",
		    *val);
	fputc('\'', f);
}

/* Is "NAME=..." one of the first n entries' names? */
static int
env_has(char *const *envp, size_t n, const char *entry)
{
	size_t i, len = strcspn(entry, "=");

	for (i = 0; i < n; i++)
		if (strncmp(envp[i], entry, len) == 0 && envp[i][len] == '=')
			return 1;
	return 0;
}

/*
 * Pass one conninfo option: in its environment variable, or, for the few
 * without one, in --dbname unless it is a secret.
 */
static int
pass_option(const char *program, struct env *env, FILE *db,
    const PQconninfoOption *def, const char *val, char **errmsg)
{
	if (strcmp(def->keyword, "replication") == 0)
		return 0;
	if (def->envvar != NULL) {
		if (asprintf(&env->envp[env->nown], "%s=%s", def->envvar,
		    val) < 0)
			return nomem(errmsg);
		env->nown++;
		return 0;
	}
	if (def->dispchar != NULL && def->dispchar[0] == '*')
		return ls_errf(errmsg, LS_ERR_INVALID, "conninfo option %s "
		    "has no environment variable and would show in %s's argv; "
		    "remove it from the conninfo", def->keyword, program);
	conninfo_append(db, def->keyword, val);
	return 0;
}

static const PQconninfoOption *
find_option(const PQconninfoOption *defs, const char *keyword)
{
	for (; defs->keyword != NULL; defs++)
		if (strcmp(defs->keyword, keyword) == 0)
			return defs;
	return NULL;
}

/* Hand every option set in the conninfo over. */
static int
pass_options(const char *program, struct env *env,
    const PQconninfoOption *opts, FILE *db, char **errmsg)
{
	PQconninfoOption *defs = PQconndefaults();	/* names the env vars */
	const PQconninfoOption *op, *def;
	int r = 0;

	for (op = opts; r == 0 && op->keyword != NULL; op++) {
		if (op->val == NULL)
			continue;
		def = defs != NULL ? find_option(defs, op->keyword) : NULL;
		r = pass_option(program, env, db, def != NULL ? def : op,
		    op->val, errmsg);
	}
	PQconninfoFree(defs);
	return r;
}

/* The child's environment: ours, with the conninfo's options overriding. */
static int
env_build(const char *program, const char *conninfo, struct env *env,
    char **errmsg)
{
	PQconninfoOption *opts, *op;
	char *perr = NULL, *db = NULL;
	size_t n = 0, i, len;
	FILE *f = NULL;
	int r;

	if ((opts = PQconninfoParse(conninfo ? conninfo : "", &perr)) == NULL) {
		r = ls_errf(errmsg, LS_ERR_INVALID, "conninfo: %.*s", perr ?
		    (int)strcspn(perr, "\n") : 13, perr ? perr : "out of memory");
		PQfreemem(perr);
		return r;
	}
	for (op = opts; op->keyword != NULL; op++)
		n++;
	for (i = 0; environ[i] != NULL; i++)
		n++;
	if ((env->envp = calloc(n + 1, sizeof(char *))) == NULL ||
	    (f = open_memstream(&db, &len)) == NULL) {
		r = nomem(errmsg);
		goto out;
	}
	r = pass_options(program, env, opts, f, errmsg);
	fclose(f);
	n = env->nown;
	for (i = 0; environ[i] != NULL; i++)
		if (!env_has(env->envp, env->nown, environ[i]))
			env->envp[n++] = environ[i];
	if (r == 0 && *db != '\0' && asprintf(&env->dbopt, "--dbname=%s",
	    db + 1) < 0) {
		env->dbopt = NULL;
		r = nomem(errmsg);
	}
 out:
	free(db);
	PQconninfoFree(opts);
	return r;
}

static void
env_free(struct env *env)
{
	size_t i;

	for (i = 0; i < env->nown; i++)
		free(env->envp[i]);
	free(env->envp);
	free(env->dbopt);
}

/* path args... --no-password [dbopt]; the strings stay the caller's. */
static const char **
make_argv(const char *path, const char *const *args, const char *dbopt)
{
	const char **argv;
	size_t n = 0, i = 0;

	while (args != NULL && args[n] != NULL)
		n++;
	if ((argv = calloc(n + 4, sizeof(*argv))) == NULL)
		return NULL;
	argv[i++] = path;
	while (args != NULL && *args != NULL)
		argv[i++] = *args++;
	argv[i++] = "--no-password";
	argv[i] = dbopt;
	return argv;
}

/* ---- the child ---- */

/* The child's 0, 1, 2 from fds (-1: /dev/null), signals reset; 0 or errno. */
static int
child_attrs(posix_spawn_file_actions_t *fa, posix_spawnattr_t *sa,
    const int fds[3])
{
	sigset_t none, dfl;
	int i, e = 0;

	for (i = 0; e == 0 && i < 3; i++)
		e = fds[i] >= 0 ? posix_spawn_file_actions_adddup2(fa, fds[i],
		    i) : posix_spawn_file_actions_addopen(fa, i, "/dev/null",
		    i == 0 ? O_RDONLY : O_WRONLY, 0);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGQUIT);
	if (e == 0)
		e = posix_spawnattr_setsigmask(sa, &none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(sa, &dfl);
	if (e == 0)
		e = posix_spawnattr_setflags(sa, POSIX_SPAWN_SETSIGMASK |
		    POSIX_SPAWN_SETSIGDEF);
	return e;
}

/* A close-on-exec copy of fd above 2, or -1 for a negative fd. */
static int
high_dup(int fd)
{
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* Start path with in/out (fd or -1) as stdin/stdout, stderr into p->err. */
static int
start(struct pgtool *p, const char *path, const char **argv, char **envp,
    int in, int out, char **errmsg)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	int fds[3], i, e = 0;

	fds[0] = high_dup(in);
	fds[1] = high_dup(out);
	fds[2] = high_dup(p->err);
	if ((in >= 0 && fds[0] < 0) || (out >= 0 && fds[1] < 0) || fds[2] < 0)
		e = errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&sa);
	if (e == 0 && (e = child_attrs(&fa, &sa, fds)) == 0)
		e = posix_spawn(&p->pid, path, &fa, &sa, (char *const *)argv,
		    envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	for (i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (e == 0)
		return 0;
	p->pid = -1;
	return ls_errf(errmsg, e == ENOENT ? LS_ERR_NOTFOUND : LS_ERR_IO,
	    "run %s: %s", path, strerror(e));
}

static void
pgtool_free(struct pgtool *p)
{
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	free(p->program);
	free(p);
}

/* A new pgtool for program, its stderr memfd open; *pp is set even on error. */
static int
pgtool_new(const char *program, struct pgtool **pp, char **errmsg)
{
	struct pgtool *p;

	if ((*pp = p = calloc(1, sizeof(*p))) == NULL)
		return nomem(errmsg);
	p->pid = -1;
	p->out = -1;
	p->err = -1;
	if ((p->program = strdup(program)) == NULL)
		return nomem(errmsg);
	if ((p->err = memfd_create("pgtool-stderr", MFD_CLOEXEC)) < 0)
		return ls_errf(errmsg, LS_ERR_IO, "%s: stderr file: %s",
		    program, strerror(errno));
	return 0;
}

/* A pipe for stdout: our end in p->out, the child's in *childp. */
static int
stdout_pipe(struct pgtool *p, int *childp, char **errmsg)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) != 0)
		return ls_errf(errmsg, LS_ERR_IO, "pipe for %s: %s",
		    p->program, strerror(errno));
	p->out = fds[0];
	*childp = fds[1];
	return 0;
}

int
pgtool_spawn(const char *program, const char *given_path,
    const char *conninfo, const char *const *args, int stdin_fd,
    int stdout_fd, struct pgtool **out, char **errmsg)
{
	struct pgtool *p = NULL;
	struct env env = { 0 };
	const char **argv = NULL;
	char *path = NULL;
	int child_out = -1, r;

	if (stdin_fd < PGTOOL_DEVNULL || stdout_fd < PGTOOL_PIPE)
		return ls_errf(errmsg, LS_ERR_INVALID, "%s: bad stdin/stdout "
		    "(%d, %d)", program, stdin_fd, stdout_fd);
	if ((r = pgtool_new(program, &p, errmsg)) != 0 ||
	    (r = find_program(program, given_path, &path, errmsg)) != 0 ||
	    (r = env_build(program, conninfo, &env, errmsg)) != 0)
		goto out;
	if ((argv = make_argv(path, args, env.dbopt)) == NULL) {
		r = nomem(errmsg);
		goto out;
	}
	if (stdout_fd == PGTOOL_PIPE &&
	    (r = stdout_pipe(p, &child_out, errmsg)) != 0)
		goto out;
	if ((r = start(p, path, argv, env.envp, stdin_fd,
	    child_out >= 0 ? child_out : stdout_fd, errmsg)) != 0)
		goto out;
	*out = p;
	p = NULL;
 out:
	if (child_out >= 0)
		close(child_out);
	if (p != NULL)
		pgtool_free(p);
	free(argv);
	free(path);
	env_free(&env);
	return r;
}

int
pgtool_stdout(const struct pgtool *p)
{
	return p->out;
}

/* ---- the end ---- */

static int
reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int
is_error(const char *line)
{
	return strstr(line, "ERROR:") != NULL || strstr(line, "FATAL:") !=
	    NULL || strstr(line, "PANIC:") != NULL || strstr(line, "error:") !=
	    NULL;
}

/*
 * The last non-blank line of the end of stderr into buf ("" if none); with
 * errors, the last line reporting an error if there is one, so that psql's
 * "LINE 1: ..." and caret lines or a DETAIL do not hide the ERROR.
 */
static void
stderr_line(int fd, int errors, char *buf, size_t len)
{
	char tail[TAIL + 1], *s, *line, *pick = NULL, *save = NULL;
	off_t size = lseek(fd, 0, SEEK_END);
	ssize_t n;

	n = ls_pread_all(fd, tail, TAIL, size > TAIL ? size - TAIL : 0);
	tail[n < 0 ? 0 : n] = '\0';
	s = tail;
	if (size > TAIL && strchr(s, '\n') != NULL)	/* a partial line */
		s = strchr(s, '\n') + 1;
	for (line = strtok_r(s, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save))
		if (line[strspn(line, " \t")] != '\0' && (pick == NULL ||
		    !errors || !is_error(pick) || is_error(line)))
			pick = line;
	snprintf(buf, len, "%s", pick != NULL ? pick : "");
}

static int
failed(const struct pgtool *p, const char *what, int status, char **errmsg)
{
	char line[TAIL + 1], how[32];

	stderr_line(p->err, 1, line, sizeof(line));
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "signal %d", WTERMSIG(status));
	/* psql exits 2 when the connection to the server went bad */
	return ls_errf(errmsg, WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
	    strcmp(p->program, "psql") == 0 ? LS_ERR_TRANSIENT : LS_ERR_PG,
	    "%s failed (%s): %s", what != NULL ? what : p->program, how,
	    *line != '\0' ? line : "no message on stderr");
}

/* On success, the last line of stderr, malloc'd, or NULL. */
static int
take_note(const struct pgtool *p, char **note, char **errmsg)
{
	char line[TAIL + 1];

	*note = NULL;
	stderr_line(p->err, 0, line, sizeof(line));
	if (*line != '\0' && (*note = strdup(line)) == NULL)
		return nomem(errmsg);
	return 0;
}

int
pgtool_wait(struct pgtool *p, const char *what, char **note, char **errmsg)
{
	int status = 0, r = 0;

	if (p->out >= 0) {
		close(p->out);
		p->out = -1;
	}
	if (reap(p->pid, &status) != 0)
		r = ls_errf(errmsg, LS_ERR_INTERNAL, "%s: wait for %s: %s "
		    "(is SIGCHLD ignored?)", what != NULL ? what : p->program,
		    p->program, strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r = failed(p, what, status, errmsg);
	else if (note != NULL)
		r = take_note(p, note, errmsg);
	pgtool_free(p);
	return r;
}

void
pgtool_kill(struct pgtool *p)
{
	int status;

	if (p == NULL)
		return;
	if (p->out >= 0) {
		close(p->out);
		p->out = -1;
	}
	if (kill(p->pid, SIGTERM) == 0)
		reap(p->pid, &status);
	pgtool_free(p);
}

int
pgtool_run(const char *program, const char *given_path,
    const char *conninfo, const char *const *args, int stdin_fd,
    int stdout_fd, const char *what, char **note, char **errmsg)
{
	struct pgtool *p = NULL;
	int r;

	if (stdout_fd == PGTOOL_PIPE)
		return ls_errf(errmsg, LS_ERR_INVALID, "%s: pgtool_run cannot "
		    "give a pipe for stdout", program);
	if ((r = pgtool_spawn(program, given_path, conninfo, args, stdin_fd,
	    stdout_fd, &p, errmsg)) != 0)
		return r;
	return pgtool_wait(p, what, note, errmsg);
}

bool
pgtool_conninfo_has_secret(const char *conninfo)
{
	PQconninfoOption *opts, *op;
	bool secret = false;

	if (conninfo == NULL || (opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return false;
	for (op = opts; op->keyword != NULL; op++)
		if (op->val != NULL && *op->val != '\0' &&
		    (strcmp(op->keyword, "password") == 0 ||
		    strcmp(op->keyword, "sslpassword") == 0))
			secret = true;
	PQconninfoFree(opts);
	return secret;
}

bool
pgtool_conninfo_scrub(char *arg)
{
	if (!pgtool_conninfo_has_secret(arg))
		return false;
	memset(arg, 'x', strlen(arg));
	return true;
}

bool
pgtool_tls_unverified(const char *host, const char *sslmode)
{
	if (host == NULL || *host == '\0' || *host == '/' || *host == '@' ||
	    strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	    strcmp(host, "::1") == 0)
		return false;
	return sslmode == NULL || (strcmp(sslmode, "verify-ca") != 0 &&
	    strcmp(sslmode, "verify-full") != 0);
}

char *
pgtool_tls_warning(PGconn *c, const char *option)
{
	PQconninfoOption *opts = PQconninfo(c), *op;
	const char *mode = NULL, *host = PQhost(c);
	char *msg = NULL;

	for (op = opts; op != NULL && op->keyword != NULL; op++)
		if (strcmp(op->keyword, "sslmode") == 0)
			mode = op->val;
	if (pgtool_tls_unverified(host, mode) && asprintf(&msg, "the "
	    "connection to %s does not verify the server (sslmode=%s): a "
	    "machine on the path could pose as it; put sslmode=verify-full "
	    "(and sslrootcert) in %s", host, mode ? mode : "prefer",
	    option) < 0)
		msg = NULL;
	PQconninfoFree(opts);
	return msg;
}

void
pgtool_tls_note(PGconn *c, const char *option, const char *component)
{
	static int told;
	char *w;

	if (__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
		return;
	if ((w = pgtool_tls_warning(c, option)) != NULL)
		log_warn(component, "%s", w);
	free(w);
}
