/*
 * test_ddl.c: captured DDL messages (ddl_fixtures.h, as logship-agent
 * --ddl emits them) to target SQL, filters' say, and the statement
 * counter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../restore/ddl.h"
#include "ddl_fixtures.h"
#include "tap.h"

#define NFIX	(sizeof(fixtures) / sizeof(fixtures[0]))

/* The nth message (from 0) of fixture name. */
static const char *
fixture(const char *name, int nth)
{
	size_t i;

	for (i = 0; i < NFIX; i++)
		if (strcmp(fixtures[i].name, name) == 0 && nth-- == 0)
			return fixtures[i].json;
	fprintf(stderr, "no fixture %s\n", name);
	abort();
}

static struct ddl_plan *
plan_h(const char *name, int nth, const struct ddl_hooks *h)
{
	const char *json = fixture(name, nth);
	struct ddl_plan *p = NULL;
	char *err = NULL;

	if (ddl_plan_new(json, strlen(json), h, &p, &err) != 0) {
		diag("%s: %s", name, err);
		free(err);
		return NULL;
	}
	return p;
}

/* The plan's statements, "s1;\ns2;\n", or "STOP: why". */
static char *
plan_text(const char *name, int nth, const struct ddl_hooks *h)
{
	struct ddl_plan *p = plan_h(name, nth, h);
	char *out = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		abort();
	if (p == NULL)
		fprintf(f, "ERROR");
	else if (p->stop != NULL)
		fprintf(f, "STOP%s: %s", p->skippable ? "" : " (filter)", p->stop);
	else
		for (i = 0; i < p->nsql; i++)
			fprintf(f, "%s;\n", p->sql[i]);
	fclose(f);
	ddl_plan_free(p);
	return out;
}

static void
is_plan_h(const char *name, int nth, const char *want,
    const struct ddl_hooks *h, const char *what)
{
	char *got = plan_text(name, nth, h);

	if (!ok(strcmp(got, want) == 0, "%s", what))
		diag("got:\n%s\nwant:\n%s", got, want);
	free(got);
}

static void
is_plan(const char *name, int nth, const char *want, const char *what)
{
	is_plan_h(name, nth, want, NULL, what);
}

static void
has_plan(const char *name, int nth, const struct ddl_hooks *h,
    const char *want, const char *what)
{
	char *got = plan_text(name, nth, h);

	if (!ok(strstr(got, want) != NULL, "%s", what))
		diag("got:\n%s\nwant a part:\n%s", got, want);
	free(got);
}

static void
test_create(void)
{
	struct ddl_plan *p;

	is_plan("create", 0,
	    "CREATE SEQUENCE IF NOT EXISTS \"public\".\"t_id_seq\" AS integer "
	    "INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 "
	    "CACHE 1 NO CYCLE;\n"
	    "CREATE TABLE \"public\".\"t\" (\"id\" integer DEFAULT "
	    "nextval('public.t_id_seq'::regclass) NOT NULL, \"a\" text "
	    "DEFAULT 'x'::text NOT NULL, \"b\" integer, \"g\" integer "
	    "GENERATED ALWAYS AS ((id * 2)) STORED, \"c\" character "
	    "varying(10) COLLATE pg_catalog.\"C\", CONSTRAINT \"t_b_fkey\" "
	    "FOREIGN KEY (b) REFERENCES public.t(id), CONSTRAINT \"t_pkey\" "
	    "PRIMARY KEY (id));\n"
	    "CREATE UNIQUE INDEX IF NOT EXISTS t_pkey ON public.t USING btree "
	    "(id);\n"
	    "ALTER SEQUENCE \"public\".\"t_id_seq\" AS integer INCREMENT BY 1 "
	    "MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1 NO CYCLE "
	    "OWNED BY public.t.id;\n",
	    "CREATE TABLE: serial, key, default, generated, collation, FK; "
	    "the FK's own ALTER TABLE not repeated");
	is_plan("create", 1,
	    "CREATE INDEX IF NOT EXISTS t_a_idx ON public.t USING btree (a);\n",
	    "CREATE INDEX");
	is_plan("ctas", 0, "CREATE TABLE IF NOT EXISTS \"public\".\"ctas2\" "
	    "(\"x\" integer, \"y\" text);\n", "CREATE TABLE AS: if its rows "
	    "did not create it already");
	p = plan_h("create", 0, NULL);
	ok(p != NULL && p->tables && p->keys && !p->commit_after &&
	    p->stop == NULL &&
	    p->query != NULL && strncmp(p->query, "create table t", 14) == 0,
	    "a table command, nothing to stop, the query kept");
	ddl_plan_free(p);
}

