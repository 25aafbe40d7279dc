/*
 * test_filter.c: elision filters — parsing good files, every syntax and
 * validation error with its LINE:COL, every operator under three-valued
 * logic and each type's comparison, includes and excludes, change actions
 * for rows moving in and out of the predicate, column treatments (the
 * hash checked against OpenSSL's HMAC()), COPY text rows and escapes.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"
#include "common/util.h"
#include "filter/filter.h"
#include "tap.h"

#define FILE_NAME	"conf/f.filter"

/* The source schema the filters are validated against. */
static const struct filter_column_info orders_cols[] = {
	{ "id", 23 }, { "customer", 25 }, { "amount", 1700 }, { "qty", 20 },
	{ "active", 16 }, { "created", 1184 }, { "day", 1082 },
	{ "ts", 1114 }, { "code", 1042 }, { "uid", 2950 }, { "note", 1043 },
	{ "score", 701 }, { "small", 21 }, { "tags", 3802 },
	{ "Mixed Case", 25 },
};
#define NORD	(sizeof(orders_cols) / sizeof(orders_cols[0]))
static const struct filter_column_info users_cols[] = {
	{ "id", 20 }, { "email", 25 }, { "name", 25 },
};
static const struct filter_column_info items_cols[] = {
	{ "sku", 25 }, { "price", 1700 },
};
static const struct filter_column_info one_col[] = { { "x", 23 } };

static const struct filter_table_info tables[] = {
	{ "public", "orders", NORD, orders_cols },
	{ "public", "users", 3, users_cols },
	{ "Sales", "Items", 2, items_cols },
	{ "public", "tmp_1", 1, one_col },
	{ "public", "audit*", 1, one_col },
	{ "archive", "orders", 1, one_col },
};
#define NTABLES	(sizeof(tables) / sizeof(tables[0]))

static struct ls_column rel_cols[NORD];
static struct ls_relation orders_rel = { 16384, "public", "orders", 'd', NORD,
    rel_cols };

static const uint8_t hkey[32] = "0123456789abcdef0123456789abcdef";

/* A marker value for UNCHANGED in row(). */
static const char UNCH[] = "<unchanged>";

static void
init_rel(void)
{
	size_t i;

	for (i = 0; i < NORD; i++) {
		rel_cols[i].name = orders_cols[i].name;
		rel_cols[i].type_oid = orders_cols[i].type_oid;
		rel_cols[i].typmod = -1;
		rel_cols[i].flags = i == 0 ? LS_COL_KEY : 0;
	}
}

/*
 * Fill vals (NORD of them, all NULL first) from (column, value) pairs up
 * to a NULL column; value NULL is SQL NULL, UNCH is UNCHANGED.
 */
