/*
 * test_pgtool.c: running PostgreSQL client programs (pgtool.c).
 *
 * A fake client, a shell script in a fresh directory under $TMPDIR (or
 * /tmp), is selected through LOGSHIP_PSQL, LOGSHIP_PG_DUMP or PATH.  It
 * records its argv (one argument a line) and environment, then does what
 * $FAKE_MODE says: fail like psql, write to stdout, copy stdin, sleep...
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "pg/pgtool.h"
#include "tap.h"

#define CONNINFO	"host=127.0.0.1 port=5 user=u password=s3cret dbname=d"

static char *tmpdir;

static const char script[] =
    "#!/bin/sh\n"
    "for a in \"$0\" \"$@\"; do printf '%%s\\n' \"$a\"; done > %s/argv\n"
    "env > %s/env\n"
    "case \"$FAKE_MODE\" in\n"
    "psqlfail) echo 'psql: warning: first' >&2\n"
    "	echo 'psql:/x/pre.sql:3: ERROR:  relation \"t\" already exists' >&2\n"
    "	echo 'LINE 1: CREATE TABLE t ();' >&2\n"
    "	echo '                     ^' >&2\n"
    "	exit 3 ;;\n"
    "lastline) echo one >&2; printf 'two\\n\\n' >&2; exit 1 ;;\n"
    "lost) echo 'psql: error: connection to server was lost' >&2; exit 2 ;;\n"
    "silent) exit 1 ;;\n"
    "signal) kill -TERM $$ ;;\n"
    "warn) echo 'WARNING:  no privileges were granted' >&2 ;;\n"
    "echo) echo 'out: hello' ;;\n"
    "cat) exec cat ;;\n"
    "flood) exec yes 'out: more' ;;\n"
    "sleep) exec sleep 30 ;;\n"
    "esac\n"
    "exit 0\n";

/* "<tmpdir>/<rel>", malloc'd. */
static char *
tpath(const char *rel)
{
	char *p;

	if (asprintf(&p, "%s/%s", tmpdir, rel) == -1)
		abort();
	return p;
}

