/* test_util.c: LSN and timestamp parsing/formatting, hex, key files, sizes
 * and durations, config files, file permissions, errno codes. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conffile.h"
#include "common/error.h"
#include "common/secfile.h"
#include "common/util.h"
#include "tap.h"

static void
test_lsn(void)
{
	uint64_t v = 0;
	char buf[32];

	{
		int64_t d = 0;

		ok(ls_parse_duration_us("90", &d) == 0 && d == 90000000LL &&
		    ls_parse_duration_us("15m", &d) == 0 && d == 900000000LL &&
		    ls_parse_duration_us("7d", &d) == 0 && d == 604800000000LL &&
		    ls_parse_duration_us("2w", &d) == 0 && d == 1209600000000LL,
		    "durations in microseconds: seconds, m, d, w");
		ok(ls_parse_duration_us("", &d) != 0 && ls_parse_duration_us("0", &d) != 0 &&
		    ls_parse_duration_us("7 d", &d) != 0 && ls_parse_duration_us("1x", &d) != 0 &&
		    ls_parse_duration_us("1dd", &d) != 0 && ls_parse_duration_us("-1h", &d) != 0 &&
		    ls_parse_duration_us("101000d", &d) != 0,
		    "bad durations refused (also 0 and over 100 years)");
	}
	ok(ls_lsn_parse("16/B374D848", &v) == 0 && v == 0x16B374D848ULL, "LSN parse");
	ls_lsn_format(v, buf);
	ok(strcmp(buf, "16/B374D848") == 0, "LSN format round trip");
	ok(ls_lsn_parse("0/0", &v) == 0 && v == 0, "0/0");
	ok(ls_lsn_parse("x/1", &v) != 0 && ls_lsn_parse("1", &v) != 0 &&
	    ls_lsn_parse("1/", &v) != 0 && ls_lsn_parse("1/2z", &v) != 0 &&
	    ls_lsn_parse("100000000/0", &v) != 0, "bad LSNs rejected");
	ok(ls_lsn_parse("0x1/0x5", &v) != 0 && ls_lsn_parse(" 1/5", &v) != 0 &&
	    ls_lsn_parse("+1/5", &v) != 0 && ls_lsn_parse("1/-5", &v) != 0 &&
	    ls_lsn_parse("1/ 5", &v) != 0 && ls_lsn_parse(NULL, &v) != 0,
	    "only PostgreSQL's own form: no 0x, sign or spaces");
	ok(ls_lsn_parse("ffffffff/FFFFFFFF", &v) == 0 && v == UINT64_MAX,
	    "the largest LSN");
}

static void
test_time(void)
{
	static const struct { const char *s; int64_t us; } good[] = {
		{ "2024-01-01 00:00:00Z", 1704067200000000LL },
		{ "2024-01-01T00:00:00", 1704067200000000LL },
		{ "2024-01-01 05:30:00+0530", 1704067200000000LL },
		{ "2024-01-01 05:30:00+05:30", 1704067200000000LL },
		{ "2023-12-31 19:00:00-05", 1704067200000000LL },
		{ "2024-01-01 00:00:00.123456Z", 1704067200123456LL },
	};
	static const char *bad[] = { "2024-01-01", "yesterday",
	    "2024-01-01 00:00:00+5", "2024-01-01 00:00:00+05:30x",
	    "2024-01-01 00:00:00 UTC", "2026-02-30 00:00:00", "2026-13-01 00:00:00",
	    "2026-04-31 12:00:00", "2026-01-01 24:00:00", "2026-01-01 23:60:00",
	    "2026-01-01 23:59:60", "2025-02-29 00:00:00", "2026-00-10 00:00:00" };
	char buf[40];
	int64_t us;
	size_t i;
	int all = 1;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		all &= ls_parse_time(good[i].s, &us) == 0 && us == good[i].us;
	ok(all, "timestamps with Z, none, +hhmm, +hh:mm, -hh and fractions");
	for (i = 0, all = 1; i < sizeof(bad) / sizeof(bad[0]); i++)
		all &= ls_parse_time(bad[i], &us) != 0;
	ok(all, "malformed timestamps and out-of-range fields rejected");
	ok(ls_parse_time("2024-02-29 00:00:00Z", &us) == 0 &&
	    us == 1709164800000000LL, "a leap day");
	ls_format_time(1704067200123456LL, buf, sizeof(buf));
	ok(strcmp(buf, "2024-01-01T00:00:00.123456Z") == 0, "time format: %s", buf);
}

static void
test_key(void)
{
	char path[] = "/tmp/logship-key.XXXXXX";
	uint8_t key[32];
	char *err = NULL;
	int fd = mkstemp(path), r;

	if (write(fd, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	    65) != 65)
		abort();
	close(fd);
	r = ls_key_load(path, key, &err);
	ok(r == 0 && key[1] == 0x11 && key[31] == 0xff, "hex key file");
	fd = open(path, 1 | 01000);	/* O_WRONLY|O_TRUNC */
	if (write(fd, "short", 5) != 5)
		abort();
	close(fd);
	r = ls_key_load(path, key, &err);
	ok(r == LS_ERR_INVALID && strstr(err, "openssl rand -hex 32"), "short key "
	    "file rejected with the fix: %s", err);
	if (chmod(path, 0644) != 0)
		abort();
	free(err);
	err = NULL;
	r = ls_key_load(path, key, &err);
	ok(r == LS_ERR_INVALID && err != NULL && strstr(err, "mode 0644") &&
	    strstr(err, "chmod 600") && strstr(err, path),
	    "a key file others may read is refused first: %s", err);
	unlink(path);
	r = ls_key_load(path, key, &err);
	ok(r == LS_ERR_INVALID && strstr(err, path), "missing key file named");
	free(err);
}