static struct ls_tuple
row(struct ls_value *vals, ...)
{
	struct ls_tuple t = { NORD, vals };
	const char *col, *val;
	va_list ap;
	size_t i;

	memset(vals, 0, NORD * sizeof(*vals));
	for (i = 0; i < NORD; i++)
		vals[i].kind = LS_VAL_NULL;
	va_start(ap, vals);
	while ((col = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		for (i = 0; i < NORD && strcmp(orders_cols[i].name, col); i++)
			;
		if (i == NORD) {
			diag("row(): no column %s", col);
			exit(1);
		}
		if (val == UNCH)
			vals[i].kind = LS_VAL_UNCHANGED;
		else if (val != NULL) {
			vals[i].kind = LS_VAL_TEXT;
			vals[i].len = (uint32_t)strlen(val);
			vals[i].data = val;
		}
	}
	va_end(ap);
	return t;
}

static struct filter *
parse(const char *text)
{
	struct filter *f = NULL;
	char *err = NULL;

	if (filter_parse(text, strlen(text), FILE_NAME, &f, &err) != 0) {
		diag("parse: %s", err);
		free(err);
		return NULL;
	}
	return f;
}

/* A parsed and validated filter, or NULL after a diag. */
static struct filter *
load(const char *text)
{
	struct filter *f = parse(text);
	char *err = NULL;

	if (f != NULL && filter_validate(f, tables, NTABLES, &err) != 0) {
		diag("validate: %s", err);
		free(err);
		filter_free(f);
		return NULL;
	}
	return f;
}

/* filter_parse fails with LS_ERR_INVALID and exactly this message. */
static void
parse_err(const char *text, const char *want, const char *what)
{
	struct filter *f = NULL;
	char *err = NULL;
	int r = filter_parse(text, strlen(text), FILE_NAME, &f, &err);

	if (!ok(r == LS_ERR_INVALID && err != NULL && strcmp(err, want) == 0,
	    "syntax error: %s", what))
		diag("rc %d, got '%s', want '%s'", r, err ? err : "(null)",
		    want);
	filter_free(f);
	free(err);
}

/* Parses; filter_validate fails with exactly this message. */
static void
validate_err(const char *text, const char *want, const char *what)
{
	struct filter *f = parse(text);
	char *err = NULL;
	int r = -100;

	if (f != NULL)
		r = filter_validate(f, tables, NTABLES, &err);
	if (!ok(r == LS_ERR_INVALID && err != NULL && strcmp(err, want) == 0,
	    "validation error: %s", what))
		diag("rc %d, got '%s', want '%s'", r, err ? err : "(null)",
		    want);
	filter_free(f);
	free(err);
}

/*
 * The where clause on a row of public.orders: 1 passes, 0 does not, a
 * negative LS_ERR_* code (message in *errp when given), -100 no filter.
 */
static int
where_on(const char *expr, const struct ls_tuple *t, char **errp)
{
	struct filter *f;
	char text[4096], *err = NULL;
	bool pass = false;
	int r;

	snprintf(text, sizeof(text), "table public.orders\nwhere %s\n", expr);
	if ((f = load(text)) == NULL)
		return -100;
	r = filter_row_passes(filter_table(f, "public", "orders"),
	    &orders_rel, t, &pass, &err);
	filter_free(f);
	if (errp != NULL)
		*errp = err;
	else
		free(err);
	return r != 0 ? r : pass;
}

/* One column set, the others NULL. */
static int
where1(const char *expr, const char *col, const char *val)
{
	struct ls_value v[NORD];
	struct ls_tuple t = row(v, col, val, NULL);

	return where_on(expr, &t, NULL);
}

#define PASS(expr, col, val) \
	ok(where1(expr, col, val) == 1, "%s passes with %s=%s", expr, col, \
	    val ? val : "NULL")
#define FAIL(expr, col, val) \
	ok(where1(expr, col, val) == 0, "%s fails with %s=%s", expr, col, \
	    val ? val : "NULL")

static const char good_file[] =
    "# logship filter\n"
    "\n"
    "INCLUDE public.*            # every table of public\n"
    "include \"Sales\".\"Items\"\n"
    "  exclude public.tmp_?\n"
    "exclude public.\"audit*\"\n"
    "hash-key-file 'keys/hash key'\n"
    "\n"
    "Table public.orders\n"
    "\tWHERE active and (amount >= 100.50 or customer in ('acme', 'it''s'))\n"
    "\tcolumn note drop\n"
    "\tcolumn \"Mixed Case\" null\n"
    "\tcolumn customer hash\n"
    "\tcolumn small const -7\n"
    "\tid-mode remap\n"
    "table public.users\n"
    "  where (email is not null\n"
    "         and\n"
    "         # a comment inside the parentheses\n"
    "         id not in (1, 2, 3))\n"
    "  id-mode PRESERVE\n"
    "table \"Sales\".\"Items\"\n"
    "  column price const '0.00'\n";

static void
test_parse_good(void)
{
	struct filter *f = parse(good_file);
	const struct filter_table *ft;
	const char *schema = NULL, *name = NULL;
	char *err = NULL;

	if (!ok(f != NULL, "a good file parses"))
		return;
	ok(filter_validate(f, tables, NTABLES, &err) == 0, "and validates");
	if (err != NULL)
		diag("%s", err);
	free(err);
	ok(strcmp(filter_hash_key_file(f), "conf/keys/hash key") == 0,
	    "hash-key-file is relative to the filter file's directory");
	ok(filter_needs_hash_key(f), "a hash needs the key");
	ft = filter_table(f, "public", "orders");
	ok(ft != NULL && filter_id_mode(ft) == FILTER_ID_REMAP,
	    "section public.orders, id-mode remap");
	ok(filter_id_mode(filter_table(f, "public", "users")) ==
	    FILTER_ID_PRESERVE, "id-mode keywords are case-insensitive");
	ok(filter_table(f, "Sales", "Items") != NULL, "quoted names keep case");
	ok(filter_table(f, "sales", "items") == NULL, "and only that case");
	ok(filter_table(f, "public", "tmp_1") == NULL, "no section: NULL");
	ok(filter_id_mode(NULL) == FILTER_ID_DEFAULT, "no section: default");
	ok(filter_section_count(f) == 3 &&
	    filter_section(f, 1, &schema, &name) != NULL &&
	    strcmp(schema, "public") == 0 && strcmp(name, "users") == 0,
	    "sections are listed in file order");
	ok(filter_section(f, 3, &schema, &name) == NULL, "and end");
	filter_free(f);
	filter_free(NULL);
}

static void
test_includes(void)
{
	struct filter *f = load(good_file);

	if (!ok(f != NULL, "includes: filter loads"))
		return;
	ok(filter_includes(f, "public", "orders"), "public.* includes orders");
	ok(filter_includes(f, "Sales", "Items"), "quoted include");
	ok(!filter_includes(f, "sales", "items"), "quoted is case-sensitive");
	ok(!filter_includes(f, "public", "tmp_1"), "exclude wins (tmp_?)");
	ok(filter_includes(f, "public", "tmp_12"), "? is one character");
	ok(!filter_includes(f, "public", "audit*"), "quoted * is literal");
	ok(filter_includes(f, "public", "auditlog"), "and matches only itself");
	ok(!filter_includes(f, "archive", "orders"), "not matched: left out");
	ok(filter_includes(NULL, "any", "thing"), "no filter includes all");
	filter_free(f);

	f = load("exclude *.tmp*\nexclude public.\"T\"*\n");
	ok(f != NULL && filter_includes(f, "archive", "orders"),
	    "without include lines every table is in");
	ok(f != NULL && !filter_includes(f, "x", "tmpfoo"), "*.tmp* excludes");
	ok(f != NULL && !filter_includes(f, "public", "Tab"),
	    "quoted and bare parts mix");
	ok(f != NULL && filter_includes(f, "public", "tab"),
	    "the quoted part keeps its case");
	filter_free(f);

	f = load("include public.or*s\ninclude p?blic.*é\n");
	ok(f != NULL && filter_includes(f, "public", "orders") &&
	    !filter_includes(f, "public", "order"), "* in the middle");
	ok(f != NULL && filter_includes(f, "pública", "café") == false &&
	    filter_includes(f, "public", "café"), "multi-byte names");
	filter_free(f);
	f = load("include p?blic.caf?\n");
	ok(f != NULL && filter_includes(f, "public", "café"),
	    "? matches one UTF-8 character");
	filter_free(f);
}

static void
test_warnings(void)
{
	struct filter *f = load("include public.orders\n"
	    "include nothing.here*\n"
	    "table public.users\n"
	    "  where id > 0\n");

	if (!ok(f != NULL, "warnings: filter loads"))
		return;
	ok(filter_warning_count(f) == 2, "two warnings");
	ok(filter_warning(f, 0) != NULL && strcmp(filter_warning(f, 0),
	    FILE_NAME ":2:9: include pattern nothing.here* matches no table")
	    == 0, "a pattern that matches nothing");
	ok(filter_warning(f, 1) != NULL && strcmp(filter_warning(f, 1),
	    FILE_NAME ":3:7: table public.users has a section but is not "
	    "included") == 0, "a section of a table left out");
	ok(filter_warning(f, 2) == NULL, "no third warning");
	filter_free(f);
}

static void
test_load(void)
{
	char dir[] = "/tmp/test_filter.XXXXXX", path[64];
	struct filter *f = NULL;
	char *err = NULL, *big;
	FILE *fp;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/a.filter", dir);
	fp = fopen(path, "w");
	fputs("hash-key-file key\ntable public.users\ncolumn email hash\n", fp);
	fclose(fp);
	ok(filter_load(path, &f, &err) == 0 && f != NULL, "filter_load");
	ok(f != NULL && strncmp(filter_hash_key_file(f), dir,
	    strlen(dir)) == 0, "key path next to the file");
	filter_free(f);
	f = NULL;
	unlink(path);
	ok(filter_load(path, &f, &err) == LS_ERR_NOTFOUND && f == NULL,
	    "missing file: LS_ERR_NOTFOUND");
	free(err);
	err = NULL;
	rmdir(dir);
	big = calloc(FILTER_MAX_FILE + 2, 1);
	memset(big, '\n', FILTER_MAX_FILE + 1);
	ok(filter_parse(big, FILTER_MAX_FILE + 1, "big", &f, &err) ==
	    LS_ERR_TOOBIG, "over 1 MiB: LS_ERR_TOOBIG");
	free(err);
	err = NULL;
	ok(filter_parse(big, FILTER_MAX_FILE, "big", &f, &err) == 0,
	    "1 MiB of blank lines parses");
	filter_free(f);
	free(big);
}

#define T "table public.orders\n"
#define E(pos, msg) FILE_NAME ":" pos ": " msg

static void
test_syntax_errors(void)
{
	char deep[1024], *p;
	struct filter *f = NULL;
	char *err = NULL;
	int i, r;

	parse_err("tabel public.orders\n", E("1:1", "expected include, exclude, "
	    "hash-key-file, table, where, column or id-mode near 'tabel'"),
	    "unknown statement");
	parse_err("where id = 1\n", E("1:1", "'where' must follow a 'table "
	    "SCHEMA.NAME' line"), "where outside a section");
	parse_err("column x drop\n", E("1:1", "'column' must follow a 'table "
	    "SCHEMA.NAME' line"), "column outside a section");
	parse_err(T "where customer = 'abc\n", E("2:18", "unterminated quoted "
	    "string"), "unterminated string");
	parse_err(T "where \"x\ny\" = 1\n", E("2:7", "unterminated quoted "
	    "identifier"), "quoted identifier across lines");
	parse_err("include \"public\n", E("1:9", "unterminated quoted "
	    "identifier"), "unterminated quote in a pattern");
	parse_err(T "where id =\n", E("2:11", "expected a literal near end "
	    "of line"), "missing literal");
	parse_err(T "where (id = 1\n", E("3:1", "expected ')' near end of "
	    "file"), "unclosed parenthesis");
	parse_err(T "where id = 1 2\n", E("2:14", "expected end of line near "
	    "'2'"), "extra token");
	parse_err(T "where id = 1 and\n  qty = 2\n", E("2:17", "expected an "
	    "expression near end of line"), "a newline outside parentheses");
	parse_err(T "where id = 1 and or qty = 2\n", E("2:18", "expected an "
	    "expression near 'or'"), "and or");
	parse_err(T "where id ! 1\n", E("2:10", "expected end of line near "
	    "'!'"), "stray character");
	parse_err(T "where 5 < 6\n", E("2:11", "expected a column name near "
	    "'6'"), "two literals");
	parse_err(T "where id is nul\n", E("2:13", "expected 'null' near "
	    "'nul'"), "is nul");
	parse_err(T "where id not like 'a'\n", E("2:14", "expected 'in' near "
	    "'like'"), "not like");
	parse_err(T "where id in 1\n", E("2:13", "expected '(' near '1'"),
	    "in without list");
	parse_err(T "where id in (1 2)\n", E("2:16", "expected ',' or ')' "
	    "near '2'"), "in list without comma");
	parse_err(T "where id = null\n", E("2:12", "a comparison with null is "
	    "never true; use 'is null' or 'is not null'"), "= null");
	parse_err(T "where null <> id\n", E("2:7", "a comparison with null is "
	    "never true; use 'is null' or 'is not null'"), "null <> col");
	parse_err(T "where id in (1, null)\n", E("2:17", "null in an 'in' list "
	    "never matches; use 'is null'"), "null in a list");
	parse_err(T "where id = qty\n", E("2:12", "comparing two columns is "
	    "not supported; compare the column with a literal"),
	    "two columns");
	parse_err(T "where id in (1, 'a')\n", E("2:17", "an 'in' list mixes "
	    "literal kinds (strings, numbers, booleans)"), "mixed in list");
	parse_err(T "where id = 12abc\n", E("2:12", "expected a literal near "
	    "'12abc'"), "bad number");
	parse_err("table public.*\n", E("1:14", "expected a table name (a "
	    "table section takes no wildcards) near '*'"), "wildcard section");
	parse_err("table orders\n", E("1:13", "expected '.' and a table name "
	    "near end of line"), "unqualified section");
	parse_err("table public.\"\"\n", E("1:14", "zero-length quoted "
	    "identifier"), "empty quoted identifier");
	parse_err(T "table public.orders\n", E("2:7", "table public.orders "
	    "already has a section (line 1)"), "duplicate section");
	parse_err(T "where id = 1\nwhere id = 2\n", E("3:1", "table "
	    "public.orders already has a where line (line 2); combine the "
	    "conditions with 'and'"), "duplicate where");
	parse_err(T "column note drop\ncolumn NOTE null\n", E("3:8", "column "
	    "note already has a rule (line 2)"), "duplicate column rule");
	parse_err(T "id-mode remap\nid-mode remap\n", E("3:1", "table "
	    "public.orders already has an id-mode line (line 2)"),
	    "duplicate id-mode");
	parse_err(T "column note mask\n", E("2:13", "expected drop, null, const "
	    "or hash near 'mask'"), "unknown treatment");
	parse_err(T "column note const null\n", E("2:19", "write 'column note "
	    "null' to set the column to NULL"), "const null");
	parse_err(T "column note const id\n", E("2:19", "expected a literal "
	    "near 'id'"), "const column");
	parse_err(T "id-mode keep\n", E("2:9", "expected remap or preserve "
	    "near 'keep'"), "bad id-mode");
	parse_err("include public\n", E("1:15", "expected '.' between schema "
	    "and table near end of line"), "pattern without a dot");
	parse_err("exclude public.(x)\n", E("1:16", "expected a SCHEMA.TABLE "
	    "pattern near '('"), "pattern with punctuation");
	parse_err("hash-key-file\n", E("1:14", "expected a path near end of "
	    "line"), "hash-key-file without a path");
	parse_err("hash-key-file a\nhash-key-file b\n", E("2:1", "hash-key-file "
	    "given twice (first at line 1)"), "two key files");
	parse_err("table public.users\ncolumn email hash\n", E("2:14", "column "
	    "email is hashed but the file has no hash-key-file line"),
	    "hash without a key file");

	r = filter_parse(T "where id\0 = 1\n", sizeof(T "where id\0 = 1\n") - 1,
	    FILE_NAME, &f, &err);
	ok(r == LS_ERR_INVALID && err != NULL && strcmp(err, E("2:9", "NUL "
	    "byte in the filter file")) == 0, "syntax error: NUL byte");
	free(err);
	err = NULL;

	p = deep + sprintf(deep, T "where ");
	for (i = 0; i < FILTER_MAX_DEPTH; i++)
		*p++ = '(';
	p += sprintf(p, "id = 1");
	for (i = 0; i < FILTER_MAX_DEPTH; i++)
		*p++ = ')';
	strcpy(p, "\n");
	f = parse(deep);
	ok(f != NULL, "%d nested parentheses parse", FILTER_MAX_DEPTH);
	filter_free(f);
	p = deep + sprintf(deep, T "where ");
	for (i = 0; i <= FILTER_MAX_DEPTH; i++)
		*p++ = '(';
	strcpy(p, "id = 1\n");
	parse_err(deep, E("2:107", "expression nested deeper than 100 "
	    "levels"), "101 parentheses");
	p = deep + sprintf(deep, T "where ");
	for (i = 0; i <= FILTER_MAX_DEPTH; i++)
		p += sprintf(p, "not ");
	strcpy(p, "active\n");
	parse_err(deep, E("2:407", "expression nested deeper than 100 "
	    "levels"), "101 nots");
}

static void
test_validation_errors(void)
{
	validate_err("table public.nope\n", E("1:7", "table public.nope is not "
	    "in the source database"), "unknown table");
	validate_err(T "where idd = 1\n", E("2:7", "column idd is not in table "
	    "public.orders"), "unknown column in where");
	validate_err(T "column \"mixed case\" drop\n", E("2:8", "column mixed "
	    "case is not in table public.orders"), "unknown column in a rule");
	validate_err(T "where id = 'abc'\n", E("2:12", "column id is int4: "
	    "'abc' is not an integer"), "string for an integer");
	validate_err(T "where id = 3.5\n", E("2:12", "column id is int4: "
	    "expected an integer, not 3.5"), "decimal for an integer");
	validate_err(T "where qty = 99999999999999999999\n", E("2:13", "column "
	    "qty is int8: 99999999999999999999 is out of range"),
	    "integer out of range");
	validate_err(T "where customer = 42\n", E("2:18", "column customer is "
	    "text: expected a 'quoted string', not 42"), "number for text");
	validate_err(T "where active < true\n", E("2:14", "column active is "
	    "bool: only =, != and in apply to it"), "ordering a boolean");
	validate_err(T "where tags > '{}'\n", E("2:12", "column tags is type "
	    "3802: only =, != and in apply to it"), "ordering an unknown type");
	validate_err(T "where active = 1\n", E("2:16", "column active is bool: "
	    "expected true or false, not 1"), "number for a boolean");
	validate_err(T "where id\n", E("2:7", "column id is int4, not bool; "
	    "compare it with a value"), "non-boolean column alone");
	validate_err(T "where amount > 'ten'\n", E("2:16", "column amount is "
	    "numeric: expected a number, not 'ten'"), "string for numeric");
	validate_err(T "where uid = 'xyz'\n", E("2:13", "column uid is uuid: "
	    "'xyz' is not a uuid"), "bad uuid");
	validate_err(T "where day = '2024-02-30'\n", E("2:13", "column day is "
	    "date: expected a date like '2024-02-29', not '2024-02-30'"),
	    "no such date");
	validate_err(T "where day = '2024-02-29 10:00'\n", E("2:13", "column "
	    "day is date: '2024-02-29 10:00' has a time of day"),
	    "a time for a date");
	validate_err(T "where ts = '2024-01-01 00:00+02'\n", E("2:12", "column "
	    "ts is timestamp: '2024-01-01 00:00+02' has a time zone; a "
	    "timestamp literal must not have one"), "zone for a timestamp");
	validate_err(T "where created in ('2024-01-01', 'soon')\n", E("2:33",
	    "column created is timestamptz: expected a timestamp like "
	    "'2024-02-29 18:29:59+05:30', not 'soon'"), "bad list item");
	validate_err("hash-key-file k\n" T "column id hash\n", E("3:11", "column "
	    "id is int4: hash applies to text, varchar and char columns (it "
	    "writes 64 hex digits)"), "hash on an integer");
	validate_err(T "column small const 40000\n", E("2:20", "column small is "
	    "int2: 40000 is out of range"), "const out of range");
	validate_err(T "column active const 'maybe'\n", E("2:21", "column active "
	    "is bool: expected true or false, not 'maybe'"), "bad const");
	validate_err("table public.tmp_1\ncolumn x drop\n", E("1:7", "every "
	    "column of table public.tmp_1 is dropped; exclude the table "
	    "instead"), "every column dropped");
	validate_err(T "column nope drop\nwhere id = 'x'\ntable public.nope\n",
	    E("2:8", "column nope is not in table public.orders"),
	    "the first problem in file order");
}

static void
test_integers(void)
{
	PASS("id = 10", "id", "10");
	FAIL("id = 10", "id", "11");
	PASS("id != 10", "id", "11");
	PASS("id <> 10", "id", "11");
	FAIL("id <> 10", "id", "10");
	PASS("id < 10", "id", "9");
	FAIL("id < 10", "id", "10");
	PASS("id <= 10", "id", "10");
	PASS("id > 9", "id", "10");
	PASS("id >= 10", "id", "10");
	FAIL("id >= 10", "id", "-11");
	PASS("id > '9'", "id", "10");
	PASS("10 > id", "id", "9");
	FAIL("10 <= id", "id", "9");
	PASS("qty = -9223372036854775808", "qty", "-9223372036854775808");
	PASS("qty > 9223372036854775806", "qty", "9223372036854775807");
	PASS("qty = ' 42 '", "qty", "42");
	PASS("small in (1, 2, 3)", "small", "2");
	FAIL("small not in (1, 2, 3)", "small", "2");
	PASS("small not in (1, 2, 3)", "small", "4");
}

static void
test_decimals(void)
{
	PASS("amount > 9", "amount", "10");
	PASS("amount > 9.99", "amount", "10.00");
	PASS("amount = 10", "amount", "10.000");
	PASS("amount = 1e1", "amount", "10");
	PASS("amount = 0.001", "amount", "1e-3");
	PASS("amount < -0.5", "amount", "-1");
	PASS("amount > -0.5", "amount", "-0.25");
	PASS("amount = 0", "amount", "-0.000");
	PASS("amount > 123456789012345678901234567890.1",
	    "amount", "123456789012345678901234567890.10000000001");
	FAIL("amount > 123456789012345678901234567890.1",
	    "amount", "123456789012345678901234567890.1");
	PASS("amount > '1e300'", "amount", "Infinity");
	PASS("amount > 'Infinity'", "amount", "NaN");
	PASS("amount = 'nan'", "amount", "NaN");
	PASS("amount < -1e300", "amount", "-Infinity");
	PASS("score = 0.1", "score", "0.1");
	FAIL("score = 0.1", "score", "0.1000000000000000055511151231257827");
	PASS("score > 1e20", "score", "1.5e+20");
	PASS("score < 1e-4", "score", "1.23e-05");
	PASS("score in (0.5, 1.5)", "score", "1.50");
}

static void
test_text_types(void)
{
	FAIL("note > '9'", "note", "10");
	PASS("note < '9'", "note", "10");
	PASS("customer = 'it''s'", "customer", "it's");
	FAIL("customer = 'Acme'", "customer", "acme");
	PASS("customer >= 'b'", "customer", "ba");
	PASS("customer < 'ab'", "customer", "a");
	PASS("customer in ('x', 'y', '')", "customer", "");
	PASS("code = 'ab'", "code", "ab   ");
	PASS("code = 'ab  '", "code", "ab");
	FAIL("code = 'ab'", "code", "abc");
	PASS("uid = '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'", "uid",
	    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	PASS("uid = 'a0eebc999c0b4ef8bb6d6bb9bd380a11'", "uid",
	    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	PASS("uid < 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "uid",
	    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	PASS("tags = '{\"a\": 1}'", "tags", "{\"a\": 1}");
	PASS("tags != '{}'", "tags", "[]");
	PASS("\"Mixed Case\" = 'x'", "Mixed Case", "x");
}

static void
test_booleans(void)
{
	PASS("active", "active", "t");
	FAIL("active", "active", "f");
	FAIL("active", "active", NULL);
	FAIL("not active", "active", NULL);
	PASS("not active", "active", "f");
	PASS("active = true", "active", "t");
	PASS("active != 'yes'", "active", "f");
	PASS("false = active", "active", "f");
	PASS("active in (false)", "active", "f");
	PASS("true", "active", NULL);
	FAIL("false", "active", NULL);
	FAIL("not true", "active", NULL);
}

static void
test_times(void)
{
	const char *v = "2024-02-29 18:29:59.123456+05:30";

	PASS("created > '2024-02-29 12:59:59+00'", "created", v);
	PASS("created = '2024-02-29 12:59:59.123456Z'", "created", v);
	PASS("created = '2024-02-29T13:59:59.123456+01'", "created", v);
	PASS("created = '2024-02-29 08:59:59.123456-0400'", "created", v);
	FAIL("created < '2024-02-29 12:59:59.123456 UTC'", "created", v);
	PASS("created < '2024-02-29 12:59:59.123457'", "created", v);
	PASS("created >= '2024-02-29'", "created", v);
	PASS("created = '1900-01-01 00:00:00+00:19:32'", "created",
	    "1899-12-31 23:40:28+00");
	PASS("created < '0001-01-01 00:00:00+00'", "created",
	    "0044-03-15 12:00:00+00 BC");
	PASS("created > '294000-01-01 00:00+00'", "created", "infinity");
	PASS("created < '4000-01-01 00:00:00+00 BC'", "created", "-infinity");
	PASS("ts = '2024-02-29 18:29:59.123456'", "ts",
	    "2024-02-29 18:29:59.123456");
	PASS("ts < '2024-02-29 18:30'", "ts", "2024-02-29 18:29:59.999999");
	PASS("ts = '2024-03-01'", "ts", "2024-02-29 24:00:00");
	PASS("day < '2024-03-01'", "day", "2024-02-29");
	FAIL("day > '2024-03-01'", "day", "2024-02-29");
	PASS("day < '0001-01-01'", "day", "0044-03-15 BC");
	PASS("day = '2000-02-29'", "day", "2000-02-29");
	PASS("day in ('2024-01-01', '2024-02-29')", "day", "2024-02-29");
	PASS("day > '-infinity'", "day", "1970-01-01");
}

/* NULL, three-valued logic, and values the predicate cannot judge. */
static void
test_null_logic(void)
{
	struct ls_value v[NORD];
	struct ls_tuple t;
	char *err = NULL;
	int r;

	FAIL("amount > 5", "amount", NULL);
	FAIL("not (amount > 5)", "amount", NULL);
	FAIL("amount <= 5", "amount", NULL);
	PASS("amount > 5 or true", "amount", NULL);
	FAIL("amount > 5 and true", "amount", NULL);
	FAIL("not (amount > 5 and false) and amount > 5", "amount", NULL);
	PASS("not (amount > 5 and false)", "amount", NULL);
	PASS("amount is null", "amount", NULL);
	FAIL("amount is not null", "amount", NULL);
	PASS("amount is not null", "amount", "0");
	FAIL("amount in (1, 2)", "amount", NULL);
	FAIL("amount not in (1, 2)", "amount", NULL);
	PASS("id = 1 or id = 2 or id = 3 and false or id = 4", "id", "4");
	FAIL("id = 1 or id = 2 and id = 3", "id", "2");
	PASS("not not id = 7", "id", "7");

	t = row(v, "note", UNCH, "id", "1", NULL);
	r = where_on("note = 'x'", &t, &err);
	ok(r == LS_ERR_INVALID && err != NULL && strstr(err, "column note of "
	    "public.orders needs its value but it was not sent (unchanged "
	    "TOAST)") != NULL, "UNCHANGED in a predicate: LS_ERR_INVALID");
	free(err);
	err = NULL;
	ok(where_on("note = 'x' or id = 1", &t, NULL) == 1,
	    "or decides without the unchanged value");
	ok(where_on("id = 2 and note = 'x'", &t, NULL) == 0,
	    "and decides without the unchanged value");
	ok(where_on("id = 1 and note = 'x'", &t, NULL) == LS_ERR_INVALID,
	    "and needs it");
	ok(where_on("note is not null", &t, NULL) == 1,
	    "an unchanged TOAST value is not null");

	t = row(v, "id", "abc", NULL);
	ok(where_on("id = 1", &t, &err) == LS_ERR_CORRUPT && err != NULL &&
	    strstr(err, "does not read as int4") != NULL,
	    "a value that is not its type: LS_ERR_CORRUPT");
	free(err);
	err = NULL;
	t = row(v, "id", "1", NULL);
	v[0].kind = LS_VAL_BINARY;
	ok(where_on("id = 1", &t, NULL) == LS_ERR_INVALID,
	    "a binary value: LS_ERR_INVALID");
}

/* A relation that lost a column or changed a type since validation. */
static void
test_schema_drift(void)
{
	struct filter *f = load(T "where qty > 1\n");
	const struct filter_table *ft = filter_table(f, "public", "orders");
	struct ls_value v[NORD];
	struct ls_tuple t = row(v, "qty", "5", NULL);
	char *err = NULL;
	bool pass;

	ok(filter_row_passes(ft, &orders_rel, &t, &pass, &err) == 0 && pass,
	    "drift: before");
	rel_cols[3].type_oid = 23;
	ok(filter_row_passes(ft, &orders_rel, &t, &pass, &err) ==
	    LS_ERR_INVALID && err != NULL && strstr(err, "is now int4, not "
	    "int8") != NULL, "a column whose type changed");
	rel_cols[3].type_oid = 20;
	rel_cols[3].name = "quantity";
	ok(filter_row_passes(ft, &orders_rel, &t, &pass, &err) ==
	    LS_ERR_INVALID, "a column that has gone");
	rel_cols[3].name = "qty";
	t.ncols--;
	ok(filter_row_passes(ft, &orders_rel, &t, &pass, &err) ==
	    LS_ERR_INVALID, "a tuple shorter than its relation");
	free(err);
	filter_free(f);
}

/* filter_change_action on a change of public.orders; -1000 on no filter. */
static int
action(const struct filter_table *ft, char kind, char old_kind,
    const struct ls_tuple *old, const struct ls_tuple *new, char **errp)
{
	struct ls_change c = { 0 };
	enum filter_action act = (enum filter_action)-1;
	char *err = NULL;
	int r;

	c.kind = kind;
	c.relid = orders_rel.oid;
	c.old_kind = old_kind;
	if (old != NULL)
		c.old = *old;
	if (new != NULL)
		c.new = *new;
	r = filter_change_action(ft, &orders_rel, &c, &act, &err);
	if (errp != NULL)
		*errp = err;
	else
		free(err);
	return r != 0 ? r : (int)act;
}

#define ROW(v, ...)	row(v, __VA_ARGS__, NULL)

static void
test_actions_nonkey(void)
{
	struct filter *f = load(T "where amount > 100\n");
	const struct filter_table *ft = filter_table(f, "public", "orders");
	struct ls_value a[NORD], b[NORD];
	struct ls_tuple in, out;
	char *err = NULL;

	in = ROW(a, "id", "1", "amount", "150");
	out = ROW(b, "id", "1", "amount", "50");
	ok(action(ft, 'I', 0, NULL, &in, NULL) == FILTER_APPLY,
	    "insert passing: APPLY");
	ok(action(ft, 'I', 0, NULL, &out, NULL) == FILTER_SKIP,
	    "insert failing: SKIP");
	ok(action(ft, 'U', 'O', &in, &in, NULL) == FILTER_APPLY,
	    "update in -> in: APPLY");
	ok(action(ft, 'U', 'O', &in, &out, NULL) == FILTER_AS_DELETE,
	    "update in -> out: AS_DELETE");
	ok(action(ft, 'U', 'O', &out, &in, NULL) == FILTER_AS_INSERT,
	    "update out -> in: AS_INSERT");
	ok(action(ft, 'U', 'O', &out, &out, NULL) == FILTER_SKIP,
	    "update out -> out: SKIP");
	ok(action(ft, 'U', 0, NULL, &in, NULL) == FILTER_AS_UPSERT,
	    "update, before unknown, passing: AS_UPSERT");
	ok(action(ft, 'U', 0, NULL, &out, NULL) == FILTER_DELETE_IF_PRESENT,
	    "update, before unknown, failing: DELETE_IF_PRESENT");
	ok(action(ft, 'U', 'K', &in, &out, NULL) == FILTER_DELETE_IF_PRESENT,
	    "an old key does not tell a non-key predicate");
	ok(action(ft, 'D', 'O', &out, NULL, NULL) == FILTER_SKIP,
	    "delete of a full old row that fails: SKIP");
	ok(action(ft, 'D', 'O', &in, NULL, NULL) == FILTER_APPLY,
	    "delete of a full old row that passes: APPLY");
	ok(action(ft, 'D', 'K', &in, NULL, NULL) == FILTER_DELETE_IF_PRESENT,
	    "delete by key, predicate on other columns: DELETE_IF_PRESENT");
	ok(action(ft, 'T', 0, NULL, NULL, NULL) == FILTER_APPLY,
	    "truncate: APPLY");
	ok(action(NULL, 'I', 0, NULL, &out, NULL) == FILTER_APPLY,
	    "no section: APPLY");

	/* UNCHANGED values: filled from a full old row, or an error. */
	out = ROW(b, "id", "1", "amount", UNCH);
	ok(action(ft, 'U', 'O', &in, &out, NULL) == FILTER_APPLY,
	    "unchanged predicate column filled from the old row");
	ok(action(ft, 'U', 0, NULL, &out, &err) == LS_ERR_INVALID &&
	    err != NULL && strstr(err, "unchanged TOAST") != NULL,
	    "unchanged predicate column without a full old row: error");
	free(err);
	err = NULL;
	in = ROW(a, "id", "1", "amount", "50", "note", "long");
	out = ROW(b, "id", "1", "amount", "150", "note", UNCH);
	ok(action(ft, 'U', 'O', &in, &out, NULL) == FILTER_AS_INSERT,
	    "a row moving in gets its unchanged values from the old row");
	ok(action(ft, 'U', 0, NULL, &out, &err) == LS_ERR_INVALID &&
	    err != NULL && strstr(err, "moves a row into the filter's "
	    "predicate but column note was not sent") != NULL,
	    "a row moving in without them: error");
	free(err);
	filter_free(f);
}

static void
test_actions_key(void)
{
	struct filter *f = load(T "where id > 100\n");
	const struct filter_table *ft = filter_table(f, "public", "orders");
	struct ls_value a[NORD], b[NORD];
	struct ls_tuple lo, hi;

	lo = ROW(a, "id", "50", "amount", "1");
	hi = ROW(b, "id", "150", "amount", "1");
	ok(action(ft, 'U', 0, NULL, &hi, NULL) == FILTER_APPLY,
	    "key predicate, key unchanged, passing: APPLY");
	ok(action(ft, 'U', 0, NULL, &lo, NULL) == FILTER_SKIP,
	    "key predicate, key unchanged, failing: SKIP");
	ok(action(ft, 'U', 'K', &lo, &hi, NULL) == FILTER_AS_INSERT,
	    "key moves in: AS_INSERT");
	ok(action(ft, 'U', 'K', &hi, &lo, NULL) == FILTER_AS_DELETE,
	    "key moves out: AS_DELETE");
	ok(action(ft, 'D', 'K', &hi, NULL, NULL) == FILTER_APPLY,
	    "delete by a passing key: APPLY");
	ok(action(ft, 'D', 'K', &lo, NULL, NULL) == FILTER_SKIP,
	    "delete by a failing key: SKIP");
	hi = ROW(b, "id", "150", "note", UNCH);
	ok(action(ft, 'U', 'K', &lo, &hi, NULL) == LS_ERR_INVALID,
	    "key moves in with an unsent value: error");
	filter_free(f);
}

static void
hmac_ref(const char *s, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	HMAC(EVP_sha256(), hkey, 32, (const unsigned char *)s, len, md, &n);
	for (i = 0; i < n && i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[64] = '\0';
}

static const char mask_file[] =
    "hash-key-file k\n"
    T
    "column note drop\n"
    "column \"Mixed Case\" null\n"
    "column customer hash\n"
    "column small const -7\n"
    "column active const true\n"
    "column created const '2024-02-29 12:00'\n";

static const struct ls_value *
out_col(const struct ls_relation *rel, const struct ls_tuple *t,
    const char *name)
{
	uint16_t i;

	for (i = 0; i < rel->ncols && i < t->ncols; i++)
		if (strcmp(rel->cols[i].name, name) == 0)
			return &t->vals[i];
	return NULL;
}

static bool
val_is(const struct ls_value *v, char kind, const char *text)
{
	return v != NULL && v->kind == kind && (text == NULL ||
	    (v->len == strlen(text) && memcmp(v->data, text, v->len) == 0 &&
	    v->data[v->len] == '\0'));
}

static void
test_transform(void)
{
	struct filter *f = load(mask_file);
	const struct filter_table *ft = filter_table(f, "public", "orders");
	struct filter_scratch *s = filter_scratch_new(f), *s2;
	const struct ls_relation *orel = NULL, *orel2 = NULL;
	struct ls_value a[NORD];
	struct ls_tuple in, out;
	char want[65];

	in = ROW(a, "id", "1", "customer", "alice", "note", "secret",
	    "Mixed Case", "m", "active", "f", "amount", "3");
	hmac_ref("alice", 5, want);
	ok(filter_transform(ft, hkey, &orders_rel, &in, s, &orel, &out) == 0,
	    "transform");
	ok(orel != &orders_rel && orel->ncols == NORD - 1 && out.ncols ==
	    NORD - 1 && orel->oid == orders_rel.oid &&
	    out_col(orel, &out, "note") == NULL, "the dropped column is gone");
	ok(val_is(out_col(orel, &out, "customer"), LS_VAL_TEXT, want),
	    "hash is HMAC-SHA256 hex (checked against OpenSSL HMAC())");
	ok(val_is(out_col(orel, &out, "Mixed Case"), LS_VAL_NULL, NULL),
	    "null");
	ok(val_is(out_col(orel, &out, "small"), LS_VAL_TEXT, "-7") &&
	    val_is(out_col(orel, &out, "active"), LS_VAL_TEXT, "t"),
	    "const, in the column's text form, NULL replaced too");
	ok(val_is(out_col(orel, &out, "created"), LS_VAL_TEXT,
	    "2024-02-29 12:00:00.000000+00"),
	    "a timestamptz const without a zone is written as UTC");
	ok(val_is(out_col(orel, &out, "id"), LS_VAL_TEXT, "1") &&
	    val_is(out_col(orel, &out, "amount"), LS_VAL_TEXT, "3") &&
	    (out_col(orel, &out, "id")->data == a[0].data),
	    "other columns pass through");
	ok((orel->cols[0].flags & LS_COL_KEY) != 0, "the key flag stays");

	in = ROW(a, "id", "1", "customer", NULL, "Mixed Case", UNCH,
	    "active", UNCH);
	ok(filter_transform(ft, hkey, &orders_rel, &in, s, &orel2, &out) == 0 &&
	    orel2 == orel, "an equal relation gives the same output relation");
	ok(val_is(out_col(orel, &out, "customer"), LS_VAL_NULL, NULL),
	    "hash keeps NULL");
	ok(val_is(out_col(orel, &out, "Mixed Case"), LS_VAL_UNCHANGED, NULL) &&
	    val_is(out_col(orel, &out, "active"), LS_VAL_UNCHANGED, NULL),
	    "UNCHANGED stays UNCHANGED");
	ok(filter_transform(ft, NULL, &orders_rel, &in, s, &orel2, &out) ==
	    LS_ERR_INVALID, "hash without a key: LS_ERR_INVALID");
	in.ncols--;
	ok(filter_transform(ft, hkey, &orders_rel, &in, s, &orel2, &out) ==
	    LS_ERR_INVALID, "tuple and relation disagree: LS_ERR_INVALID");
	in.ncols++;
	ok(filter_transform(NULL, NULL, &orders_rel, &in, s, &orel2, &out) ==
	    0 && orel2 == &orders_rel && out.vals == in.vals,
	    "no section: unchanged");
	filter_free(f);

	/* The old scratch outlives its filter: another filter's section,
	 * even one at the freed filter's address, is refused. */
	f = load(T "column customer null\n");
	ft = filter_table(f, "public", "orders");
	ok(filter_transform(ft, NULL, &orders_rel, &in, s, &orel2, &out) ==
	    LS_ERR_INVALID, "a scratch of another filter: LS_ERR_INVALID");
	filter_scratch_free(s);
	s = filter_scratch_new(f);
	ok(filter_transform(ft, NULL, &orders_rel, &in, s, &orel2, &out) ==
	    0 && orel2 == &orders_rel && out.ncols == NORD,
	    "nothing dropped: the input relation");
	filter_free(f);
	f = load(T "column id drop\n");
	ft = filter_table(f, "public", "orders");
	s2 = filter_scratch_new(f);
	ok(filter_transform(ft, NULL, &orders_rel, &in, s2, &orel2, &out) ==
	    LS_ERR_INVALID,
	    "dropping the whole key: LS_ERR_INVALID");
	filter_scratch_free(s2);
	filter_free(f);
	filter_scratch_free(s);
	filter_scratch_free(NULL);
}

static void
test_copy_escapes(void)
{
	char val[256], enc[2 * 256 + 1], dec[2 * 256 + 1];
	size_t n, m;
	int i;

	ok(filter_copy_decode("a\\tb\\\\c\\nd\\101\\x41\\q\\x", 22, dec, &n) ==
	    0 && n == 11 && memcmp(dec, "a\tb\\c\ndAAqx", 11) == 0 &&
	    dec[n] == '\0', "decode: named, octal, hex and other escapes");
	ok(filter_copy_decode("\\b\\f\\r\\v\\0\\1234", 15, dec, &n) == 0 &&
	    n == 7 && memcmp(dec, "\b\f\r\v\0S4", 7) == 0,
	    "decode: \\b \\f \\r \\v, octal of one to three digits");
	ok(filter_copy_decode("abc\\", 4, dec, &n) == LS_ERR_CORRUPT,
	    "decode: a trailing lone backslash is corrupt");
	n = filter_copy_encode("a\tb\\c\nd\r\b\f\v", 11, enc);
	ok(n == 18 && strcmp(enc, "a\\tb\\\\c\\nd\\r\\b\\f\\v") == 0,
	    "encode escapes what COPY escapes");
	for (i = 0; i < 255; i++)
		val[i] = (char)(i + 1);
	n = filter_copy_encode(val, 255, enc);
	ok(filter_copy_decode(enc, n, dec, &m) == 0 && m == 255 &&
	    memcmp(dec, val, 255) == 0 && memchr(enc, '\t', n) == NULL &&
	    memchr(enc, '\n', n) == NULL, "every byte round-trips");
}

/* The public.orders COPY line, fields in column order. */
#define ORDERS_LINE(id, customer, amount, note) \
	id "\t" customer "\t" amount "\t\\N\tf\t\\N\t\\N\t\\N\t\\N\t\\N\t" \
	note "\t\\N\t\\N\t{}\tm"

static void
test_copy_line(void)
{
	struct filter *f;
	const struct filter_table *ft;
	struct filter_scratch *s = NULL;
	const char *names[NORD], *out, *line;
	char want[512], h[65], *err = NULL;
	size_t outlen, n;
	bool keep;

	snprintf(want, sizeof(want), "%s" "where amount > 100\n", mask_file);
	f = load(want);
	ft = filter_table(f, "public", "orders");
	n = filter_copy_columns(ft, &tables[0], names);
	ok(n == NORD - 1 && strcmp(names[9], "uid") == 0 &&
	    strcmp(names[10], "score") == 0, "copy columns leave out note");
	ok(filter_copy_columns(NULL, &tables[0], names) == NORD,
	    "no section: every column");
	filter_free(f);

	snprintf(want, sizeof(want), "%s" "where amount > 100\n", mask_file);
	f = load(want);
	ft = filter_table(f, "public", "orders");
	s = filter_scratch_new(f);
	line = ORDERS_LINE("1", "al\\tice", "150", "sec\\tret") "\n";
	hmac_ref("al\tice", 6, h);
	snprintf(want, sizeof(want), "1\t%s\t150\t\\N\tt\t2024-02-29 "
	    "12:00:00.000000+00\t\\N\t\\N\t\\N\t\\N\t\\N\t-7\t{}\t\\N\n", h);
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == 0 && keep, "a row that passes is kept");
	ok(keep && outlen == strlen(want) && memcmp(out, want, outlen) == 0,
	    "drop, null, const and hash of the decoded value");
	if (keep && (outlen != strlen(want) || memcmp(out, want, outlen)))
		diag("got '%.*s'", (int)outlen, out);
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line) - 1, s,
	    &keep, &out, &outlen, &err) == 0 && keep &&
	    outlen == strlen(want) - 1 && memcmp(out, want, outlen) == 0,
	    "no newline in, none out");
	line = ORDERS_LINE("2", "bob", "50", "x") "\n";
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == 0 && !keep, "a row that fails is dropped");
	line = ORDERS_LINE("2", "bob", "\\N", "x") "\n";
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == 0 && !keep, "\\N is NULL: dropped");
	line = ORDERS_LINE("3", "\\N", "1\\x301", "x") "\n";
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == 0 && keep && strncmp(out, "3\t\\N\t1\\x301\t",
	    12) == 0, "escapes decoded for the predicate, hash keeps \\N");
	line = "1\tbob\t150\n";
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == LS_ERR_CORRUPT && err != NULL &&
	    strstr(err, "has 3 fields, expected 15") != NULL,
	    "wrong number of fields: LS_ERR_CORRUPT");
	line = ORDERS_LINE("1", "bob", "150", "x\\") "\n";
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == LS_ERR_CORRUPT, "lone backslash: corrupt");
	line = ORDERS_LINE("1", "bob", "abc", "x") "\n";
	ok(filter_copy_line(ft, hkey, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == LS_ERR_CORRUPT, "bad number: corrupt");
	line = ORDERS_LINE("1", "bob", "150", "x") "\n";
	ok(filter_copy_line(ft, NULL, &tables[0], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == LS_ERR_INVALID, "hash without a key");
	ok(filter_copy_line(NULL, NULL, &tables[0], line, strlen(line), s,
	    &keep, &out, &outlen, &err) == 0 && keep && out == line &&
	    outlen == strlen(line), "no section: the line itself");
	filter_free(f);

	f = load("table public.users\ncolumn name const 'back\\slash\ttab'\n"
	    "column email null\n");
	ft = filter_table(f, "public", "users");
	ok(filter_copy_line(ft, NULL, &tables[1], "7\ta@b\tann\n", 10, s, &keep,
	    &out, &outlen, &err) == LS_ERR_INVALID && err != NULL &&
	    strstr(err, "another filter") != NULL,
	    "a scratch of another filter: LS_ERR_INVALID");
	filter_scratch_free(s);
	s = filter_scratch_new(f);
	line = "7\ta@b\tann\n";
	ok(filter_copy_line(ft, NULL, &tables[1], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == 0 && keep && outlen == 22 &&
	    memcmp(out, "7\t\\N\tback\\\\slash\\ttab\n", 22) == 0,
	    "a const is escaped for COPY");
	line = "\t\t\n";
	ok(filter_copy_line(ft, NULL, &tables[1], line, strlen(line), s, &keep,
	    &out, &outlen, &err) == 0 && keep && outlen == 21 &&
	    memcmp(out, "\t\\N\tback\\\\slash\\ttab\n", 21) == 0,
	    "empty fields stay empty");
	filter_free(f);
	free(err);
	filter_scratch_free(s);
}

int
main(void)
{
	init_rel();
	test_parse_good();
	test_includes();
	test_warnings();
	test_load();
	test_syntax_errors();
	test_validation_errors();
	test_integers();
	test_decimals();
	test_text_types();
	test_booleans();
	test_times();
	test_null_logic();
	test_schema_drift();
	test_actions_nonkey();
	test_actions_key();
	test_transform();
	test_copy_escapes();
	test_copy_line();
	return tap_done();
}
