/*
 * fuzz_filter.c: libFuzzer target for the filter language.
 *
 * Input: a filter file.  What parses is validated against a fixed schema;
 * what validates is evaluated on fixed rows (one with an UNCHANGED value),
 * asked for the action of an update and a delete, applied to a tuple and
 * to a COPY line.  The error convention (a message exactly on failure,
 * only documented codes) and the outputs' shapes are checked with abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "filter/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct filter_column_info t_cols[] = {
	{ "id", 23 }, { "name", 25 }, { "amount", 1700 }, { "flag", 16 },
	{ "at", 1184 }, { "d", 1082 }, { "u", 2950 }, { "code", 1042 },
	{ "j", 3802 }, { "big", 20 }, { "f", 701 }, { "ts", 1114 },
};
#define NCOLS	(sizeof(t_cols) / sizeof(t_cols[0]))
static const struct filter_column_info x_cols[] = { { "v", 20 } };
static const struct filter_table_info tables[] = {
	{ "public", "t", NCOLS, t_cols },
	{ "other", "x", 1, x_cols },
};

static const char *const t_vals[NCOLS] = {
	"42", "o'brien\tx", "-12.50", "t", "2024-02-29 18:29:59.123456+05:30",
	"0044-03-15 BC", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ab   ",
	"{\"k\": [1, 2]}", "-9223372036854775808", "1.5e+20",
	"2024-02-29 24:00:00",
};
static const char copy_line[] = "42\to'brien\\tx\t-12.50\tt\t"
    "2024-02-29 18:29:59.123456+05:30\t\\N\t"
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\tab   \t{}\t7\tNaN\t"
    "infinity\n";

static const uint8_t key[FILTER_HASH_KEY_LEN] = "0123456789abcdef0123456789abcde";

static struct ls_column rel_cols[NCOLS];
static struct ls_relation rel = { 16384, "public", "t", 'd', NCOLS, rel_cols };
static struct ls_value full[NCOLS], part[NCOLS];
static volatile size_t sink;

static void
check(bool cond)
{
	if (!cond)
		abort();
}

/* rc is 0 with no message, or one of codes with one. */
static void
check_rc(int rc, char **err, int code1, int code2)
{
	check(rc == 0 ? *err == NULL : (rc == code1 || rc == code2) &&
	    *err != NULL);
	free(*err);
	*err = NULL;
}

static void
init(void)
{
	size_t i;

	for (i = 0; i < NCOLS; i++) {
		rel_cols[i].name = t_cols[i].name;
		rel_cols[i].type_oid = t_cols[i].type_oid;
		rel_cols[i].typmod = -1;
		rel_cols[i].flags = i == 0 ? LS_COL_KEY : 0;
		full[i].kind = LS_VAL_TEXT;
		full[i].len = (uint32_t)strlen(t_vals[i]);
		full[i].data = t_vals[i];
		part[i] = full[i];
	}
	part[1].kind = LS_VAL_UNCHANGED;
	part[1].len = 0;
	part[1].data = NULL;
	part[5].kind = LS_VAL_NULL;
	part[5].len = 0;
	part[5].data = NULL;
}

static void
walk_tuple(const struct ls_relation *r, const struct ls_tuple *t)
{
	uint16_t i;

	check(r->ncols == t->ncols);
	for (i = 0; i < t->ncols; i++) {
		sink += strlen(r->cols[i].name);
		if (t->vals[i].kind == LS_VAL_TEXT)
			check(t->vals[i].data[t->vals[i].len] == '\0');
		else
			check(t->vals[i].data == NULL ||
			    t->vals[i].kind == LS_VAL_BINARY);
	}
}

static void
changes(const struct filter_table *ft, struct ls_tuple *a, struct ls_tuple *b)
{
	struct ls_change c = { 0 };
	enum filter_action act;
	char *err = NULL;
	int rc;

	c.kind = LS_CHANGE_UPDATE;
	c.old_kind = LS_OLD_FULL;
	c.old = *a;
	c.new = *b;
	rc = filter_change_action(ft, &rel, &c, &act, &err);
	check_rc(rc, &err, LS_ERR_INVALID, LS_ERR_CORRUPT);
	c.old_kind = LS_OLD_NONE;
	rc = filter_change_action(ft, &rel, &c, &act, &err);
	check_rc(rc, &err, LS_ERR_INVALID, LS_ERR_CORRUPT);
	c.kind = LS_CHANGE_DELETE;
	c.old_kind = LS_OLD_KEY;
	rc = filter_change_action(ft, &rel, &c, &act, &err);
	check_rc(rc, &err, LS_ERR_INVALID, LS_ERR_CORRUPT);
	sink += act;
}

static void
treat(const struct filter_table *ft, struct filter_scratch *s,
    const struct ls_tuple *t)
{
	const struct ls_relation *orel;
	struct ls_tuple out;
	const char *names[NCOLS], *line;
	size_t n, len;
	bool keep;
	char *err = NULL;
	int rc;

	rc = filter_transform(ft, key, &rel, t, s, &orel, &out);
	check(rc == 0 || rc == LS_ERR_INVALID);
	if (rc == 0)
		walk_tuple(orel, &out);
	n = filter_copy_columns(ft, &tables[0], names);
	check(n <= NCOLS);
	rc = filter_copy_line(ft, key, &tables[0], copy_line,
	    sizeof(copy_line) - 1, s, &keep, &line, &len, &err);
	check_rc(rc, &err, LS_ERR_INVALID, LS_ERR_CORRUPT);
	if (rc == 0 && keep) {
		check(len > 0 && line[len - 1] == '\n');
		check(memchr(line, '\n', len) == line + len - 1);
	}
}

static void
evaluate(struct filter *f)
{
	const struct filter_table *ft = filter_table(f, "public", "t");
	struct ls_tuple a = { NCOLS, full }, b = { NCOLS, part };
	struct filter_scratch *s;
	char *err = NULL;
	bool pass;
	int rc;

	sink += filter_includes(f, "public", "t") + filter_id_mode(ft) +
	    filter_needs_hash_key(f);
	rc = filter_row_passes(ft, &rel, &a, &pass, &err);
	check_rc(rc, &err, LS_ERR_CORRUPT, LS_ERR_INVALID);
	rc = filter_row_passes(ft, &rel, &b, &pass, &err);
	check_rc(rc, &err, LS_ERR_CORRUPT, LS_ERR_INVALID);
	changes(ft, &a, &b);
	changes(ft, &b, &a);
	if ((s = filter_scratch_new(f)) == NULL)
		return;
	treat(ft, s, &a);
	treat(ft, s, &b);
	treat(ft, s, &a);
	filter_scratch_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct filter *f = NULL;
	char *err = NULL;
	size_t i;
	int rc;

	if (!ready) {
		init();
		ready = true;
	}
	rc = filter_parse((const char *)data, size, "fuzz", &f, &err);
	check(rc == 0 ? f != NULL && err == NULL : f == NULL && err != NULL &&
	    (rc == LS_ERR_INVALID || rc == LS_ERR_TOOBIG));
	free(err);
	err = NULL;
	if (rc != 0)
		return 0;
	rc = filter_validate(f, tables, 2, &err);
	check_rc(rc, &err, LS_ERR_INVALID, LS_ERR_INVALID);
	for (i = 0; i < filter_warning_count(f); i++)
		sink += strlen(filter_warning(f, i));
	if (rc == 0)
		evaluate(f);
	filter_free(f);
	return 0;
}
