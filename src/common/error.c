/* error.c: error codes and message helpers (see error.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

const char *
ls_strerror(int code)
{
	switch (code) {
	case LS_OK:		return "ok";
	case LS_ERR_NOMEM:	return "out of memory";
	case LS_ERR_IO:		return "i/o error";
	case LS_ERR_CORRUPT:	return "corrupt";
	case LS_ERR_EXISTS:	return "exists";
	case LS_ERR_NOTFOUND:	return "not found";
	case LS_ERR_INVALID:	return "invalid";
	case LS_ERR_AUTH:	return "authentication failed";
	case LS_ERR_VERSION:	return "unsupported version";
	case LS_ERR_CHAIN:	return "chain broken";
	case LS_ERR_TOOBIG:	return "too big";
	case LS_ERR_PG:		return "postgresql error";
	case LS_ERR_TRANSIENT:	return "transient error";
	case LS_ERR_END:	return "end";
	case LS_ERR_SCHEMA:	return "schema mismatch";
	case LS_ERR_NOSPACE:	return "no space left on device";
	default:		return "internal error";
	}
}

int
ls_errno_code(int e)
{
	return e == ENOSPC || e == EDQUOT ? LS_ERR_NOSPACE : LS_ERR_IO;
}

static int
set_msg(char **errmsg, char *msg)
{
	if (errmsg == NULL) {
		free(msg);
		return 0;
	}
	free(*errmsg);
	*errmsg = msg;
	return 0;
}

int
ls_errf(char **errmsg, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (errmsg == NULL)
		return code;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	set_msg(errmsg, msg != NULL ? msg : strdup(ls_strerror(code)));
	return code;
}

int
ls_errprefix(char **errmsg, int code, const char *fmt, ...)
{
	va_list ap;
	char *prefix = NULL, *msg = NULL;

	if (errmsg == NULL)
		return code;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0)
		prefix = NULL;
	va_end(ap);
	if (prefix == NULL)
		return code;
	if (asprintf(&msg, "%s: %s", prefix,
	    *errmsg != NULL ? *errmsg : ls_strerror(code)) < 0)
		msg = NULL;
	free(prefix);
	if (msg != NULL)
		set_msg(errmsg, msg);
	return code;
}