/* secfile.h: every group/other bit refuses a file or a directory. */
static void
test_secfile(void)
{
	char dir[] = "/tmp/logship-sec.XXXXXX", file[64];
	static const mode_t open_modes[] = { 0604, 0620, 0602, 0610, 0601,
	    0644, 0660 };
	char *err = NULL;
	size_t i;
	int fd, r, bad = 0;

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(file, sizeof(file), "%s/f", dir);
	if ((fd = open(file, O_CREAT | O_WRONLY, 0600)) < 0)
		abort();
	ok(secfile_check_fd(fd, file, "key file", &err) == 0 &&
	    secfile_check(file, "key file", &err) == 0, "a 0600 file passes");
	for (i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++)
		if (fchmod(fd, open_modes[i]) != 0 ||
		    secfile_check_fd(fd, file, "key file", &err) !=
		    LS_ERR_INVALID)
			bad++;
	ok(bad == 0, "each of the group and other bits is refused (but group "
	    "read for root)");
	ok(fchmod(fd, 0640) == 0 && (secfile_check_fd(fd, file, "key file",
	    &err) == 0) == (geteuid() == 0), "0640 passes only when root owns "
	    "the file (uid %d)", (int)geteuid());
	ok(fchmod(fd, 0400) == 0 && secfile_check(file, "key file", &err) == 0,
	    "a 0400 file passes");
	close(fd);
	ok(secfile_check_dir(dir, "state dir", &err) == 0, "a 0700 dir passes");
	r = chmod(dir, 0750) == 0 && secfile_check_dir(dir, "state dir", &err) ==
	    LS_ERR_INVALID && strstr(err, "mode 0750 lets other users in; run: "
	    "chmod 700 ") != NULL;
	ok(r, "a 0750 dir is refused with the fix: %s", err);
	ok(secfile_check_dir(file, "state dir", &err) == LS_ERR_INVALID &&
	    strstr(err, "not a directory") != NULL, "a file is not a dir");
	unlink(file);
	ok(secfile_check(file, "key file", &err) == LS_ERR_NOTFOUND &&
	    secfile_check_dir(file, "state dir", &err) == LS_ERR_NOTFOUND,
	    "a missing path is LS_ERR_NOTFOUND");
	rmdir(dir);
	free(err);
}

