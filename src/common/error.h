/*
 * error.h: the one error convention of liblogship.
 *
 * Every library function returns 0 on success or a negative LS_ERR_* code.
 * Functions that can fail for a reason a person must read take `char **errmsg`:
 * on failure *errmsg is set to a malloc'd one-line message (caller frees);
 * on success it is left untouched.  errmsg may be NULL.
 */
#ifndef LS_ERROR_H
#define LS_ERROR_H

#include <stdarg.h>

#define LS_OK			 0
#define LS_ERR_INTERNAL		-1	/* a bug or an unexpected system state */
#define LS_ERR_NOMEM		-2	/* allocation failed */
#define LS_ERR_IO		-3	/* read/write/fsync failed */
#define LS_ERR_CORRUPT		-4	/* bytes do not decode, checksum mismatch */
#define LS_ERR_EXISTS		-5	/* put_if_absent lost: object already there */
#define LS_ERR_NOTFOUND		-6	/* no such object / file */
#define LS_ERR_INVALID		-7	/* bad argument, bad URL, bad config */
#define LS_ERR_AUTH		-8	/* decryption/authentication failed, wrong key */
#define LS_ERR_VERSION		-9	/* unsupported format version */
#define LS_ERR_CHAIN		-10	/* hash chain broken / gap in numbering */
#define LS_ERR_TOOBIG		-11	/* a length field exceeds a limit */
#define LS_ERR_PG		-12	/* PostgreSQL reported an error */
#define LS_ERR_TRANSIENT	-13	/* worth retrying: network, 5xx */
#define LS_ERR_END		-14	/* end of stream/list, not an error for callers that expect it */
#define LS_ERR_SCHEMA		-15	/* source and target table definitions differ */
#define LS_ERR_NOSPACE		-16	/* a local filesystem is full (ENOSPC, EDQUOT) */

/* Exit statuses of the programs (src/ itself never exits). */
#define LS_EXIT_FAILURE		1	/* the work failed: see the log */
#define LS_EXIT_USAGE		2	/* bad options or input: see the message */

/* Short constant name of an error code ("corrupt", "exists"...). */
const char *ls_strerror(int code);

/*
 * Set *errmsg (if errmsg != NULL) to a formatted message, replacing and freeing
 * any previous message; return code.  Lets callers write
 *	return ls_errf(errmsg, LS_ERR_IO, "open %s: %s", path, strerror(errno));
 */
int ls_errf(char **errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* LS_ERR_NOSPACE for ENOSPC and EDQUOT, else LS_ERR_IO: the code of a
 * failed local write whose errno is e. */
int ls_errno_code(int e);

/* Prefix an existing *errmsg with "prefix: "; return code. */
int ls_errprefix(char **errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