static void
test_alter(void)
{
	is_plan("alter", 0, "", "sql_drop of a column: left to its ALTER TABLE");
	is_plan("alter", 1,
	    "ALTER TABLE \"public\".\"t\" DROP CONSTRAINT \"t_b_fkey\";\n"
	    "ALTER TABLE \"public\".\"t\" DROP COLUMN \"b\";\n"
	    "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"a\" SET DEFAULT "
	    "'y'::text;\n"
	    "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"a\" DROP NOT NULL;\n"
	    "DO $logship_ddl$BEGIN IF EXISTS (SELECT 1 FROM \"public\".\"t\" "
	    "LIMIT 1) THEN RAISE EXCEPTION USING MESSAGE = 'logship: column d "
	    "of public.t was added with values computed row by row (identity) "
	    "and the table has rows: the source''s values are not in the "
	    "stream; add the column on the target and copy its values from "
	    "the source'; END IF; END$logship_ddl$;\n"
	    "ALTER TABLE \"public\".\"t\" ADD COLUMN \"d\" integer GENERATED "
	    "BY DEFAULT AS IDENTITY NOT NULL;\n"
	    "ALTER TABLE \"public\".\"t\" ADD CONSTRAINT \"t_c_chk\" CHECK "
	    "(((c)::text <> ''::text));\n",
	    "ALTER TABLE: add identity column (only into an empty table), "
	    "drop column and its FK, default, NOT NULL, CHECK; reported "
	    "twice, done once");
	is_plan("retype", 0,
	    "SELECT pg_catalog.set_config('search_path', '\"$user\", "
	    "public', true);\n"
	    "alter table t alter column c type text;\n"
	    "SET LOCAL search_path TO DEFAULT;\n",
	    "ALTER COLUMN TYPE alone in its query: that statement, under its "
	    "search_path");
	is_plan("retype2", 0,
	    "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"g\" TYPE bigint "
	    "USING \"g\"::bigint;\n",
	    "ALTER COLUMN TYPE among other statements: USING col::type");
	is_plan("rename", 0,
	    "ALTER TABLE \"public\".\"t\" RENAME COLUMN \"a\" TO \"aa\";\n",
	    "RENAME COLUMN (same attnum)");
	is_plan("renamekey", 0,
	    "ALTER TABLE \"public\".\"t\" RENAME COLUMN \"id\" TO \"Id x\";\n",
	    "RENAME COLUMN of a key column: the key and a CHECK naming the "
	    "column's old name in a literal stay (no DROP/ADD CONSTRAINT)");
	is_plan("renametab", 0,
	    "ALTER TABLE \"public\".\"t\" RENAME TO \"t2\";\n", "RENAME TABLE");
	is_plan("setschema", 0,
	    "ALTER TABLE \"public\".\"t2\" SET SCHEMA \"s2\";\n"
	    "ALTER TABLE \"s2\".\"t2\" ALTER COLUMN \"id\" SET DEFAULT "
	    "nextval('s2.t_id_seq'::regclass);\n",
	    "SET SCHEMA first, then what names the new schema");
	is_plan("replident", 0,
	    "ALTER TABLE \"s2\".\"t2\" REPLICA IDENTITY FULL;\n",
	    "REPLICA IDENTITY");
}

/* ADD COLUMN c with default def (JSON), generated gen: guarded? */
static bool
guarded(const char *def, const char *gen)
{
	char json[1024];
	struct ddl_plan *p = NULL;
	char *err = NULL;
	bool r;

	snprintf(json, sizeof(json), "{\"v\":1,\"event\":\"ddl_command_end\","
	    "\"tag\":\"ALTER TABLE\",\"commands\":[{\"object_type\":"
	    "\"table\",\"tag\":\"ALTER TABLE\",\"oid\":1,\"before\":{"
	    "\"schema\":\"s\",\"name\":\"t\",\"columns\":[]},\"def\":{"
	    "\"schema\":\"s\",\"name\":\"t\",\"columns\":[{\"attnum\":1,"
	    "\"name\":\"c\",\"type\":\"text\",\"default\":%s,"
	    "\"identity\":\"\",\"generated\":\"%s\"}]}}]}", def, gen);
	if (ddl_plan_new(json, strlen(json), NULL, &p, &err) != 0) {
		diag("%s", err);
		free(err);
		return false;
	}
	r = p->nsql == 2 && strncmp(p->sql[0], "DO ", 3) == 0;
	ddl_plan_free(p);
	return r;
}

