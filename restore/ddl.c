/*
 * ddl.c: captured DDL to target SQL (see ddl.h).  One message holds the
 * commands of one source statement (ddl_command_end) or the objects it
 * dropped (sql_drop); each command carries the object's definition after
 * the statement, and a table's definition before it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/error.h"
#include "ddl.h"

/* A growing string; oom is sticky. */
struct sb {
	char	*p;
	size_t	 len, cap;
	int	 oom;
};

/* One message being planned. */
struct gen {
	struct ddl_plan	*p;
	const struct ddl_hooks *h;
	json_t		*cmds;		/* commands of the message */
	const char	*tag, *query, *path;
	bool		 query_done;	/* the statement itself was queued */
	int		 oom;
};

static void
sb_addn(struct sb *b, const char *s, size_t n)
{
	char *bigger;
	size_t cap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 128;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((bigger = realloc(b->p, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = bigger;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_add(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

/* s between q, q doubled inside: an identifier ('"') or a literal. */
static void
sb_quote(struct sb *b, const char *s, char q)
{
	char qq[2] = { q, q };

	if (q == '\'' && strchr(s, '\\') != NULL)
		sb_add(b, "E");
	sb_addn(b, qq, 1);
	for (; *s; s++) {
		if (*s == q || (q == '\'' && *s == '\\'))
			sb_addn(b, s, 1);
		sb_addn(b, s, 1);
	}
	sb_addn(b, qq, 1);
}

static void
sb_ident(struct sb *b, const char *s)
{
	sb_quote(b, s, '"');
}

static void
sb_lit(struct sb *b, const char *s)
{
	sb_quote(b, s, '\'');
}

static void
sb_qname(struct sb *b, const char *schema, const char *name)
{
	sb_ident(b, schema);
	sb_add(b, ".");
	sb_ident(b, name);
}

static void
sb_int(struct sb *b, json_t *v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(v));
	sb_add(b, num);
}

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A string field, "" when absent or null. */
static const char *
jstr0(json_t *o, const char *key)
{
	const char *s = jstr(o, key);

	return s != NULL ? s : "";
}

static bool
same(const char *x, const char *y)
{
	return strcmp(x != NULL ? x : "", y != NULL ? y : "") == 0;
}

/* Queue the statement in b (taken over). */
static void
emit(struct gen *g, struct sb *b)
{
	char **bigger;

	if (b->oom || b->p == NULL ||
	    (bigger = realloc(g->p->sql, (g->p->nsql + 1) *
	    sizeof(*bigger))) == NULL) {
		g->oom = 1;
		free(b->p);
	} else {
		g->p->sql = bigger;
		g->p->sql[g->p->nsql++] = b->p;
	}
	memset(b, 0, sizeof(*b));
}

/* The first reason to stop wins. */
static void __attribute__((format(printf, 3, 4)))
stop(struct gen *g, bool skippable, const char *fmt, ...)
{
	va_list ap;

	if (g->p->stop != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&g->p->stop, fmt, ap) < 0) {
		g->p->stop = NULL;
		g->oom = 1;
	}
	va_end(ap);
	g->p->skippable = skippable;
}

/* Does the target have it, or will it once the plan's tables are made? */
static bool
on_target(struct gen *g, char kind, const char *schema, const char *name)
{
	size_t i;

	for (i = 0; kind == 'r' && i + 1 < g->p->nnamed; i += 2)
		if (strcmp(g->p->named[i], schema) == 0 &&
		    strcmp(g->p->named[i + 1], name) == 0)
			return true;
	return g->h == NULL || g->h->exists == NULL ||
	    g->h->exists(g->h->arg, kind, schema, name);
}

/* A relation (table, sequence) the plan creates or alters, by its name
 * after the command. */
static void
named(struct gen *g, const char *schema, const char *name)
{
	char **bigger = realloc(g->p->named, (g->p->nnamed + 2) *
	    sizeof(*bigger));

	if (bigger == NULL) {
		g->oom = 1;
		return;
	}
	g->p->named = bigger;
	if ((bigger[g->p->nnamed] = strdup(schema)) == NULL ||
	    (bigger[g->p->nnamed + 1] = strdup(name)) == NULL) {
		free(bigger[g->p->nnamed]);
		g->oom = 1;
		return;
	}
	g->p->nnamed += 2;
}

static bool
included(struct gen *g, const char *schema, const char *name)
{
	return g->h == NULL || g->h->include == NULL ||
	    g->h->include(g->h->arg, schema, name);
}

/*
 * A filter rule naming schema.name (col, or the table when NULL) stops:
 * the source changed what it names (what: "renamed column a of s.t to b").
 */
static bool
ruled(struct gen *g, const char *schema, const char *name, const char *col,
    const char *what)
{
	char *rule;

	if (g->h == NULL || g->h->rule == NULL ||
	    (rule = g->h->rule(g->h->arg, schema, name, col)) == NULL)
		return false;
	stop(g, false, "the source %s, which the filter names (%s): the rule "
	    "would no longer match; remove or change it (rules name the base "
	    "snapshot's tables and columns), then rerun logship-restore", what,
	    rule);
	free(rule);
	return true;
}

/* ---- the source statement itself ---- */

static size_t
skip_blank(const char *s, size_t i)
{
	int depth;

	for (;;) {
		while (isspace((unsigned char)s[i]))
			i++;
		if (s[i] == '-' && s[i + 1] == '-') {
			while (s[i] != '\0' && s[i] != '\n')
				i++;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			for (i += 2, depth = 1; s[i] != '\0' && depth > 0; i++)
				if (s[i] == '/' && s[i + 1] == '*')
					depth++, i++;
				else if (s[i] == '*' && s[i + 1] == '/')
					depth--, i++;
		} else
			return i;
	}
}

static bool
ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$' ||
	    (unsigned char)c >= 0x80;
}

/* Past the quoted text or dollar-quoted body starting at s[i]. */
static size_t
skip_quoted(const char *s, size_t i)
{
	char q = s[i];
	bool esc = q == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
	    (i < 2 || !ident_char(s[i - 2]));
	size_t n;
	const char *end;

	if (q == '$') {
		for (n = i + 1; isalnum((unsigned char)s[n]) || s[n] == '_'; n++)
			;
		if (s[n] != '$' || isdigit((unsigned char)s[i + 1]) ||
		    (i > 0 && ident_char(s[i - 1])))
			return i + 1;	/* $1, a$b: not a dollar quote */
		n = n - i + 1;		/* the tag, both '$' included */
		for (end = s + i + n; (end = strchr(end, '$')) != NULL; end++)
			if (strncmp(end, s + i, n) == 0)
				return (size_t)(end - s) + n;
		return strlen(s);
	}
	for (i++; s[i] != '\0'; i++) {
		if (esc && s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == q && s[i + 1] == q)
			i++;
		else if (s[i] == q)
			return i + 1;
	}
	return i;
}

/*
 * The next statement of s from *i on: true with its bounds in [*start,
 * *end) and *i past it; false when only blanks and empty statements are
 * left.
 */
static bool
next_statement(const char *s, size_t *i, size_t *start, size_t *end)
{
	bool any = false;

	for (;;) {
		*i = skip_blank(s, *i);
		if (s[*i] == '\0' || s[*i] == ';') {
			if (any) {
				*end = *i;
				*i += s[*i] == ';';
				return true;
			}
			if (s[*i] == '\0')
				return false;
			(*i)++;
			continue;
		}
		if (!any)
			*start = *i;
		any = true;
		if (s[*i] == '\'' || s[*i] == '"' || s[*i] == '$')
			*i = skip_quoted(s, *i);
		else
			(*i)++;
	}
}

size_t
ddl_statements(const char *s, size_t *start, size_t *end)
{
	size_t i = 0, n = 0, b, e;

	*start = *end = 0;
	while (next_statement(s, &i, &b, &e))
		if (n++ == 0) {
			*start = b;
			*end = e;
		}
	return n;
}

/* Does the statement at s begin with the words of tag ("ALTER TABLE")? */
static bool
begins_with(const char *s, const char *tag)
{
	size_t i = 0, n;

	while (*tag != '\0') {
		i = skip_blank(s, i);
		n = strcspn(tag, " ");
		if (strncasecmp(s + i, tag, n) != 0 || ident_char(s[i + n]))
			return false;
		i += n;
		tag += n;
		tag += *tag == ' ';
	}
	return true;
}

/*
 * The one statement of query string s that begins with tag, bounds in
 * [*start, *end): true when exactly one does and every other statement is
 * plain row DML (INSERT, UPDATE, DELETE: its rows are in the stream, and
 * it runs no DDL of its own but by a trigger).  So "UPDATE t SET c = 0
 * WHERE c IS NULL; ALTER TABLE t ALTER c SET NOT NULL" replays its ALTER.
 */
static bool
the_statement(const char *s, const char *tag, size_t *start, size_t *end)
{
	static const char *const dml[] = { "INSERT", "UPDATE", "DELETE" };
	size_t i = 0, n = 0, b, e, k;
	bool row;

	while (next_statement(s, &i, &b, &e)) {
		if (begins_with(s + b, tag)) {
			if (n++ == 0) {
				*start = b;
				*end = e;
			}
			continue;
		}
		for (row = false, k = 0; k < 3 && !row; k++)
			row = begins_with(s + b, dml[k]);
		if (!row)
			return false;
	}
	return n == 1;
}

/*
 * The source's own statement, when that is exactly what ran: its one
 * statement of the message's tag and the command's (the_statement).
 */
static bool
query_fits(struct gen *g, const char *cmdtag)
{
	size_t start, end;

	return g->query != NULL && same(cmdtag, g->tag) &&
	    the_statement(g->query, g->tag, &start, &end);
}

/* Queue it (once), under the search_path it ran with. */
static void
run_query(struct gen *g)
{
	struct sb b = { 0 };
	size_t start = 0, end = 0;

	if (g->query_done)
		return;
	g->query_done = true;
	g->p->keys = true;	/* what it changes is not known here */
	the_statement(g->query, g->tag, &start, &end);
	sb_add(&b, "SELECT pg_catalog.set_config('search_path', ");
	sb_lit(&b, g->path != NULL ? g->path : "");
	sb_add(&b, ", true)");
	emit(g, &b);
	sb_addn(&b, g->query + start, end - start);
	emit(g, &b);
	sb_add(&b, "SET LOCAL search_path TO DEFAULT");
	emit(g, &b);
}

/* ---- tables ---- */

/* name type [COLLATE c] [GENERATED ... | DEFAULT e] [NOT NULL] */
static void
column_def(struct sb *b, json_t *c)
{
	const char *def = jstr(c, "default"), *ident = jstr0(c, "identity");

	sb_ident(b, jstr0(c, "name"));
	sb_add(b, " ");
	sb_add(b, jstr0(c, "type"));
	if (jstr(c, "collation") != NULL) {
		sb_add(b, " COLLATE ");
		sb_add(b, jstr(c, "collation"));
	}
	if (*jstr0(c, "generated") == 's' && def != NULL) {
		sb_add(b, " GENERATED ALWAYS AS (");
		sb_add(b, def);
		sb_add(b, ") STORED");
	} else if (*ident != '\0')
		sb_add(b, *ident == 'a' ? " GENERATED ALWAYS AS IDENTITY" :
		    " GENERATED BY DEFAULT AS IDENTITY");
	else if (def != NULL) {
		sb_add(b, " DEFAULT ");
		sb_add(b, def);
	}
	if (json_is_true(json_object_get(c, "notnull")))
		sb_add(b, " NOT NULL");
}

/* Constraints replayed as such (not NOT NULL or trigger entries). */
static bool
real_constraint(json_t *k)
{
	const char *t = jstr0(k, "type");

	return *t != '\0' && strchr("cfpux", *t) != NULL;
}

static void
sb_constraint(struct sb *b, json_t *k)
{
	sb_add(b, "CONSTRAINT ");
	sb_ident(b, jstr0(k, "name"));
	sb_add(b, " ");
	sb_add(b, jstr0(k, "def"));
}

/*
 * "CREATE [UNIQUE] INDEX name ON ..." with IF NOT EXISTS.  pg_get_indexdef
 * says "ON ONLY" for every index of a partitioned table; a valid one
 * covers its partitions (CREATE INDEX without ONLY made theirs too), so it
 * is built without ONLY and the target makes the partitions' indexes.
 */
static void
index_create(struct gen *g, json_t *idx)
{
	struct sb b = { 0 };
	const char *def = jstr0(idx, "def"), *at = strstr(def, "INDEX ");
	const char *only = strstr(def, " ON ONLY ");

	if (strncmp(def, "CREATE ", 7) != 0 || at == NULL) {
		stop(g, true, "an index definition logship does not read (%s)",
		    def);
		return;
	}
	sb_addn(&b, def, (size_t)(at - def) + 6);
	sb_add(&b, "IF NOT EXISTS ");
	if (only != NULL && json_is_true(json_object_get(idx, "valid"))) {
		sb_addn(&b, at + 6, (size_t)(only - at - 6));
		sb_add(&b, " ON ");
		sb_add(&b, only + 9);
	} else
		sb_add(&b, at + 6);
	emit(g, &b);
}

/* ALTER TABLE t, ready for one action. */
static void
alter(struct sb *b, const char *schema, const char *name)
{
	sb_add(b, "ALTER TABLE ");
	sb_qname(b, schema, name);
	sb_add(b, " ");
}

static void
replident(struct gen *g, json_t *d, const char *schema, const char *name)
{
	struct sb b = { 0 };
	const char *ri = jstr0(d, "replident");

	alter(&b, schema, name);
	sb_add(&b, "REPLICA IDENTITY ");
	if (*ri == 'f')
		sb_add(&b, "FULL");
	else if (*ri == 'n')
		sb_add(&b, "NOTHING");
	else if (*ri == 'i' && jstr(d, "replident_index") != NULL) {
		sb_add(&b, "USING INDEX ");
		sb_ident(&b, jstr(d, "replident_index"));
	} else
		sb_add(&b, "DEFAULT");
	emit(g, &b);
}

/* A constraint added only when the table does not have it (inherited). */
static void
constraint_guarded(struct gen *g, const char *schema, const char *name,
    json_t *k)
{
	struct sb b = { 0 }, t = { 0 };

	sb_qname(&t, schema, name);
	sb_add(&b, "DO $logship_ddl$BEGIN IF NOT EXISTS (SELECT 1 FROM "
	    "pg_catalog.pg_constraint WHERE conrelid = ");
	sb_lit(&b, t.p != NULL ? t.p : "");
	sb_add(&b, "::regclass AND conname = ");
	sb_lit(&b, jstr0(k, "name"));
	sb_add(&b, ") THEN ");
	alter(&b, schema, name);
	sb_add(&b, "ADD ");
	sb_constraint(&b, k);
	sb_add(&b, "; END IF; END$logship_ddl$");
	free(t.p);
	emit(g, &b);
}

/*
 * CREATE TABLE from the definition.  CREATE TABLE AS (SELECT INTO) sends
 * its rows before its DDL, and the applier made the table for them
 * (applier_create_missing): exists is then "IF NOT EXISTS ".
 */
static void
create_table(struct gen *g, json_t *d, const char *exists)
{
	const char *schema = jstr0(d, "schema"), *name = jstr0(d, "name");
	const char *part = jstr(d, "partition_of");
	json_t *v, *cols = json_object_get(d, "columns");
	json_t *ks = json_object_get(d, "constraints");
	struct sb b = { 0 };
	size_t i, n = 0;

	if (!included(g, schema, name))
		return;
	named(g, schema, name);
	g->p->keys = true;
	sb_add(&b, *jstr0(d, "persistence") == 'u' ? "CREATE UNLOGGED TABLE " :
	    "CREATE TABLE ");
	sb_add(&b, exists);
	sb_qname(&b, schema, name);
	if (part != NULL) {
		sb_add(&b, " PARTITION OF ");
		sb_add(&b, part);
		sb_add(&b, " ");
		sb_add(&b, jstr0(d, "partition_bound"));
	} else {
		sb_add(&b, " (");
		json_array_foreach(cols, i, v) {
			sb_add(&b, n++ ? ", " : "");
			column_def(&b, v);
		}
		json_array_foreach(ks, i, v)
			if (real_constraint(v)) {
				sb_add(&b, n++ ? ", " : "");
				sb_constraint(&b, v);
			}
		sb_add(&b, ")");
		json_array_foreach(json_object_get(d, "inherits"), i, v) {
			sb_add(&b, i ? ", " : " INHERITS (");
			sb_add(&b, json_string_value(v) ? json_string_value(v) : "");
			if (i + 1 == json_array_size(json_object_get(d, "inherits")))
				sb_add(&b, ")");
		}
	}
	if (jstr(d, "partition_key") != NULL) {
		sb_add(&b, " PARTITION BY ");
		sb_add(&b, jstr(d, "partition_key"));
	}
	emit(g, &b);
	json_array_foreach(ks, i, v)
		if (part != NULL && real_constraint(v))
			constraint_guarded(g, schema, name, v);
	json_array_foreach(json_object_get(d, "indexes"), i, v)
		if (!json_is_true(json_object_get(v, "constraint")))
			index_create(g, v);
	if (*jstr0(d, "replident") != 'd')
		replident(g, d, schema, name);
}

/* The element of array a whose key equals val, or NULL. */
static json_t *
find(json_t *a, const char *key, json_t *val)
{
	json_t *v;
	size_t i;

	json_array_foreach(a, i, v)
		if (json_equal(json_object_get(v, key), val))
			return v;
	return NULL;
}

static bool
retyped(json_t *bc, json_t *dc)
{
	return !same(jstr(bc, "type"), jstr(dc, "type")) ||
	    !same(jstr(bc, "collation"), jstr(dc, "collation"));
}

/* One action on table schema.name: "ALTER TABLE t <a1><col><a2>". */
static void
act(struct gen *g, const char *schema, const char *name, const char *a1,
    const char *col, const char *a2)
{
	struct sb b = { 0 };

	alter(&b, schema, name);
	sb_add(&b, a1);
	if (col != NULL)
		sb_ident(&b, col);
	sb_add(&b, a2);
	emit(g, &b);
}

/* Columns changed in place: type, identity, default, NOT NULL. */
static void
alter_column(struct gen *g, const char *schema, const char *name,
    json_t *bc, json_t *dc)
{
	const char *col = jstr0(dc, "name"), *bi = jstr0(bc, "identity");
	const char *di = jstr0(dc, "identity"), *def = jstr(dc, "default");
	struct sb b = { 0 };

	if (retyped(bc, dc)) {
		alter(&b, schema, name);
		sb_add(&b, "ALTER COLUMN ");
		sb_ident(&b, col);
		sb_add(&b, " TYPE ");
		sb_add(&b, jstr0(dc, "type"));
		if (jstr(dc, "collation") != NULL) {
			sb_add(&b, " COLLATE ");
			sb_add(&b, jstr(dc, "collation"));
		}
		sb_add(&b, " USING ");
		sb_ident(&b, col);
		sb_add(&b, "::");
		sb_add(&b, jstr0(dc, "type"));
		emit(g, &b);
	}
	g->p->keys = g->p->keys || strcmp(bi, di) != 0 ||
	    !same(jstr(bc, "default"), def);
	if (*bi != '\0' && strcmp(bi, di) != 0)
		act(g, schema, name, "ALTER COLUMN ", col, *di == '\0' ?
		    " DROP IDENTITY" : *di == 'a' ? " SET GENERATED ALWAYS" :
		    " SET GENERATED BY DEFAULT");
	if (*jstr0(dc, "generated") == '\0' && *di == '\0' &&
	    !same(jstr(bc, "default"), def)) {
		alter(&b, schema, name);
		sb_add(&b, "ALTER COLUMN ");
		sb_ident(&b, col);
		sb_add(&b, def != NULL ? " SET DEFAULT " : " DROP DEFAULT");
		sb_add(&b, def != NULL ? def : "");
		emit(g, &b);
	}
	if (*bi == '\0' && *di != '\0')
		act(g, schema, name, "ALTER COLUMN ", col, *di == 'a' ?
		    " ADD GENERATED ALWAYS AS IDENTITY" :
		    " ADD GENERATED BY DEFAULT AS IDENTITY");
	if (json_is_true(json_object_get(bc, "notnull")) !=
	    json_is_true(json_object_get(dc, "notnull")))
		act(g, schema, name, "ALTER COLUMN ", col,
		    json_is_true(json_object_get(dc, "notnull")) ?
		    " SET NOT NULL" : " DROP NOT NULL");
}

/*
 * A constraint's definition with every identifier quoted and, when cols
 * is given (pairs: before, after), the columns renamed: "PRIMARY KEY (id)"
 * before and "PRIMARY KEY (gid)" after a RENAME COLUMN are the same key.
 * String literals are copied as they are.
 */
static char *
normal_def(const char *d, json_t *bcols, json_t *dcols)
{
	struct sb b = { 0 }, id = { 0 };
	json_t *bc, *dc;
	size_t i;

	while (d != NULL && *d != '\0') {
		if (*d == '\'') {	/* a literal, '' inside */
			const char *e = d + 1;
			while (*e != '\0' && (*e != '\'' || e[1] == '\''))
				e += *e == '\'' ? 2 : 1;
			e += *e != '\0';
			sb_addn(&b, d, (size_t)(e - d));
			d = e;
			continue;
		}
		if (*d != '"' && *d != '_' && !(*d >= 'a' && *d <= 'z') &&
		    !(*d >= 'A' && *d <= 'Z')) {
			sb_addn(&b, d++, 1);
			continue;
		}
		id.len = 0;
		if (*d == '"') {	/* "" inside */
			for (d++; *d != '\0' && (*d != '"' || d[1] == '"');
			    d += *d == '"' ? 2 : 1)
				sb_addn(&id, d, 1);
			d += *d != '\0';
		} else
			while (*d == '_' || *d == '$' || (*d >= 'a' && *d <= 'z') ||
			    (*d >= 'A' && *d <= 'Z') || (*d >= '0' && *d <= '9'))
				sb_addn(&id, d++, 1);
		sb_addn(&id, "", 1);
		id.len--;
		json_array_foreach(bcols, i, bc) {
			dc = find(dcols, "attnum", json_object_get(bc, "attnum"));
			if (dc != NULL && id.p != NULL &&
			    strcmp(jstr0(bc, "name"), id.p) == 0) {
				id.len = 0;
				sb_addn(&id, jstr0(dc, "name"),
				    strlen(jstr0(dc, "name")) + 1);
				id.len--;
				break;
			}
		}
		sb_ident(&b, id.p != NULL ? id.p : "");
	}
	sb_addn(&b, "", 1);
	free(id.p);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* Is before's definition after's, once the command's column renames apply? */
static bool
same_constraint(json_t *before, json_t *after, json_t *bcols, json_t *dcols)
{
	char *x, *y;
	bool eq;

	if (same(jstr(before, "def"), jstr(after, "def")))
		return true;
	if (!same(jstr(before, "type"), jstr(after, "type")))
		return false;
	x = normal_def(jstr(before, "def"), bcols, dcols);
	y = normal_def(jstr(after, "def"), NULL, NULL);
	eq = x != NULL && y != NULL && strcmp(x, y) == 0;
	free(x);
	free(y);
	return eq;
}

/*
 * Constraints of from missing (by name and definition) in to; bcols and
 * dcols are the columns before and after the command (forward: from is
 * before).
 */
static void
constraints_gone(struct gen *g, const char *schema, const char *name,
    json_t *from, json_t *to, const char *verb, json_t *bcols, json_t *dcols,
    bool forward)
{
	struct sb b = { 0 };
	json_t *k, *o;
	size_t i;

	json_array_foreach(from, i, k) {
		if (!real_constraint(k))
			continue;
		o = find(to, "name", json_object_get(k, "name"));
		if (o != NULL && same_constraint(forward ? k : o, forward ? o : k,
		    bcols, dcols))
			continue;
		g->p->keys = true;
		alter(&b, schema, name);
		sb_add(&b, verb);
		if (*verb == 'D')
			sb_ident(&b, jstr0(k, "name"));
		else
			sb_constraint(&b, k);
		emit(g, &b);
	}
}

/* Inheritance parents of from not in to: INHERIT / NO INHERIT. */
static void
parents_gone(struct gen *g, const char *schema, const char *name,
    json_t *from, json_t *to, const char *verb)
{
	json_t *v, *w;
	size_t i, k;
	bool found;

	json_array_foreach(from, i, v) {
		found = false;
		json_array_foreach(to, k, w)
			found = found || json_equal(v, w);
		if (!found) {
			struct sb b = { 0 };
			g->p->keys = true;
			alter(&b, schema, name);
			sb_add(&b, verb);
			sb_add(&b, json_string_value(v) ? json_string_value(v) : "");
			emit(g, &b);
		}
	}
}

/* Is any column of the table retyped by the command? */
static bool
any_retyped(json_t *bcols, json_t *dcols)
{
	json_t *bc, *dc;
	size_t i;

	json_array_foreach(dcols, i, dc)
		if ((bc = find(bcols, "attnum", json_object_get(dc, "attnum"))) !=
		    NULL && retyped(bc, dc))
			return true;
	return false;
}

/*
 * Is a default computed row by row: a function call (not a cast's type
 * modifier) or a special value such as CURRENT_TIMESTAMP?  A column added
 * with one gets values on the source that the stream does not carry.
 */
static bool
per_row(const char *expr)
{
	static const char *const special[] = { "current_", "localtime",
	    "session_user", "user" };
	size_t i = 0, k, n;
	bool cast = false;

	while (expr[i] != '\0') {
		if (expr[i] == '\'' || expr[i] == '"') {
			i = skip_quoted(expr, i);
			continue;
		}
		if (ident_char(expr[i]) && (i == 0 || !ident_char(expr[i - 1])))
			for (k = 0; !cast && k < 4; k++) {
				n = strlen(special[k]);
				if (strncasecmp(expr + i, special[k], n) == 0 &&
				    (k < 2 || !ident_char(expr[i + n])))
					return true;
			}
		if (expr[i] == '(' && i > 0 && ident_char(expr[i - 1]) && !cast)
			return true;
		if (expr[i] == ':' && expr[i + 1] == ':')
			cast = true, i++;
		else if (!ident_char(expr[i]) && expr[i] != ' ')
			cast = false;
		i++;
	}
	return false;
}

/*
 * Before adding column c with a default computed per row (or an identity)
 * to a table that has rows: stop, since the source's values for those rows
 * are not in the stream.
 */
static void
per_row_guard(struct gen *g, const char *schema, const char *name,
    json_t *c)
{
	struct sb b = { 0 }, m = { 0 };
	const char *def = jstr(c, "default");

	if (*jstr0(c, "identity") == '\0' && (def == NULL ||
	    *jstr0(c, "generated") == 's' || !per_row(def)))
		return;
	sb_add(&m, "logship: column ");
	sb_add(&m, jstr0(c, "name"));
	sb_add(&m, " of ");
	sb_add(&m, schema);
	sb_add(&m, ".");
	sb_add(&m, name);
	sb_add(&m, " was added with values computed row by row (");
	sb_add(&m, def != NULL ? def : "identity");
	sb_add(&m, ") and the table has rows: the source's values are not in "
	    "the stream; add the column on the target and copy its values "
	    "from the source");
	sb_add(&b, "DO $logship_ddl$BEGIN IF EXISTS (SELECT 1 FROM ");
	sb_qname(&b, schema, name);
	sb_add(&b, " LIMIT 1) THEN RAISE EXCEPTION USING MESSAGE = ");
	sb_lit(&b, m.p != NULL ? m.p : "");
	sb_add(&b, "; END IF; END$logship_ddl$");
	b.oom |= m.oom;
	free(m.p);
	emit(g, &b);
}

/* Columns: renamed, dropped, added, changed (by attnum). */
static void
alter_columns(struct gen *g, const char *schema, const char *name,
    json_t *bcols, json_t *dcols)
{
	struct sb b = { 0 };
	char what[512];
	json_t *bc, *dc;
	size_t i;

	json_array_foreach(bcols, i, bc) {
		dc = find(dcols, "attnum", json_object_get(bc, "attnum"));
		if (dc != NULL && same(jstr(bc, "name"), jstr(dc, "name")))
			continue;
		snprintf(what, sizeof(what), "%s column %s of %s.%s%s%s", dc ?
		    "renamed" : "dropped", jstr0(bc, "name"), schema, name,
		    dc ? " to " : "", dc ? jstr0(dc, "name") : "");
		if (ruled(g, schema, name, jstr0(bc, "name"), what))
			return;
		if (dc == NULL) {
			act(g, schema, name, "DROP COLUMN ", jstr0(bc, "name"), "");
			continue;
		}
		g->p->keys = true;
		alter(&b, schema, name);
		sb_add(&b, "RENAME COLUMN ");
		sb_ident(&b, jstr0(bc, "name"));
		sb_add(&b, " TO ");
		sb_ident(&b, jstr0(dc, "name"));
		emit(g, &b);
	}
	json_array_foreach(dcols, i, dc) {
		bc = find(bcols, "attnum", json_object_get(dc, "attnum"));
		if (bc != NULL) {
			alter_column(g, schema, name, bc, dc);
			continue;
		}
		per_row_guard(g, schema, name, dc);
		alter(&b, schema, name);
		sb_add(&b, "ADD COLUMN ");
		column_def(&b, dc);
		emit(g, &b);
	}
}

/* Partition membership: detach from the old parent, attach to the new. */
static void
partition_move(struct gen *g, json_t *bd, json_t *d, bool attach)
{
	const char *bp = jstr(bd, "partition_of"), *dp = jstr(d, "partition_of");
	struct sb b = { 0 };

	if (same(bp, dp) && same(jstr(bd, "partition_bound"),
	    jstr(d, "partition_bound")))
		return;
	g->p->keys = true;
	if (!attach && bp != NULL) {
		sb_add(&b, "ALTER TABLE ");
		sb_add(&b, bp);
		sb_add(&b, " DETACH PARTITION ");
		sb_qname(&b, jstr0(d, "schema"), jstr0(d, "name"));
		emit(g, &b);
	} else if (attach && dp != NULL) {
		sb_add(&b, "ALTER TABLE ");
		sb_add(&b, dp);
		sb_add(&b, " ATTACH PARTITION ");
		sb_qname(&b, jstr0(d, "schema"), jstr0(d, "name"));
		sb_add(&b, " ");
		sb_add(&b, jstr0(d, "partition_bound"));
		emit(g, &b);
	}
}

/*
 * A partitioned table's partitions (name, bound) in from but not in to:
 * ATTACH or DETACH PARTITION, each guarded by the target's catalog, since
 * a parent's definition before a command may be older than its
 * partitions' own commands (CREATE TABLE ... PARTITION OF, DROP TABLE of
 * a partition, a rename) and a filter may have left a partition out.
 */
static void
partitions_gone(struct gen *g, const char *schema, const char *name,
    json_t *from, json_t *to, bool attach)
{
	struct sb b = { 0 }, parent = { 0 };
	json_t *v, *w;
	size_t i;

	sb_qname(&parent, schema, name);
	json_array_foreach(from, i, v) {
		const char *pn = jstr0(v, "name");

		w = find(to, "name", json_object_get(v, "name"));
		if (w != NULL && (!attach || same(jstr(v, "bound"),
		    jstr(w, "bound"))))
			continue;
		g->p->keys = true;
		sb_add(&b, "DO $logship$ BEGIN IF to_regclass(");
		sb_lit(&b, pn);
		sb_add(&b, ") IS NOT NULL AND ");
		sb_add(&b, attach ? "NOT " : "");
		sb_add(&b, "EXISTS (SELECT FROM pg_catalog.pg_inherits WHERE "
		    "inhrelid = to_regclass(");
		sb_lit(&b, pn);
		sb_add(&b, ") AND inhparent = to_regclass(");
		sb_lit(&b, parent.p != NULL ? parent.p : "");
		sb_add(&b, ")) THEN ALTER TABLE ");
		sb_add(&b, parent.p != NULL ? parent.p : "");
		sb_add(&b, attach ? " ATTACH PARTITION " : " DETACH PARTITION ");
		sb_add(&b, pn);
		if (attach) {
			sb_add(&b, " ");
			sb_add(&b, jstr0(v, "bound"));
		}
		sb_add(&b, "; END IF; END $logship$");
		emit(g, &b);
	}
	free(parent.p);
}

/* The target's table from definition bd to d (same oid). */
static void
alter_table(struct gen *g, const char *cmdtag, json_t *bd, json_t *d)
{
	const char *schema = jstr0(bd, "schema"), *name = jstr0(bd, "name");
	const char *ds = jstr0(d, "schema"), *dn = jstr0(d, "name");
	json_t *bk = json_object_get(bd, "constraints");
	json_t *dk = json_object_get(d, "constraints");
	json_t *bcols = json_object_get(bd, "columns");
	json_t *dcols = json_object_get(d, "columns");
	bool in = included(g, schema, name);
	size_t n0 = g->p->nsql;
	char what[512];

	if (in != included(g, ds, dn)) {
		stop(g, false, "the source renamed table %s.%s to %s.%s and the "
		    "filter keeps one name but not the other: change --filter so "
		    "that both or neither match, then rerun logship-restore",
		    schema, name, ds, dn);
		return;
	}
	if (!in || !on_target(g, 'r', schema, name))
		return;
	named(g, ds, dn);
	if (any_retyped(json_object_get(bd, "columns"),
	    json_object_get(d, "columns")) && query_fits(g, cmdtag)) {
		run_query(g);	/* its USING clause, its search_path */
		return;
	}
	/* the new name first: defaults and constraints may name it */
	snprintf(what, sizeof(what), "renamed table %s.%s to %s.%s", schema,
	    name, ds, dn);
	if ((strcmp(name, dn) != 0 || strcmp(schema, ds) != 0) &&
	    ruled(g, schema, name, NULL, what))
		return;
	g->p->keys = g->p->keys || strcmp(name, dn) != 0 ||
	    strcmp(schema, ds) != 0;
	if (strcmp(name, dn) != 0)
		act(g, schema, name, "RENAME TO ", dn, "");
	if (strcmp(schema, ds) != 0)
		act(g, schema, dn, "SET SCHEMA ", ds, "");
	schema = ds;
	name = dn;
	partition_move(g, bd, d, false);
	constraints_gone(g, schema, name, bk, dk, "DROP CONSTRAINT ", bcols,
	    dcols, true);
	alter_columns(g, schema, name, bcols, dcols);
	constraints_gone(g, schema, name, dk, bk, "ADD ", bcols, dcols, false);
	parents_gone(g, schema, name, json_object_get(bd, "inherits"),
	    json_object_get(d, "inherits"), "NO INHERIT ");
	parents_gone(g, schema, name, json_object_get(d, "inherits"),
	    json_object_get(bd, "inherits"), "INHERIT ");
	if (!same(jstr(bd, "persistence"), jstr(d, "persistence")))
		act(g, schema, name, *jstr0(d, "persistence") == 'u' ?
		    "SET UNLOGGED" : "SET LOGGED", NULL, "");
	if (!same(jstr(bd, "replident"), jstr(d, "replident")) ||
	    !same(jstr(bd, "replident_index"), jstr(d, "replident_index")))
		replident(g, d, schema, name);
	partition_move(g, bd, d, true);
	if (json_is_array(json_object_get(bd, "partitions")) &&
	    json_is_array(json_object_get(d, "partitions"))) {
		partitions_gone(g, schema, name, json_object_get(bd,
		    "partitions"), json_object_get(d, "partitions"), false);
		partitions_gone(g, schema, name, json_object_get(d,
		    "partitions"), json_object_get(bd, "partitions"), true);
	}
	if (g->p->nsql > n0 || g->p->stop != NULL)
		return;
	/* nothing a definition shows (ATTACH on the parent, storage...) */
	if (query_fits(g, cmdtag))
		run_query(g);
	else if (strcmp(cmdtag, "ALTER TABLE") == 0)
		stop(g, true, "an ALTER TABLE of %s.%s that changed nothing in "
		    "its definition, in a query string of several statements",
		    schema, name);
}

/* ---- other objects ---- */

/* AS type INCREMENT BY ... [NO] CYCLE */
static void
sequence_options(struct sb *b, json_t *d)
{
	sb_add(b, " AS ");
	sb_add(b, jstr0(d, "type"));
	sb_add(b, " INCREMENT BY ");
	sb_int(b, json_object_get(d, "increment"));
	sb_add(b, " MINVALUE ");
	sb_int(b, json_object_get(d, "min"));
	sb_add(b, " MAXVALUE ");
	sb_int(b, json_object_get(d, "max"));
	sb_add(b, " START WITH ");
	sb_int(b, json_object_get(d, "start"));
	sb_add(b, " CACHE ");
	sb_int(b, json_object_get(d, "cache"));
	sb_add(b, json_is_true(json_object_get(d, "cycle")) ? " CYCLE" :
	    " NO CYCLE");
}

/* Is the sequence (oid) altered later in the message (OWNED BY)? */
static bool
altered_later(struct gen *g, size_t at, json_t *oid)
{
	json_t *c;
	size_t i;

	json_array_foreach(g->cmds, i, c)
		if (i > at && json_equal(json_object_get(c, "oid"), oid) &&
		    same(jstr(c, "tag"), "ALTER SEQUENCE"))
			return true;
	return false;
}

/* Is the table of owned_by ("schema"."table"."column") restored? */
static bool
owner_included(struct gen *g, const char *owner)
{
	char part[3][256];
	size_t n = 0, k = 0;
	const char *c = owner;

	memset(part, 0, sizeof(part));
	while (*c != '\0' && n < 3) {
		if (*c == '"') {
			for (c++; *c != '\0' && !(c[0] == '"' && c[1] != '"');
			    c++) {
				c += c[0] == '"';	/* "" is a quote */
				if (k + 1 < sizeof(part[n]))
					part[n][k++] = *c;
			}
			c += *c == '"';
		} else if (*c == '.') {
			n++;
			k = 0;
			c++;
		} else {
			if (k + 1 < sizeof(part[n]))
				part[n][k++] = *c;
			c++;
		}
	}
	return n != 2 || (included(g, part[0], part[1]) &&
	    on_target(g, 'r', part[0], part[1]));
}

static void
sequence(struct gen *g, size_t at, json_t *cmd, json_t *d)
{
	const char *tag = jstr0(cmd, "tag"), *owner = jstr(d, "owned_by");
	struct sb b = { 0 };
	bool create = strcmp(tag, "CREATE SEQUENCE") == 0;

	if (json_is_true(json_object_get(d, "identity")) || (!create &&
	    !on_target(g, 'r', jstr0(d, "schema"), jstr0(d, "name"))))
		return;		/* its column's; one the target lacks */
	if (!create && query_fits(g, tag)) {
		run_query(g);	/* RENAME and the like */
		return;
	}
	if (create)
		named(g, jstr0(d, "schema"), jstr0(d, "name"));
	sb_add(&b, create ? "CREATE SEQUENCE IF NOT EXISTS " :
	    "ALTER SEQUENCE ");
	sb_qname(&b, jstr0(d, "schema"), jstr0(d, "name"));
	sequence_options(&b, d);
	/* a serial's table comes after its sequence: OWNED BY in the ALTER */
	if ((owner != NULL && !owner_included(g, owner)) || (create &&
	    (owner == NULL || altered_later(g, at, json_object_get(cmd,
	    "oid"))))) {
		emit(g, &b);
		return;
	}
	sb_add(&b, " OWNED BY ");
	sb_add(&b, owner != NULL ? owner : "NONE");
	emit(g, &b);
}

/* Enum labels in order: ADD VALUE IF NOT EXISTS each after the last. */
static void
enum_labels(struct gen *g, json_t *d)
{
	json_t *labels = json_object_get(d, "labels"), *v;
	struct sb b = { 0 };
	size_t i;

	json_array_foreach(labels, i, v) {
		sb_add(&b, "ALTER TYPE ");
		sb_qname(&b, jstr0(d, "schema"), jstr0(d, "name"));
		sb_add(&b, " ADD VALUE IF NOT EXISTS ");
		sb_lit(&b, json_string_value(v) ? json_string_value(v) : "");
		if (i > 0 || json_array_size(labels) > 1) {
			json_t *nb = json_array_get(labels, i ? i - 1 : 1);
			sb_add(&b, i ? " AFTER " : " BEFORE ");
			sb_lit(&b, json_string_value(nb) ? json_string_value(nb) : "");
		}
		emit(g, &b);
	}
	g->p->commit_after = true;
}

static void
type(struct gen *g, json_t *cmd, json_t *d)
{
	const char *tag = jstr0(cmd, "tag");
	struct sb b = { 0 };
	json_t *v;
	size_t i;

	if (d == NULL || !json_is_array(json_object_get(d, "labels"))) {
		stop(g, true, "%s %s is not an enum type", tag,
		    jstr0(cmd, "identity"));
		return;
	}
	if (strcmp(tag, "CREATE TYPE") != 0) {
		if (!on_target(g, 't', jstr0(d, "schema"), jstr0(d, "name")))
			return;
		if (query_fits(g, tag)) {
			run_query(g);
			g->p->commit_after = true;
		} else
			enum_labels(g, d);
		return;
	}
	sb_add(&b, "CREATE TYPE ");
	sb_qname(&b, jstr0(d, "schema"), jstr0(d, "name"));
	sb_add(&b, " AS ENUM (");
	json_array_foreach(json_object_get(d, "labels"), i, v) {
		sb_add(&b, i ? ", " : "");
		sb_lit(&b, json_string_value(v) ? json_string_value(v) : "");
	}
	sb_add(&b, ")");
	emit(g, &b);
}

/* Did an earlier command of the message (its CREATE, or the same ALTER
 * reported twice) already bring this table to its final definition? */
static bool
seen_before(struct gen *g, size_t at, json_t *oid)
{
	json_t *c;
	size_t i;

	json_array_foreach(g->cmds, i, c)
		if (i < at && json_equal(json_object_get(c, "oid"), oid) &&
		    strncmp(jstr0(c, "object_type"), "table", 5) == 0)
			return true;
	return false;
}

static void
table_command(struct gen *g, size_t at, json_t *cmd, json_t *d)
{
	const char *tag = jstr0(cmd, "tag");
	json_t *bd = json_object_get(cmd, "before");

	g->p->tables = true;
	if (seen_before(g, at, json_object_get(cmd, "oid")))
		return;		/* the first command had the final definition */
	if (d == NULL || json_is_null(d))
		stop(g, true, "%s %s: the capture sent no definition", tag,
		    jstr0(cmd, "identity"));
	else if (strcmp(tag, "CREATE TABLE") == 0)
		create_table(g, d, "");
	else if (strcmp(tag, "CREATE TABLE AS") == 0 ||
	    strcmp(tag, "SELECT INTO") == 0)
		create_table(g, d, "IF NOT EXISTS ");
	else if (bd != NULL && !json_is_null(bd) &&
	    strcmp(tag, "ALTER TABLE") == 0)
		alter_table(g, tag, bd, d);
	else if (!included(g, jstr0(d, "schema"), jstr0(d, "name")) ||
	    !on_target(g, 'r', jstr0(d, "schema"), jstr0(d, "name")))
		return;
	else if (query_fits(g, tag))
		run_query(g);	/* COMMENT, GRANT...: that statement */
	else
		stop(g, true, "%s of table %s is not replayed by logship", tag,
		    jstr0(cmd, "identity"));
}

static void
command(struct gen *g, size_t at, json_t *cmd)
{
	const char *ot = jstr0(cmd, "object_type"), *tag = jstr0(cmd, "tag");
	json_t *d = json_object_get(cmd, "def");
	struct sb b = { 0 };

	if (strcmp(ot, "table") == 0 || strcmp(ot, "table column") == 0)
		table_command(g, at, cmd, d);
	else if (strcmp(ot, "index") == 0 && strcmp(tag, "CREATE INDEX") == 0 &&
	    json_is_object(d)) {
		if (included(g, jstr0(d, "schema"), jstr0(d, "table")) &&
		    on_target(g, 'r', jstr0(d, "schema"), jstr0(d, "table")))
			index_create(g, d);
	} else if (strcmp(ot, "sequence") == 0 && json_is_object(d) &&
	    (strcmp(tag, "CREATE SEQUENCE") == 0 ||
	    strcmp(tag, "ALTER SEQUENCE") == 0))
		sequence(g, at, cmd, d);
	else if (strcmp(ot, "schema") == 0 && strcmp(tag, "CREATE SCHEMA") == 0 &&
	    json_is_object(d)) {
		sb_add(&b, "CREATE SCHEMA IF NOT EXISTS ");
		sb_ident(&b, jstr0(d, "name"));
		emit(g, &b);
	} else if (strcmp(ot, "type") == 0)
		type(g, cmd, json_is_object(d) ? d : NULL);
	else if ((strcmp(ot, "index") == 0 || strcmp(ot, "sequence") == 0 ||
	    strcmp(ot, "schema") == 0) && query_fits(g, tag))
		run_query(g);	/* ALTER INDEX ... RENAME and the like */
	else
		stop(g, true, "%s (%s %s) is not replayed by logship", tag, ot,
		    jstr0(cmd, "identity"));
}

/* sql_drop: what the statement named; its dependents follow on the target. */
static void
dropped(struct gen *g, json_t *list)
{
	static const char *const kinds[][2] = {
		{ "table", "TABLE" }, { "index", "INDEX" },
		{ "sequence", "SEQUENCE" }, { "type", "TYPE" },
		{ "schema", "SCHEMA" },
	};
	bool cascade = false;
	json_t *o;
	size_t i, k;

	json_array_foreach(list, i, o)
		cascade = cascade || (!json_is_true(json_object_get(o,
		    "original")) && json_is_true(json_object_get(o, "normal")));
	json_array_foreach(list, i, o) {
		const char *ot = jstr0(o, "object_type");
		struct sb b = { 0 };

		if (!json_is_true(json_object_get(o, "original")) ||
		    strcmp(ot, "table column") == 0 ||
		    strcmp(ot, "table constraint") == 0 ||
		    strcmp(ot, "default value") == 0)
			continue;	/* a table's part: its ALTER TABLE */
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (strcmp(ot, kinds[k][0]) == 0)
				break;
		if (k == sizeof(kinds) / sizeof(kinds[0])) {
			stop(g, true, "DROP of %s %s is not replayed by logship",
			    ot, jstr0(o, "identity"));
			return;
		}
		if (k == 0) {
			g->p->tables = g->p->keys = true;
			if (!included(g, jstr0(o, "schema"), jstr0(o, "name")))
				continue;
		}
		sb_add(&b, "DROP ");
		sb_add(&b, kinds[k][1]);
		sb_add(&b, " IF EXISTS ");
		if (k == 4)
			sb_ident(&b, jstr0(o, "name"));
		else
			sb_qname(&b, jstr0(o, "schema"), jstr0(o, "name"));
		sb_add(&b, cascade ? " CASCADE" : "");
		emit(g, &b);
	}
}

int
ddl_plan_new(const char *json, size_t len, const struct ddl_hooks *h,
    struct ddl_plan **out, char **errmsg)
{
	struct gen g = { 0 };
	json_error_t je;
	json_t *m = json_loadb(json, len, 0, &je), *c;
	const char *ev;
	size_t i;

	*out = NULL;
	ev = jstr(m, "event");
	if (!json_is_object(m) || json_integer_value(json_object_get(m, "v")) !=
	    1 || ev == NULL) {
		json_decref(m);
		return ls_errf(errmsg, LS_ERR_CORRUPT, "logship.ddl message: %s",
		    m == NULL ? je.text : "not version 1 of the format");
	}
	if ((g.p = calloc(1, sizeof(*g.p))) == NULL) {
		json_decref(m);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	g.h = h;
	g.tag = jstr0(m, "tag");
	g.query = jstr(m, "query");
	g.path = jstr(m, "search_path");
	g.cmds = json_object_get(m, "commands");
	if (strcmp(ev, "sql_drop") == 0)
		dropped(&g, json_object_get(m, "dropped"));
	else if (strcmp(ev, "ddl_command_end") == 0)
		json_array_foreach(g.cmds, i, c)
			command(&g, i, c);
	else
		stop(&g, true, "event %s is not replayed by logship", ev);
	if (g.query != NULL && (g.p->query = strdup(g.query)) == NULL)
		g.oom = 1;
	json_decref(m);
	if (g.oom) {
		ddl_plan_free(g.p);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	*out = g.p;
	return 0;
}

void
ddl_plan_free(struct ddl_plan *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nsql; i++)
		free(p->sql[i]);
	free(p->sql);
	for (i = 0; i < p->nnamed; i++)
		free(p->named[i]);
	free(p->named);
	free(p->stop);
	free(p->query);
	free(p);
}
