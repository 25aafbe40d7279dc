/* util.c: I/O, hex, time and LSN helpers (see util.h). */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/secfile.h"
#include "common/util.h"

int
ls_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return LS_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
ls_pread_all(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return LS_ERR_IO;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

void
ls_hex(const uint8_t *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
ls_unhex(const char *s, uint8_t *buf, size_t len)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if ((hi = hexval(s[2 * i])) < 0 || (lo = hexval(s[2 * i + 1])) < 0)
			return LS_ERR_INVALID;
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int64_t
ls_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
ls_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
ls_format_time(int64_t us, char *out, size_t outlen)
{
	time_t t = (time_t)(us / 1000000);
	int64_t frac = us % 1000000;
	struct tm tm;
	char base[32];

	if (frac < 0) {
		frac += 1000000;
		t--;
	}
	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%06" PRId64 "Z", base, frac);
}

/* Parse the optional ".ffffff" fraction and zone after the seconds. */
static int
parse_frac_zone(const char *p, int64_t *frac_us, int64_t *off_s)
{
	int64_t scale = 100000;
	int hh = 0, mm = 0, sign, len;

	*frac_us = 0;
	*off_s = 0;
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			*frac_us += scale > 0 ? (*p - '0') * scale : 0;
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0' ? 0 : -1;
	if (*p == '\0')
		return 0;
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	for (len = 0; isdigit((unsigned char)p[len]); len++)
		;
	if (len == 2 && p[2] == ':' && isdigit((unsigned char)p[3]) &&
	    isdigit((unsigned char)p[4]) && p[5] == '\0') {
		hh = (p[0] - '0') * 10 + p[1] - '0';		/* +hh:mm */
		mm = (p[3] - '0') * 10 + p[4] - '0';
	} else if ((len == 2 || len == 4) && p[len] == '\0') {
		hh = (p[0] - '0') * 10 + p[1] - '0';		/* +hh, +hhmm */
		mm = len == 4 ? (p[2] - '0') * 10 + p[3] - '0' : 0;
	} else
		return -1;
	if (hh > 15 || mm > 59)
		return -1;
	*off_s = sign * (hh * 3600 + mm * 60);
	return 0;
}

static int
days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int
ls_parse_time(const char *s, int64_t *us)
{
	struct tm tm = { 0 };
	int n = 0;
	int64_t frac, off;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%*[ T]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
		return LS_ERR_INVALID;
	if (parse_frac_zone(s + n, &frac, &off) != 0)
		return LS_ERR_INVALID;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > days_in_month(tm.tm_year, tm.tm_mon) ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59 ||
	    tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
		return LS_ERR_INVALID;	/* never normalised into another day */
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	*us = ((int64_t)t - off) * 1000000 + frac;
	return 0;
}

void
ls_lsn_format(uint64_t lsn, char out[32])
{
	snprintf(out, 32, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

/* One half of an LSN: 1 to 8 hex digits, then stop; end or NULL. */
static const char *
lsn_half(const char *s, char stop, uint32_t *v)
{
	const char *p;
	uint32_t x = 0;

	for (p = s; isxdigit((unsigned char)*p); p++) {
		if (p - s == 8)
			return NULL;
		x = (x << 4) | (uint32_t)(isdigit((unsigned char)*p) ?
		    *p - '0' : tolower((unsigned char)*p) - 'a' + 10);
	}
	if (p == s || *p != stop)
		return NULL;
	*v = x;
	return p;
}

int
ls_lsn_parse(const char *s, uint64_t *lsn)
{
	uint32_t hi, lo;
	const char *p;

	if (s == NULL || (p = lsn_half(s, '/', &hi)) == NULL ||
	    lsn_half(p + 1, '\0', &lo) == NULL)
		return LS_ERR_INVALID;
	*lsn = ((uint64_t)hi << 32) | lo;
	return 0;
}

/* Digits with an optional fraction; the rest in *end.  0 or -1. */
static int
decimal(const char *s, double *v, const char **end)
{
	const char *p = s;
	double x = 0, scale = 1;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++)
		x = x * 10 + (*p - '0');
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return -1;
		for (p++; isdigit((unsigned char)*p); p++) {
			scale /= 10;
			x += (*p - '0') * scale;
		}
	}
	*v = x;
	*end = p;
	return 0;
}

/* Is unit (case-insensitive) one of the names in list ("a|b|c")? */
static bool
unit_in(const char *unit, const char *list)
{
	size_t n = strlen(unit);
	const char *p = list, *bar;

	for (;;) {
		bar = strchr(p, '|');
		if ((size_t)((bar ? bar : p + strlen(p)) - p) == n &&
		    strncasecmp(p, unit, n) == 0)
			return true;
		if (bar == NULL)
			return false;
		p = bar + 1;
	}
}

int
ls_parse_size(const char *s, int64_t *bytes)
{
	static const char *const units[] = { "|b", "k|kb|kib", "m|mb|mib",
	    "g|gb|gib", "t|tb|tib" };
	const char *end;
	double v, mult = 1;
	size_t i;

	if (s == NULL || decimal(s, &v, &end) != 0)
		return LS_ERR_INVALID;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++, mult *= 1024)
		if (unit_in(end, units[i]))
			break;
	if (i == sizeof(units) / sizeof(units[0]) || v * mult >= 9.2e18)
		return LS_ERR_INVALID;
	*bytes = (int64_t)(v * mult);
	return 0;
}

int
ls_parse_duration(const char *s, double *seconds)
{
	static const struct { const char *names; double mult; } units[] = {
		{ "|s", 1 }, { "ms", 0.001 }, { "m|min", 60 }, { "h", 3600 },
		{ "d", 86400 }, { "w", 7 * 86400 },
	};
	const char *end;
	double v;
	size_t i;

	if (s == NULL || decimal(s, &v, &end) != 0)
		return LS_ERR_INVALID;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (unit_in(end, units[i].names)) {
			if (v * units[i].mult > 1e12)
				return LS_ERR_INVALID;
			*seconds = v * units[i].mult;
			return 0;
		}
	return LS_ERR_INVALID;
}

int
ls_parse_duration_us(const char *s, int64_t *us)
{
	double sec;

	if (ls_parse_duration(s, &sec) != 0 || sec <= 0 ||
	    sec > 100.0 * 366 * 86400)
		return LS_ERR_INVALID;
	*us = (int64_t)(sec * 1e6);
	return *us > 0 ? 0 : LS_ERR_INVALID;
}

int
ls_key_load(const char *path, uint8_t key[32], char **errmsg)
{
	char buf[80];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "key file %s: %s",
		    path, strerror(errno));
	if (secfile_check_fd(fd, path, "key file", errmsg) != 0) {
		close(fd);
		return LS_ERR_INVALID;
	}
	n = ls_pread_all(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "key file %s: %s",
		    path, strerror(errno));
	if (n == 32) {
		memcpy(key, buf, 32);
		return 0;
	}
	if ((n == 64 || (n == 65 && buf[64] == '\n')) && ls_unhex(buf, key, 32) == 0)
		return 0;
	return ls_errf(errmsg, LS_ERR_INVALID, "key file %s: expected 32 raw "
	    "bytes or 64 hex digits; create one with: (umask 077; openssl rand "
	    "-hex 32 > %s)", path, path);
}

int64_t
ls_backoff_us(int attempt)
{
	int64_t base = 500000LL << (attempt < 6 ? attempt : 6);

	if (base > 30000000)
		base = 30000000;
	return base * 3 / 4 + (int64_t)(random() % (base / 2 + 1));
}

const char *
ls_temp_dir(const char *dir)
{
	if (dir == NULL && (dir = getenv("TMPDIR")) == NULL)
		dir = "/tmp";
	return dir;
}

int
ls_temp_fd(const char *dir, char **errmsg)
{
	char path[4096];
	int fd;

	dir = ls_temp_dir(dir);
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/logship.XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		return ls_errf(errmsg, ls_errno_code(errno), "temp file in %s: %s",
		    dir, strerror(errno));
	unlink(path);
	return fd;
}
