/* log.c: line-oriented text or JSON logging (see log.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

static struct {
	FILE	*fp;
	char	*path;
	int	 json;
	int	 verbose;
} lg;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* The log file for appending, created 0600 whatever the umask. */
static FILE *
open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	FILE *fp;

	if (fd < 0)
		return NULL;
	if ((fp = fdopen(fd, "a")) == NULL)
		close(fd);
	return fp;
}

int
log_init(const char *format, const char *path, int verbose, char **errmsg)
{
	if (format != NULL && strcmp(format, "text") != 0 &&
	    strcmp(format, "json") != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "--log-format %s: use "
		    "text or json", format);
	lg.json = format != NULL && strcmp(format, "json") == 0;
	lg.verbose = verbose;
	free(lg.path);
	lg.path = path != NULL ? strdup(path) : NULL;
	lg.fp = NULL;
	if (path != NULL && (lg.fp = open_log(path)) == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "log file %s: %s", path,
		    strerror(errno));
	if (lg.fp != NULL)
		setvbuf(lg.fp, NULL, _IOLBF, 0);
	return 0;
}

void
log_reopen(void)
{
	FILE *fp;

	if (lg.path == NULL || (fp = open_log(lg.path)) == NULL)
		return;
	setvbuf(fp, NULL, _IOLBF, 0);
	if (lg.fp != NULL)
		fclose(lg.fp);
	lg.fp = fp;
}

static void
emit_json(FILE *fp, const char *when, enum log_level level, const char *sub,
    const char *msg)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "time", when, "level",
	    level_names[level], "sub", sub, "msg", msg);
	char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (line != NULL)
		fprintf(fp, "%s\n", line);
	free(line);
	json_decref(o);
}

/*
 * msg with control characters escaped (\n, \r, \xNN; tabs kept), so that
 * text a store or a server supplied (a relation name, an error body) cannot
 * end the line and forge another event.  NULL when out of memory.
 */
static char *
one_line(const char *msg)
{
	const unsigned char *p;
	char *out, *o;

	if ((out = malloc(4 * strlen(msg) + 1)) == NULL)
		return NULL;
	for (p = (const unsigned char *)msg, o = out; *p != '\0'; p++) {
		if (*p == '\n' && p[1] == '\0')
			break;		/* a final newline: the line's own */
		if (*p == '\n' || *p == '\r')
			o += sprintf(o, "\\%c", *p == '\n' ? 'n' : 'r');
		else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			o += sprintf(o, "\\x%02x", *p);
		else
			*o++ = (char)*p;
	}
	*o = '\0';
	return out;
}

void
log_msg(enum log_level level, const char *sub, const char *fmt, ...)
{
	FILE *fp = lg.fp != NULL ? lg.fp : stderr;
	char when[40], *msg = NULL, *line = NULL;
	va_list ap;

	if ((int)level > (int)LOG_INFO + lg.verbose)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		return;
	ls_format_time(ls_now_us(), when, sizeof(when));
	if (lg.json)
		emit_json(fp, when, level, sub, msg);
	else if ((line = one_line(msg)) != NULL)
		fprintf(fp, "%s %-5s %s: %s\n", when, level_names[level], sub,
		    line);
	fflush(fp);
	free(line);
	free(msg);
}