/* The whole of file rel, malloc'd ("" if missing). */
static char *
slurp(const char *rel)
{
	char *path = tpath(rel), *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r"), *m = open_memstream(&buf, &len);
	int c;

	while (f != NULL && (c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(m);
	if (f != NULL)
		fclose(f);
	free(path);
	return buf;
}

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

static void
write_script(const char *rel)
{
	char *path = tpath(rel);
	FILE *f = fopen(path, "w");

	if (f == NULL)
		abort();
	fprintf(f, script, tmpdir, tmpdir);
	fclose(f);
	chmod(path, 0755);
	free(path);
}

/* cfg/pg_config, whose --bindir is bin. */
static void
write_pg_config(void)
{
	char *dir = tpath("cfg"), *path = tpath("cfg/pg_config");
	FILE *f;

	mkdir(dir, 0755);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "#!/bin/sh\necho %s/bin\n", tmpdir);
	fclose(f);
	chmod(path, 0755);
	free(dir);
	free(path);
}

static void
reset_records(void)
{
	char *a = tpath("argv"), *e = tpath("env");

	unlink(a);
	unlink(e);
	free(a);
	free(e);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Run the fake psql in mode with CONNINFO; r, and errmsg into *err. */
static int
run_psql(const char *mode, const char *conninfo, char **note, char **err)
{
	const char *args[] = { "-X", "-q", "-v", "ON_ERROR_STOP=1",
	    "--single-transaction", "-f", "/x/pre.sql", "-c", "SELECT 1",
	    NULL };

	setenv("FAKE_MODE", mode, 1);
	reset_records();
	return pgtool_run("psql", NULL, conninfo, args, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, "restore pre-data", note, err);
}

static void
test_secrets(void)
{
	char *err = NULL, *argv, *env, *fake = tpath("fake");
	int r;

	setenv("PGPASSWORD", "from-our-env", 1);
	r = run_psql("ok", CONNINFO, NULL, &err);
	ok(r == 0, "a successful run returns 0 (%s)", err ? err : "");
	argv = slurp("argv");
	env = slurp("env");
	ok(has_line(argv, fake), "argv[0] is $LOGSHIP_PSQL");
	ok(strstr(argv, "-X\n-q\n-v\nON_ERROR_STOP=1\n--single-transaction\n"
	    "-f\n/x/pre.sql\n-c\nSELECT 1\n--no-password\n") != NULL,
	    "the args in order, then --no-password");
	ok(strstr(argv, "--dbname") == NULL,
	    "no --dbname when every option has a variable");
	ok(strstr(argv, "s3cret") == NULL, "the password is not in argv");
	ok(strstr(argv, "127.0.0.1") == NULL && !has_line(argv, "u"),
	    "nor are the other options");
	ok(has_line(env, "PGPASSWORD=s3cret"), "the password is in PGPASSWORD");
	ok(strstr(env, "from-our-env") == NULL,
	    "replacing our own PGPASSWORD");
	ok(has_line(env, "PGHOST=127.0.0.1") && has_line(env, "PGPORT=5") &&
	    has_line(env, "PGUSER=u") && has_line(env, "PGDATABASE=d"),
	    "host, port, user and dbname are in PG* variables");
	ok(has_line(env, "FAKE_MODE=ok"), "the rest of our environment is kept");
	unsetenv("PGPASSWORD");
	free(argv);
	free(env);
	free(fake);
}

static void
test_conninfo_options(void)
{
	char *err = NULL, *argv, *env;
	int r;

	r = run_psql("ok", "postgresql://u:s3cret@127.0.0.1:5/d?"
	    "keepalives=1&replication=database", NULL, &err);
	ok(r == 0, "a URI conninfo is accepted (%s)", err ? err : "");
	argv = slurp("argv");
	env = slurp("env");
	ok(has_line(argv, "--dbname=keepalives='1'"),
	    "an option without a variable goes in --dbname");
	ok(strstr(argv, "replication") == NULL && strstr(env,
	    "PGREPLICATION") == NULL, "replication is dropped");
	ok(strstr(argv, "s3cret") == NULL && has_line(env,
	    "PGPASSWORD=s3cret"), "the URI's password is in PGPASSWORD only");
	free(argv);
	free(env);

	r = run_psql("ok", "host=h sslpassword=k3y", NULL, &err);
	ok(r == LS_ERR_INVALID && err && strstr(err, "sslpassword") &&
	    strstr(err, "psql's argv") && !strstr(err, "k3y"),
	    "a secret without a variable is refused (%s)", err ? err : "");
	argv = slurp("argv");
	ok(*argv == '\0', "and the program is not run");
	free(argv);
	free(err);
	err = NULL;

	r = run_psql("ok", "host='unterminated", NULL, &err);
	ok(r == LS_ERR_INVALID && err && strncmp(err, "conninfo: ", 10) == 0 &&
	    !strchr(err, '\n'), "a bad conninfo is refused in one line (%s)",
	    err ? err : "");
	free(err);
}

static void
test_failures(void)
{
	char *err = NULL, *note = NULL;
	int r;

	r = run_psql("psqlfail", CONNINFO, &note, &err);
	ok(r == LS_ERR_PG, "a failing program gives LS_ERR_PG");
	ok(err && strcmp(err, "restore pre-data failed (exit 3): psql:/x/pre.sql:"
	    "3: ERROR:  relation \"t\" already exists") == 0,
	    "with its status and its ERROR line, not the caret under it (%s)",
	    err ? err : "");
	ok(note == NULL, "no note on failure");
	free(err);
	err = NULL;

	r = run_psql("lastline", CONNINFO, NULL, &err);
	ok(r == LS_ERR_PG && err && strcmp(err, "restore pre-data failed "
	    "(exit 1): two") == 0, "without an error line, the last line (%s)",
	    err ? err : "");
	free(err);
	err = NULL;

	r = run_psql("lost", CONNINFO, NULL, &err);
	ok(r == LS_ERR_TRANSIENT, "psql's exit 2 (the connection went bad) is "
	    "worth a retry (%s)", err ? err : "");
	free(err);
	err = NULL;

	r = run_psql("silent", CONNINFO, NULL, &err);
	ok(r == LS_ERR_PG && err && strcmp(err, "restore pre-data failed "
	    "(exit 1): no message on stderr") == 0, "a silent failure (%s)",
	    err ? err : "");
	free(err);
	err = NULL;

	r = run_psql("signal", CONNINFO, NULL, &err);
	ok(r == LS_ERR_PG && err && strcmp(err, "restore pre-data failed "
	    "(signal 15): no message on stderr") == 0, "death by a signal (%s)",
	    err ? err : "");
	free(err);
	err = NULL;

	r = run_psql("warn", CONNINFO, &note, &err);
	ok(r == 0 && note && strcmp(note, "WARNING:  no privileges were "
	    "granted") == 0, "on success the last stderr line is the note (%s)",
	    note ? note : "(null)");
	free(note);
	note = (char *)"x";
	r = run_psql("ok", CONNINFO, &note, &err);
	ok(r == 0 && note == NULL, "and NULL when stderr is empty");
}

/* Read fd to its end, malloc'd, length in *lenp. */
static char *
read_all(int fd, size_t *lenp)
{
	char *buf = NULL, chunk[8192];
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		fwrite(chunk, 1, (size_t)n, m);
	fclose(m);
	*lenp = len;
	return buf;
}

static void
test_stdio(void)
{
	struct pgtool *t = NULL;
	char *err = NULL, *out, *in_path = tpath("in"), *out_path = tpath("out");
	size_t len, i;
	FILE *f;
	int r, fd, ofd;

	setenv("FAKE_MODE", "echo", 1);
	r = pgtool_spawn("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_PIPE, &t, &err);
	ok(r == 0 && pgtool_stdout(t) >= 0, "spawn with a stdout pipe");
	out = read_all(pgtool_stdout(t), &len);
	ok(len == 11 && memcmp(out, "out: hello\n", 11) == 0,
	    "its stdout is read through pgtool_stdout");
	ok(pgtool_wait(t, NULL, NULL, &err) == 0, "and it is reaped");
	free(out);

	/* 1 MB through stdin and a stdout pipe: more than a pipe holds */
	if ((f = fopen(in_path, "w")) == NULL)
		abort();
	for (i = 0; i < 1 << 20; i++)
		fputc("0123456789abcdef\n"[i % 17], f);
	fclose(f);
	fd = open(in_path, O_RDONLY);
	setenv("FAKE_MODE", "cat", 1);
	t = NULL;
	r = pgtool_spawn("psql", NULL, CONNINFO, NULL, fd, PGTOOL_PIPE, &t,
	    &err);
	close(fd);
	out = read_all(t ? pgtool_stdout(t) : -1, &len);
	ok(r == 0 && len == 1 << 20 && out[0] == '0' && out[17] == '0' &&
	    out[(1 << 20) - 1] == "0123456789abcdef\n"[((1 << 20) - 1) % 17],
	    "stdin_fd feeds the child (1 MB back through stdout, %zu)", len);
	ok(t && pgtool_wait(t, NULL, NULL, &err) == 0, "cat exits 0");
	free(out);

	/* stdin from a pipe we fill, stdout into a file we give */
	{
		int p[2];

		if (pipe(p) != 0 || write(p[1], "SELECT 1;\n", 10) != 10)
			abort();
		close(p[1]);
		ofd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		r = pgtool_run("psql", NULL, CONNINFO, NULL, p[0], ofd, NULL,
		    NULL, &err);
		close(p[0]);
		close(ofd);
	}
	out = slurp("out");
	ok(r == 0 && strcmp(out, "SELECT 1;\n") == 0,
	    "pgtool_run: a pipe as stdin, a file as stdout");
	free(out);

	/* 0 as stdin and 1 as stdout: no clobbering between the dup2s */
	{
		int save0 = dup(0), save1 = dup(1);

		fd = open(in_path, O_RDONLY);
		ofd = open(out_path, O_WRONLY | O_TRUNC);
		dup2(ofd, 0);	/* a daemon's odd fds: stdout file on 0 */
		dup2(fd, 1);	/* and the input on 1 */
		r = pgtool_run("psql", NULL, CONNINFO, NULL, 1, 0, NULL, NULL,
		    &err);
		dup2(save0, 0);
		dup2(save1, 1);
		close(save0);
		close(save1);
		close(fd);
		close(ofd);
	}
	out = slurp("out");
	ok(r == 0 && strlen(out) == 1 << 20,
	    "swapped fds 0 and 1 reach the child intact (%zu bytes)",
	    strlen(out));
	free(out);

	r = pgtool_run("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_PIPE, NULL, NULL, &err);
	ok(r == LS_ERR_INVALID, "pgtool_run refuses a stdout pipe");
	free(err);
	free(in_path);
	free(out_path);
}

static void
test_kill(void)
{
	struct pgtool *t = NULL;
	char *err = NULL;
	struct timespec a, b;
	int r;

	setenv("FAKE_MODE", "sleep", 1);
	clock_gettime(CLOCK_MONOTONIC, &a);
	r = pgtool_spawn("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_PIPE, &t, &err);
	ok(r == 0, "spawn a sleeper");
	pgtool_kill(t);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ok(b.tv_sec - a.tv_sec < 10, "pgtool_kill stops it at once");
	ok(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD,
	    "and reaps it");
	pgtool_kill(NULL);

	setenv("FAKE_MODE", "flood", 1);
	r = pgtool_spawn("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_PIPE, &t, &err);
	r = r ? r : pgtool_wait(t, "flood", NULL, &err);
	ok(r == LS_ERR_PG && err && strstr(err, "flood failed (signal 13)"),
	    "waiting without reading ends a writer by SIGPIPE (%s)",
	    err ? err : "");
	free(err);
}

static void
test_lookup(void)
{
	char *err = NULL, *argv, *dir = tpath("bin"), *bin = tpath("bin/psql");
	char *dump = tpath("fake_dump"), *cfgdir = tpath("cfg"), *path = NULL;
	const char *old = getenv("PATH");
	int r;

	/* pg_dump through LOGSHIP_PG_DUMP, its name in messages */
	setenv("LOGSHIP_PG_DUMP", dump, 1);
	setenv("FAKE_MODE", "silent", 1);
	reset_records();
	r = pgtool_run("pg_dump", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, NULL, NULL, &err);
	argv = slurp("argv");
	ok(r == LS_ERR_PG && has_line(argv, dump) && err &&
	    strcmp(err, "pg_dump failed (exit 1): no message on stderr") == 0,
	    "LOGSHIP_PG_DUMP selects pg_dump; what defaults to its name (%s)",
	    err ? err : "");
	free(argv);
	free(err);
	err = NULL;

	/* a given path wins over the variable */
	setenv("FAKE_MODE", "ok", 1);
	reset_records();
	r = pgtool_run("pg_dump", bin, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, NULL, NULL, &err);
	argv = slurp("argv");
	ok(r == 0 && has_line(argv, bin), "a given path wins over "
	    "LOGSHIP_PG_DUMP");
	free(argv);
	unsetenv("LOGSHIP_PG_DUMP");

	/* PATH, when the variable is unset or empty */
	setenv("LOGSHIP_PSQL", "", 1);
	if (asprintf(&path, "%s:%s", dir, old ? old : "/usr/bin:/bin") < 0)
		abort();
	setenv("PATH", path, 1);
	reset_records();
	r = pgtool_run("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, NULL, NULL, &err);
	argv = slurp("argv");
	ok(r == 0 && has_line(argv, bin), "psql is found in PATH (%s)",
	    err ? err : "");
	free(argv);

	/* `pg_config --bindir`, when PATH has pg_config but not psql */
	setenv("PATH", cfgdir, 1);
	reset_records();
	r = pgtool_run("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, NULL, NULL, &err);
	argv = slurp("argv");
	ok(r == 0 && has_line(argv, bin), "psql is found in `pg_config "
	    "--bindir` (%s)", err ? err : "");
	free(argv);

	/* nowhere: not in PATH, no pg_config */
	setenv("PATH", tmpdir, 1);
	r = pgtool_run("psql", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, NULL, NULL, &err);
	ok(r == LS_ERR_NOTFOUND && err && strstr(err, "psql not found") &&
	    strstr(err, "LOGSHIP_PSQL"), "a missing program says what to do "
	    "(%s)", err ? err : "");
	setenv("PATH", path, 1);

	r = pgtool_run("psql", "/nonexistent/psql", CONNINFO, NULL,
	    PGTOOL_DEVNULL, PGTOOL_DEVNULL, NULL, NULL, &err);
	ok(r == LS_ERR_NOTFOUND && err && strcmp(err, "psql at "
	    "/nonexistent/psql: No such file or directory") == 0,
	    "a given path that does not exist (%s)", err ? err : "");
	setenv("LOGSHIP_PG_DUMP", "/nonexistent/pg_dump", 1);
	r = pgtool_run("pg_dump", NULL, CONNINFO, NULL, PGTOOL_DEVNULL,
	    PGTOOL_DEVNULL, NULL, NULL, &err);
	ok(r != 0 && err && strstr(err, ", from LOGSHIP_PG_DUMP: "),
	    "a LOGSHIP_PG_DUMP that cannot run is named (%s)", err ? err : "");
	unsetenv("LOGSHIP_PG_DUMP");
	free(err);
	setenv("PATH", old ? old : "/usr/bin:/bin", 1);
	free(path);
	free(dir);
	free(bin);
	free(dump);
	free(cfgdir);
}

/* Which connections deserve the "not verified" warning. */
static void
test_tls(void)
{
	ok(!pgtool_tls_unverified(NULL, NULL) &&
	    !pgtool_tls_unverified("/var/run/postgresql", "prefer") &&
	    !pgtool_tls_unverified("localhost", "disable") &&
	    !pgtool_tls_unverified("127.0.0.1", "prefer") &&
	    !pgtool_tls_unverified("::1", NULL),
	    "sockets and loopback addresses need no TLS");
	ok(pgtool_tls_unverified("db1.example.com", NULL) &&
	    pgtool_tls_unverified("10.0.0.5", "prefer") &&
	    pgtool_tls_unverified("db1", "require"),
	    "a network host without verification is flagged (require too)");
	ok(!pgtool_tls_unverified("db1", "verify-full") &&
	    !pgtool_tls_unverified("db1", "verify-ca"),
	    "verify-full and verify-ca are not");
	ok(pgtool_conninfo_has_secret(CONNINFO) &&
	    pgtool_conninfo_has_secret("postgresql://u:pw@h/d") &&
	    !pgtool_conninfo_has_secret("host=h user=u") &&
	    !pgtool_conninfo_has_secret("password=") &&
	    !pgtool_conninfo_has_secret("x=y z") &&
	    !pgtool_conninfo_has_secret(NULL),
	    "conninfo secrets: password= and a URI's user:pw, not an empty one");
	{
		char arg[] = "host=h password=pw", plain[] = "host=h";

		ok(pgtool_conninfo_scrub(arg) && strspn(arg, "x") == strlen(arg) &&
		    !pgtool_conninfo_scrub(plain) && strcmp(plain, "host=h") == 0,
		    "scrub overwrites only a conninfo that holds a secret");
	}
}

int
main(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *fake;

	if (asprintf(&tmpdir, "%s/test_pgtool.XXXXXX", base) < 0 ||
	    mkdtemp(tmpdir) == NULL) {
		diag("mkdtemp: %s", strerror(errno));
		return 1;
	}
	write_script("fake");
	write_script("fake_dump");
	fake = tpath("bin");
	mkdir(fake, 0755);
	free(fake);
	write_script("bin/psql");
	write_pg_config();
	fake = tpath("fake");
	setenv("LOGSHIP_PSQL", fake, 1);
	free(fake);
	unsetenv("LOGSHIP_PG_DUMP");

	test_secrets();
	test_tls();
	test_conninfo_options();
	test_failures();
	test_stdio();
	test_kill();
	test_lookup();

	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(tmpdir);
	return tap_done();
}