static void
test_size(void)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "1000", 1000 }, { "64MB", 64 << 20 }, { "64mb", 64 << 20 },
		{ "64M", 64 << 20 }, { "1GiB", 1LL << 30 }, { "512k", 512 << 10 },
		{ "512KB", 512 << 10 }, { "1.5K", 1536 }, { "7B", 7 },
		{ "2TiB", 2LL << 40 }, { "0", 0 },
	};
	static const char *bad[] = { "64 MB", "64MB ", " 64MB", "inf", "nan",
	    "0x10", "1e3", "1E3", "-1", "+1", "", "MB", "1.", ".5", "64MBs",
	    "64Mi", "64X", "1.5.2", "9999999999999999999", "8EiB", "1,5M" };
	int64_t v;
	size_t i;
	int all = 1;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (ls_parse_size(good[i].s, &v) != 0 || v != good[i].v) {
			diag("size \"%s\" gave %lld", good[i].s, (long long)v);
			all = 0;
		}
	ok(all, "sizes: digits, a fraction, B/K/KB/KiB/M/.../TiB right after");
	for (i = 0, all = 1; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ls_parse_size(bad[i], &v) == 0) {
			diag("size \"%s\" accepted as %lld", bad[i], (long long)v);
			all = 0;
		}
	ok(all, "sizes with a space, a sign, inf, nan, hex, an exponent or an "
	    "unknown unit refused");
	ok(ls_parse_size(NULL, &v) != 0, "a NULL size refused");
}

static void
test_duration(void)
{
	static const struct { const char *s; double v; } good[] = {
		{ "1", 1 }, { "0.2", 0.2 }, { "30s", 30 }, { "500ms", 0.5 },
		{ "5min", 300 }, { "5m", 300 }, { "2h", 7200 }, { "1d", 86400 },
		{ "1.5h", 5400 }, { "10S", 10 }, { "2w", 1209600 },
	};
	static const char *bad[] = { "1 s", " 1", "1 ", "inf", "infinity",
	    "nan", "0x10", "1e3", "-1", "+1", "", "s", "1.", ".5", "1sec",
	    "1y", "1wk", "1e308" };
	double v = 0;
	size_t i;
	int all = 1;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (ls_parse_duration(good[i].s, &v) != 0 ||
		    v < good[i].v - 1e-9 || v > good[i].v + 1e-9) {
			diag("duration \"%s\" gave %g", good[i].s, v);
			all = 0;
		}
	ok(all, "durations: seconds by default, ms, s, m/min, h, d, w");
	for (i = 0, all = 1; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ls_parse_duration(bad[i], &v) == 0) {
			diag("duration \"%s\" accepted as %g", bad[i], v);
			all = 0;
		}
	ok(all, "durations with a space, a sign, inf, nan, hex, an exponent "
	    "or an unknown unit refused");
}

static int
count_setting(void *arg, const char *key, const char *value, const char *where)
{
	(void)key;
	(void)where;
	if (strcmp(value, "v") == 0)
		(*(int *)arg)++;
	return 0;
}

/* A line longer than the reader's 4095 bytes is refused, not split. */
static void
test_conffile(void)
{
	char path[] = "/tmp/test_util_conf.XXXXXX", *err = NULL;
	int fd = mkstemp(path), n = 0, r;
	FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (fp == NULL) {
		ok(0, "config file: temp file");
		return;
	}
	fprintf(fp, "# comment\na = 'v'\nb = ");
	for (r = 0; r < 4090; r++)
		fputc('x', fp);
	fprintf(fp, "key = v\n");
	fclose(fp);
	r = conffile_read(path, count_setting, &n, &err);
	ok(r == LS_ERR_INVALID && n == 1 && err != NULL &&
	    strstr(err, ":3: line longer than 4095 bytes") != NULL,
	    "config file: a line over 4095 bytes is refused, naming it");
	if (err != NULL)
		diag("%s", err);
	free(err);
	unlink(path);
}

/* A full filesystem is its own error code, with its own name. */
static void
test_errno_code(void)
{
	ok(ls_errno_code(ENOSPC) == LS_ERR_NOSPACE &&
	    ls_errno_code(EDQUOT) == LS_ERR_NOSPACE, "ENOSPC, EDQUOT: nospace");
	ok(ls_errno_code(EIO) == LS_ERR_IO && ls_errno_code(EBADF) == LS_ERR_IO,
	    "other errno values: i/o");
	ok(strcmp(ls_strerror(LS_ERR_NOSPACE), "no space left on device") == 0,
	    "nospace has its name");
}

int
main(void)
{
	test_lsn();
	test_time();
	test_key();
	test_secfile();
	test_size();
	test_duration();
	test_conffile();
	test_errno_code();
	return tap_done();
}
