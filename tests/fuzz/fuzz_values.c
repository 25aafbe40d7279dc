/*
 * fuzz_values.c: libFuzzer target for the parsers of command-line and
 * config values in src/common/util.c: sizes, durations (seconds and
 * microseconds), LSNs and times.  The input, NUL-terminated, is given to
 * each.  A value that parses must print back to one that parses to the
 * same thing (LSN, time) or lie in the documented range (sizes,
 * durations); a refusal must be LS_ERR_INVALID.  Checked with abort().
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DURATION_US_MAX	(100LL * 366 * 86400 * 1000000)

static void
check(bool cond)
{
	if (!cond)
		abort();
}

static void
lsn(const char *s)
{
	char out[32];
	uint64_t v, v2;
	int rc = ls_lsn_parse(s, &v);

	check(rc == 0 || rc == LS_ERR_INVALID);
	if (rc == 0) {
		ls_lsn_format(v, out);
		check(ls_lsn_parse(out, &v2) == 0 && v2 == v);
	}
}

static void
time_value(const char *s)
{
	char out[64];
	int64_t us, us2;
	int rc = ls_parse_time(s, &us);

	check(rc == 0 || rc == LS_ERR_INVALID);
	if (rc == 0) {
		ls_format_time(us, out, sizeof(out));
		check(ls_parse_time(out, &us2) == 0 && us2 == us);
	}
}

static void
sizes(const char *s)
{
	int64_t bytes, us;
	double secs;
	int rc;

	rc = ls_parse_size(s, &bytes);
	check(rc == 0 ? bytes >= 0 : rc == LS_ERR_INVALID);
	rc = ls_parse_duration(s, &secs);
	check(rc == 0 ? isfinite(secs) && secs >= 0 : rc == LS_ERR_INVALID);
	rc = ls_parse_duration_us(s, &us);
	check(rc == 0 ? us > 0 && us <= DURATION_US_MAX : rc == LS_ERR_INVALID);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 256 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	lsn(s);
	time_value(s);
	sizes(s);
	free(s);
	return 0;
}
