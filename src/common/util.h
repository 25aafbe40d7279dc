/*
 * util.h: small helpers shared by liblogship: I/O, hex, time, LSNs.
 * One convention, the library's (error.h): a negative LS_ERR_* code on
 * failure; 0, or a count, on success.  The I/O helpers leave errno set
 * for the caller's message.
 */
#ifndef LS_UTIL_H
#define LS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* write(2) until all of buf is written; 0, or LS_ERR_IO with errno set. */
int ls_write_all(int fd, const void *buf, size_t len);
/*
 * pread(2) until len bytes or EOF; the bytes read (fewer at EOF), or
 * LS_ERR_IO with errno set.
 */
ssize_t ls_pread_all(int fd, void *buf, size_t len, off_t off);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void ls_hex(const uint8_t *buf, size_t len, char *out);
/* Parse exactly 2*len hex digits; 0 or LS_ERR_INVALID. */
int ls_unhex(const char *s, uint8_t *buf, size_t len);

/* Wall clock, microseconds since the Unix epoch. */
int64_t ls_now_us(void);
/* Monotonic clock, microseconds: for intervals a wall-clock step must not move. */
int64_t ls_mono_us(void);
/* "2026-11-21T05:44:30.123456Z" into out (at least 32 bytes). */
void ls_format_time(int64_t us, char *out, size_t outlen);
/*
 * Parse "YYYY-MM-DD HH:MM:SS[.ffffff][Z|+hh[:mm]]" (T or space); 0, or
 * LS_ERR_INVALID for anything else, a field out of range included
 * (2026-02-30 is refused, not taken for March 2).
 */
int ls_parse_time(const char *s, int64_t *us);


/*
 * "16/B374D848" <-> uint64.  The parser takes exactly what PostgreSQL
 * prints: 1 to 8 hex digits, '/', 1 to 8 hex digits (no sign, no "0x",
 * no spaces); 0 or LS_ERR_INVALID.
 */
void ls_lsn_format(uint64_t lsn, char out[32]);
int ls_lsn_parse(const char *s, uint64_t *lsn);

/*
 * Sizes and durations as people write them in options and config files:
 * digits, an optional fraction (".5"), then a unit written right after
 * the number, no space.  Sizes: none or B (bytes), K/KB/KiB, M/MB/MiB,
 * G/GB/GiB, T/TB/TiB (powers of 1024; case-insensitive).  Durations:
 * none or s (seconds), ms, m/min, h, d, w.  Nothing else: no sign, space,
 * "inf", "nan", hex or exponent.  0, or LS_ERR_INVALID (out of range
 * included).  ls_parse_duration_us: more than 0 and at most 100 years,
 * in microseconds ("7d", "2w", "90").
 */
int ls_parse_size(const char *s, int64_t *bytes);
int ls_parse_duration(const char *s, double *seconds);
int ls_parse_duration_us(const char *s, int64_t *us);

/* Retry delay for attempt n (0-based): 0.5 s doubling to 30 s, +-25% jitter. */
int64_t ls_backoff_us(int attempt);

/* dir, or where temp files go when it is NULL: $TMPDIR, else /tmp. */
const char *ls_temp_dir(const char *dir);

/*
 * An anonymous read-write file in dir (NULL: $TMPDIR, else /tmp): O_TMPFILE,
 * or a mkstemp name unlinked at once.  The fd, or LS_ERR_IO with *errmsg.
 */
int ls_temp_fd(const char *dir, char **errmsg);

/*
 * Read a 32-byte key file: 32 raw bytes or 64 hex digits (newline allowed).
 * A file that group or others may read is refused (secfile.h).
 */
int ls_key_load(const char *path, uint8_t key[32], char **errmsg);

#endif