static void
test_per_row(void)
{
	static const struct {
		const char *def, *gen;
		bool guard;
	} cases[] = {
		{ "\"'basic'::text\"", "", false },
		{ "\"'x'::character varying(10)\"", "", false },
		{ "\"(0)::numeric\"", "", false },
		{ "\"'now()'::text\"", "", false },
		{ "\"'{}'::jsonb\"", "", false },
		{ "null", "", false },
		{ "\"(a * 2)\"", "s", false },
		{ "\"now()\"", "", true },
		{ "\"nextval('s.q'::regclass)\"", "", true },
		{ "\"CURRENT_TIMESTAMP\"", "", true },
		{ "\"gen_random_uuid()\"", "", true },
		{ "\"(random() * (10)::double precision)\"", "", true },
		{ "\"CURRENT_USER\"", "", true },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(guarded(cases[i].def, cases[i].gen) == cases[i].guard,
		    "ADD COLUMN DEFAULT %s: %s", cases[i].def, cases[i].guard ?
		    "only into an empty table" : "as is");
}

static void
is_str(const char *got, const char *want, const char *what)
{
	if (!ok(strcmp(got, want) == 0, "%s", what))
		diag("got:  %s\nwant: %s", got, want);
}

/* An ALTER TABLE that changed nothing a definition shows, sent in query. */
static char *
noop_alter(const char *query)
{
	char json[1024];
	struct ddl_plan *p = NULL;
	char *err = NULL, *out = NULL;
	size_t len = 0, i;
	FILE *f;

	snprintf(json, sizeof(json), "{\"v\":1,\"event\":\"ddl_command_end\","
	    "\"tag\":\"ALTER TABLE\",\"search_path\":\"s\",\"query\":"
	    "\"%s\",\"commands\":[{\"object_type\":\"table\",\"tag\":"
	    "\"ALTER TABLE\",\"oid\":1,\"before\":{\"schema\":\"s\","
	    "\"name\":\"t\",\"columns\":[]},\"def\":{\"schema\":\"s\","
	    "\"name\":\"t\",\"columns\":[]}}]}", query);
	if (ddl_plan_new(json, strlen(json), NULL, &p, &err) != 0) {
		diag("%s", err);
		free(err);
		return strdup("ERROR");
	}
	if ((f = open_memstream(&out, &len)) == NULL)
		abort();
	if (p->stop != NULL)
		fprintf(f, "STOP");
	for (i = 0; p->stop == NULL && i < p->nsql; i++)
		fprintf(f, "%s;", p->sql[i]);
	fclose(f);
	ddl_plan_free(p);
	return out;
}

static void
test_statement_of_many(void)
{
	char *got;

	got = noop_alter("UPDATE t SET c = 0 WHERE c IS NULL; "
	    "ALTER TABLE t ALTER c SET NOT NULL");
	is_str(got, "SELECT pg_catalog.set_config('search_path', 's', true);"
	    "ALTER TABLE t ALTER c SET NOT NULL;"
	    "SET LOCAL search_path TO DEFAULT;",
	    "rows, then an ALTER TABLE in one query string: that ALTER TABLE "
	    "is replayed, under the captured search_path");
	free(got);
	got = noop_alter("insert into t values (1);alter table t set "
	    "(fillfactor = 50);delete from t");
	ok(strstr(got, "alter table t set (fillfactor = 50);") != NULL,
	    "between two DML statements, any case: that one (%s)", got);
	free(got);
	got = noop_alter("SELECT f(); ALTER TABLE t ALTER c SET NOT NULL");
	is_str(got, "STOP", "beside a statement that is not row DML: stop");
	free(got);
	got = noop_alter("ALTER TABLE t ALTER c SET NOT NULL; "
	    "ALTER TABLE t SET (fillfactor = 50)");
	is_str(got, "STOP", "two ALTER TABLEs: which one is not known: stop");
	free(got);
}

/* CREATE INDEX with def (JSON string) and valid (JSON): the SQL. */
static char *
index_sql(const char *def, const char *valid)
{
	char json[1024];
	struct ddl_plan *p = NULL;
	char *err = NULL, *out = NULL;

	snprintf(json, sizeof(json), "{\"v\":1,\"event\":\"ddl_command_end\","
	    "\"tag\":\"CREATE INDEX\",\"commands\":[{\"object_type\":"
	    "\"index\",\"tag\":\"CREATE INDEX\",\"oid\":1,\"def\":{"
	    "\"schema\":\"public\",\"name\":\"i\",\"table\":\"p\","
	    "\"def\":%s,\"valid\":%s}}]}", def, valid);
	if (ddl_plan_new(json, strlen(json), NULL, &p, &err) != 0) {
		diag("%s", err);
		free(err);
		return strdup("ERROR");
	}
	out = strdup(p->nsql == 1 ? p->sql[0] : "not one statement");
	ddl_plan_free(p);
	return out;
}

static void
test_partitioned_index(void)
{
	static const char only[] =
	    "\"CREATE INDEX i ON ONLY public.p USING btree (k)\"";
	char *got;

	got = index_sql(only, "true");
	is_str(got, "CREATE INDEX IF NOT EXISTS i ON public.p USING btree (k)",
	    "CREATE INDEX on a partitioned table (valid: it covers the "
	    "partitions): built without ONLY, so theirs are made too");
	free(got);
	got = index_sql(only, "false");
	is_str(got, "CREATE INDEX IF NOT EXISTS i ON ONLY public.p USING "
	    "btree (k)", "CREATE INDEX ON ONLY (not valid yet): kept ONLY");
	free(got);
	got = index_sql("\"CREATE INDEX i ON public.t USING btree (k)\"",
	    "true");
	is_str(got, "CREATE INDEX IF NOT EXISTS i ON public.t USING btree (k)",
	    "an index of a plain table as it was");
	free(got);
}

static void
test_partitions(void)
{
	is_plan("part", 0,
	    "CREATE TABLE \"public\".\"p\" (\"id\" integer NOT NULL, \"k\" "
	    "integer NOT NULL, CONSTRAINT \"p_pkey\" PRIMARY KEY (id, k)) "
	    "PARTITION BY RANGE (k);\n"
	    "CREATE UNIQUE INDEX IF NOT EXISTS p_pkey ON ONLY public.p USING "
	    "btree (id, k);\n", "partitioned table");
	has_plan("part", 1, NULL,
	    "CREATE TABLE \"public\".\"p1\" PARTITION OF public.p FOR VALUES "
	    "FROM (0) TO (10);\nDO $logship_ddl$BEGIN IF NOT EXISTS (SELECT "
	    "1 FROM pg_catalog.pg_constraint WHERE conrelid = "
	    "'\"public\".\"p1\"'::regclass AND conname = 'p1_pkey') THEN",
	    "partition: PARTITION OF, its constraints only if not inherited");
	has_plan("attach", 1, NULL, "STOP: an ALTER TABLE of public.p that "
	    "changed nothing", "ATTACH among other statements stops");
	is_plan("detach1", 0,
	    "SELECT pg_catalog.set_config('search_path', '\"$user\", "
	    "public', true);\n"
	    "alter table p detach partition p1;\n"
	    "SET LOCAL search_path TO DEFAULT;\n",
	    "DETACH alone: that statement");
	is_plan("droptab", 0, "DROP TABLE IF EXISTS \"public\".\"p\";\n",
	    "DROP TABLE: what was named, partitions follow");
	is_plan("dropcasc", 2, "DROP TABLE IF EXISTS \"public\".\"r\" "
	    "CASCADE;\n", "DROP TABLE ... CASCADE when the source cascaded");
}

static void
test_others(void)
{
	struct ddl_plan *p;

	is_plan("schema", 0, "CREATE SCHEMA IF NOT EXISTS \"s2\";\n",
	    "CREATE SCHEMA");
	is_plan("enum", 0, "CREATE TYPE \"public\".\"mood\" AS ENUM ('a', "
	    "'b');\n", "CREATE TYPE AS ENUM");
	is_plan("enumadd", 0,
	    "ALTER TYPE \"public\".\"mood\" ADD VALUE IF NOT EXISTS 'a' "
	    "BEFORE 'c';\n"
	    "ALTER TYPE \"public\".\"mood\" ADD VALUE IF NOT EXISTS 'c' "
	    "AFTER 'a';\n"
	    "ALTER TYPE \"public\".\"mood\" ADD VALUE IF NOT EXISTS 'b' "
	    "AFTER 'c';\n", "ALTER TYPE ADD VALUE: labels in order");
	p = plan_h("enumadd", 0, NULL);
	ok(p != NULL && p->commit_after && !p->tables && !p->keys,
	    "ADD VALUE commits after its transaction");
	ddl_plan_free(p);
	p = plan_h("create", 1, NULL);
	ok(p != NULL && !p->keys, "an index changes nothing remapping reads");
	ddl_plan_free(p);
	p = plan_h("rename", 0, NULL);
	ok(p != NULL && p->keys, "a column rename may change it");
	ddl_plan_free(p);
	p = plan_h("retype2", 0, NULL);
	ok(p != NULL && p->tables && !p->keys, "a retype by cast does not");
	ddl_plan_free(p);
	is_plan("seq", 0, "CREATE SEQUENCE IF NOT EXISTS \"public\".\"sq\" AS "
	    "bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 "
	    "START WITH 100 CACHE 1 NO CYCLE;\n", "CREATE SEQUENCE");
	is_plan("seq", 1, "ALTER SEQUENCE \"public\".\"sq\" AS bigint "
	    "INCREMENT BY 5 MINVALUE 1 MAXVALUE 1000 START WITH 100 CACHE 1 "
	    "CYCLE OWNED BY NONE;\n", "ALTER SEQUENCE");
	is_plan("dropidx", 1, "DROP INDEX IF EXISTS \"s2\".\"i1\";\n",
	    "DROP INDEX");
	is_plan("func", 0, "STOP: CREATE FUNCTION (function public.f()) is "
	    "not replayed by logship", "CREATE FUNCTION stops");
	is_plan("view", 0, "STOP: CREATE VIEW (view public.v) is not "
	    "replayed by logship", "CREATE VIEW stops");
	p = plan_h("view", 0, NULL);
	ok(p != NULL && p->skippable && p->nsql == 0, "a skippable stop");
	ddl_plan_free(p);
}

/* Filters: only schema public's table t; a rule on column a of t. */
static bool
only_t(void *arg, const char *schema, const char *name)
{
	(void)arg;
	return strcmp(schema, "public") == 0 && strcmp(name, "t") == 0;
}

static char *
rule_on_a(void *arg, const char *schema, const char *name, const char *col)
{
	(void)arg;
	if (strcmp(schema, "public") != 0 || strcmp(name, "t") != 0 ||
	    col == NULL || strcmp(col, "a") != 0)
		return NULL;
	return strdup("f.conf line 3");
}

/* Every table kept; a section for public.t. */
static bool
all(void *arg, const char *schema, const char *name)
{
	(void)arg;
	(void)schema;
	(void)name;
	return true;
}

static char *
section_t(void *arg, const char *schema, const char *name, const char *col)
{
	(void)arg;
	if (strcmp(schema, "public") != 0 || strcmp(name, "t") != 0 ||
	    col != NULL)
		return NULL;
	return strdup("f.conf line 1");
}

/* The target has everything but public.t, its sequence, type mood. */
static bool
not_t(void *arg, char kind, const char *schema, const char *name)
{
	(void)arg;
	return strcmp(schema, "public") != 0 || (kind == 'r' ?
	    strcmp(name, "t") != 0 && strcmp(name, "t_id_seq") != 0 :
	    strcmp(name, "mood") != 0);
}

static void
test_filters(void)
{
	struct ddl_hooks h = { only_t, rule_on_a, NULL, NULL };
	struct ddl_hooks ht = { all, section_t, NULL, NULL };
	struct ddl_hooks hx = { all, NULL, not_t, NULL };

	has_plan("create", 0, &h, "CREATE TABLE \"public\".\"t\"",
	    "an included table is created");
	is_plan("part", 0, "CREATE TABLE \"public\".\"p\" (\"id\" integer NOT "
	    "NULL, \"k\" integer NOT NULL, CONSTRAINT \"p_pkey\" PRIMARY KEY "
	    "(id, k)) PARTITION BY RANGE (k);\n"
	    "CREATE UNIQUE INDEX IF NOT EXISTS p_pkey ON ONLY public.p USING "
	    "btree (id, k);\n", "(no filter: p created)");
	{
		char *got = plan_text("part", 0, &h);
		ok(strcmp(got, "") == 0, "excluded table p: nothing created");
		free(got);
		got = plan_text("droptab", 0, &h);
		ok(strcmp(got, "") == 0, "excluded table p: its DROP skipped");
		free(got);
	}
	is_plan_h("rename", 0, "STOP (filter): the source renamed column a of "
	    "public.t to aa, which the filter names (f.conf line 3): the rule "
	    "would no longer match; remove or change it (rules name the base "
	    "snapshot's tables and columns), then rerun logship-restore",
	    &h, "a rule on a renamed column stops, naming it");
	has_plan("alter", 1, &h, "DROP COLUMN \"b\"",
	    "a column without a rule may go");
	has_plan("renametab", 0, &h, "STOP (filter): the source renamed "
	    "table public.t to public.t2 and the filter keeps one name but "
	    "not the other", "renamed out of the filter: stops");
	has_plan("renametab", 0, &ht, "STOP (filter): the source renamed "
	    "table public.t to public.t2, which the filter names (f.conf "
	    "line 1)", "a renamed table with a filter section: stops");
	has_plan("rename", 0, &ht, "RENAME COLUMN", "(a section, no rule on "
	    "the column: renamed)");
	is_plan_h("alter", 1, "", &hx, "ALTER TABLE of a table the target "
	    "lacks: passed over");
	is_plan_h("create", 1, "", &hx, "CREATE INDEX on it too");
	is_plan_h("enumadd", 0, "", &hx, "ALTER TYPE of a type it lacks too");
	has_plan("create", 0, &hx, "CREATE TABLE \"public\".\"t\"",
	    "but CREATE TABLE creates it");
	has_plan("create", 0, &hx, "ALTER SEQUENCE \"public\".\"t_id_seq\" "
	    "AS integer INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START "
	    "WITH 1 CACHE 1 NO CYCLE OWNED BY public.t.id;",
	    "and its serial's new sequence is owned by it");
}

static void
test_statements(void)
{
	static const struct {
		const char *sql;
		size_t n;
		const char *first;
	} cases[] = {
		{ "alter table t add c int", 1, "alter table t add c int" },
		{ " alter table t add c int; ", 1, "alter table t add c int" },
		{ "select 1; select 2", 2, "select 1" },
		{ "select ';'; select 2", 2, "select ';'" },
		{ "select 'it''s;'", 1, "select 'it''s;'" },
		{ "select E'\\';'", 1, "select E'\\';'" },
		{ "select \"a;b\" from t", 1, "select \"a;b\" from t" },
		{ "select $$;$$; select $x$ $$; $x$", 2, "select $$;$$" },
		{ "select $1; ", 1, "select $1" },
		{ "-- c;\nselect 1 /* ; /* ; */ ; */", 1,
		    "select 1 /* ; /* ; */ ; */" },
		{ ";;  ; -- only\n", 0, "" },
		{ "do $f$ begin perform 1; end $f$; insert into t values (1)",
		    2, "do $f$ begin perform 1; end $f$" },
	};
	size_t i, start, end, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = ddl_statements(cases[i].sql, &start, &end);
		ok(n == cases[i].n && end - start == strlen(cases[i].first) &&
		    strncmp(cases[i].sql + start, cases[i].first, end - start) ==
		    0, "statements, case %zu: %zu", i, n);
	}
}

