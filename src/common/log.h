/*
 * log.h: one line per event — time, level, subsystem, message.
 * Text: "2026-11-21T05:44:30.123456Z INFO  agent: segment uploaded segno=7".
 * JSON: {"time":…,"level":"info","sub":"agent","msg":"…"}.
 * Used by programs only (src/ returns errors instead of logging), except for
 * the once-only notices a backend must give (e.g. an S3 fallback).
 */
#ifndef LS_LOG_H
#define LS_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* format: "text" or "json"; path NULL means stderr.  0 or LS_ERR_INVALID. */
int log_init(const char *format, const char *path, int verbose, char **errmsg);
/* Reopen the log file (SIGHUP); a no-op for stderr. */
void log_reopen(void);
void log_msg(enum log_level, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(sub, ...)	log_msg(LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...)	log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...)	log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...)	log_msg(LOG_DEBUG, sub, __VA_ARGS__)

#endif