static void
test_malformed(void)
{
	static const char *const bad[] = {
		"", "{", "[]", "{\"v\":2,\"event\":\"ddl_command_end\"}",
		"{\"v\":1}",
	};
	static const char quoted[] = "{\"v\":1,\"event\":\"ddl_command_end\","
	    "\"commands\":[{\"object_type\":\"table\",\"tag\":\"CREATE TABLE\","
	    "\"def\":{\"schema\":\"a\\\"b\",\"name\":\"x'y\",\"columns\":"
	    "[{\"name\":\"c\\\"d\",\"type\":\"text\"}],\"constraints\":[],"
	    "\"replident\":\"d\"}}]}";
	struct ddl_plan *p;
	char *err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		p = NULL;
		ok(ddl_plan_new(bad[i], strlen(bad[i]), NULL, &p, &err) != 0 &&
		    p == NULL && err != NULL, "malformed message %zu refused: %s",
		    i, err ? err : "");
		free(err);
	}
	p = NULL;
	err = NULL;
	ok(ddl_plan_new(quoted, strlen(quoted), NULL, &p, &err) == 0 &&
	    p != NULL && p->nsql == 1 && strcmp(p->sql[0], "CREATE TABLE "
	    "\"a\"\"b\".\"x'y\" (\"c\"\"d\" text)") == 0, "names quoted: %s",
	    p && p->nsql ? p->sql[0] : err ? err : "?");
	ddl_plan_free(p);
	free(err);
}

int
main(void)
{
	test_create();
	test_alter();
	test_per_row();
	test_partitions();
	test_partitioned_index();
	test_statement_of_many();
	test_others();
	test_filters();
	test_statements();
	test_malformed();
	return tap_done();
}
