/*
 * ddl.c: DDL capture on the source (see ddl.h).  The SQL below is the
 * whole capture; schema/segment-format.md §6.10 specifies the messages it
 * emits and why they hold what they hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "common/log.h"
#include "ddl.h"
#include "source.h"

/*
 * Removed first by both install and uninstall: the event triggers, then
 * every function logship.ddl_* (an older version's too).  The setting
 * logship.ddl_install keeps this transaction's own commands uncaptured.
 */
static const char remove_sql[] =
    "SET LOCAL client_min_messages = warning;\n"
    "SET LOCAL logship.ddl_install = 'on';\n"
    "DROP EVENT TRIGGER IF EXISTS logship_ddl_command_end;\n"
    "DROP EVENT TRIGGER IF EXISTS logship_sql_drop;\n"
    "DO $d$\n"
    "DECLARE f regprocedure;\n"
    "BEGIN\n"
    "  FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p\n"
    "      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace\n"
    "      WHERE n.nspname = 'logship' AND p.proname LIKE 'ddl\\_%' LOOP\n"
    "    EXECUTE pg_catalog.format('DROP FUNCTION %s', f);\n"
    "  END LOOP;\n"
    "END $d$;\n";

/*
 * The capture.  ddl_table_def, ddl_seq_def and ddl_def read an object's
 * definition from the catalogs; logship.ddl_shadow keeps every table's
 * last definition, so that a command can carry the one before it.  The
 * triggers' function ddl_event runs as the user who ran the command (to
 * name that user; hence USAGE on the schema for everyone) and calls the
 * SECURITY DEFINER function ddl_capture_end or ddl_capture_drop, which
 * reads and writes the shadow and emits the message.  A DROP of an index
 * or a table's part (sql_drop) marks that table in logship.ddl_stale for
 * the ddl_command_end of the same command to refresh.  Objects in schema
 * logship and temporary ones are ignored.
 *
 * The install refreshes the shadow from the catalogs, and it runs at every
 * start of the agent, maybe while another session's ALTER TABLE is not yet
 * committed.  Its definitions must not be read before that session's
 * commit: an upsert that then waits for the row that session updated would
 * put back the definition from before that command, and the next command's
 * "before" would lack its change.  So the install first locks the shadow
 * against every writer: it waits for the sessions whose capture has run,
 * and sessions that capture later wait for it.
 */
static const char create_sql[] =
    "CREATE SCHEMA IF NOT EXISTS logship;\n"
    "GRANT USAGE ON SCHEMA logship TO PUBLIC;\n"
    "CREATE TABLE IF NOT EXISTS logship.ddl_shadow (\n"
    "  relid oid PRIMARY KEY, def jsonb NOT NULL);\n"
    "LOCK TABLE logship.ddl_shadow IN SHARE ROW EXCLUSIVE MODE;\n"
    "CREATE FUNCTION logship.ddl_tracked(rel oid) RETURNS boolean\n"
    "LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$\n"
    "SELECT EXISTS (SELECT 1 FROM pg_class c\n"
    "  JOIN pg_namespace n ON n.oid = c.relnamespace\n"
    "  WHERE c.oid = rel AND c.relkind IN ('r', 'p')\n"
    "  AND c.relpersistence <> 't'\n"
    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'logship')\n"
    "  AND n.nspname !~ '^pg_')\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_table_def(rel oid) RETURNS jsonb\n"
    "LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$\n"
    "SELECT jsonb_build_object('oid', c.oid::bigint, 'schema', n.nspname,\n"
    "  'name', c.relname, 'relkind', c.relkind,\n"
    "  'persistence', c.relpersistence,\n"
    "  'replident', c.relreplident,\n"
    "  'replident_index', (SELECT ic.relname FROM pg_index i\n"
    "    JOIN pg_class ic ON ic.oid = i.indexrelid\n"
    "    WHERE i.indrelid = c.oid AND i.indisreplident),\n"
    "  'columns', coalesce((SELECT jsonb_agg(jsonb_build_object(\n"
    "      'attnum', a.attnum, 'name', a.attname,\n"
    "      'type', format_type(a.atttypid, a.atttypmod),\n"
    "      'type_schema', tn.nspname, 'type_name', t.typname,\n"
    "      'typmod', a.atttypmod,\n"
    "      'collation', CASE WHEN a.attcollation <> t.typcollation\n"
    "        THEN format('%I.%I', cn.nspname, co.collname) END,\n"
    "      'notnull', a.attnotnull,\n"
    "      'default', pg_get_expr(d.adbin, d.adrelid),\n"
    "      'identity', a.attidentity, 'generated', a.attgenerated)\n"
    "      ORDER BY a.attnum)\n"
    "    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid\n"
    "    JOIN pg_namespace tn ON tn.oid = t.typnamespace\n"
    "    LEFT JOIN pg_collation co ON co.oid = a.attcollation\n"
    "    LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace\n"
    "    LEFT JOIN pg_attrdef d\n"
    "      ON d.adrelid = a.attrelid AND d.adnum = a.attnum\n"
    "    WHERE a.attrelid = c.oid AND a.attnum > 0\n"
    "    AND NOT a.attisdropped), '[]'),\n"
    "  'constraints', coalesce((SELECT jsonb_agg(jsonb_build_object(\n"
    "      'name', k.conname, 'type', k.contype,\n"
    "      'def', pg_get_constraintdef(k.oid)) ORDER BY k.conname)\n"
    "    FROM pg_constraint k WHERE k.conrelid = c.oid), '[]'),\n"
    "  'indexes', coalesce((SELECT jsonb_agg(jsonb_build_object(\n"
    "      'name', ic.relname, 'def', pg_get_indexdef(i.indexrelid),\n"
    "      'valid', i.indisvalid,\n"
    "      'constraint', EXISTS (SELECT 1 FROM pg_constraint k\n"
    "        WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid\n"
    "        AND k.contype IN ('p', 'u', 'x'))) ORDER BY ic.relname)\n"
    "    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid\n"
    "    WHERE i.indrelid = c.oid), '[]'),\n"
    "  'partition_key', CASE WHEN c.relkind = 'p'\n"
    "    THEN pg_get_partkeydef(c.oid) END,\n"
    "  'partition_of', (SELECT format('%I.%I', pn.nspname, p.relname)\n"
    "    FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent\n"
    "    JOIN pg_namespace pn ON pn.oid = p.relnamespace\n"
    "    WHERE h.inhrelid = c.oid AND c.relispartition),\n"
    "  'partition_bound', CASE WHEN c.relispartition\n"
    "    THEN pg_get_expr(c.relpartbound, c.oid) END,\n"
    "  'partitions', CASE WHEN c.relkind = 'p' THEN coalesce((SELECT\n"
    "      jsonb_agg(jsonb_build_object('name', format('%I.%I', pn.nspname,\n"
    "      p.relname), 'bound', pg_get_expr(p.relpartbound, p.oid))\n"
    "      ORDER BY pn.nspname, p.relname)\n"
    "    FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhrelid\n"
    "    JOIN pg_namespace pn ON pn.oid = p.relnamespace\n"
    "    WHERE h.inhparent = c.oid), '[]') END,\n"
    "  'inherits', coalesce((SELECT jsonb_agg(format('%I.%I', pn.nspname,\n"
    "      p.relname) ORDER BY h.inhseqno)\n"
    "    FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent\n"
    "    JOIN pg_namespace pn ON pn.oid = p.relnamespace\n"
    "    WHERE h.inhrelid = c.oid AND NOT c.relispartition), '[]'))\n"
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
    "WHERE c.oid = rel AND c.relkind IN ('r', 'p')\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_seq_def(seq oid) RETURNS jsonb\n"
    "LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$\n"
    "SELECT jsonb_build_object('schema', n.nspname, 'name', c.relname,\n"
    "  'type', format_type(s.seqtypid, NULL), 'start', s.seqstart,\n"
    "  'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,\n"
    "  'cache', s.seqcache, 'cycle', s.seqcycle,\n"
    "  'owned_by', (SELECT format('%I.%I.%I', tn.nspname, t.relname,\n"
    "      a.attname)\n"
    "    FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid\n"
    "    JOIN pg_namespace tn ON tn.oid = t.relnamespace\n"
    "    JOIN pg_attribute a\n"
    "      ON a.attrelid = t.oid AND a.attnum = d.refobjsubid\n"
    "    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid\n"
    "    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')\n"
    "    LIMIT 1),\n"
    "  'identity', EXISTS (SELECT 1 FROM pg_depend d\n"
    "    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid\n"
    "    AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'))\n"
    "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid\n"
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE s.seqrelid = seq\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_def(kind text, obj oid) RETURNS jsonb\n"
    "LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$\n"
    "SELECT CASE kind\n"
    "  WHEN 'table' THEN logship.ddl_table_def(obj)\n"
    "  WHEN 'table column' THEN logship.ddl_table_def(obj)\n"
    "  WHEN 'sequence' THEN logship.ddl_seq_def(obj)\n"
    "  WHEN 'index' THEN (SELECT jsonb_build_object('schema', n.nspname,\n"
    "      'name', ic.relname, 'table', tc.relname,\n"
    "      'def', pg_get_indexdef(i.indexrelid), 'valid', i.indisvalid)\n"
    "    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid\n"
    "    JOIN pg_class tc ON tc.oid = i.indrelid\n"
    "    JOIN pg_namespace n ON n.oid = ic.relnamespace\n"
    "    WHERE i.indexrelid = obj)\n"
    "  WHEN 'schema' THEN (SELECT jsonb_build_object('name', nspname)\n"
    "    FROM pg_namespace WHERE oid = obj)\n"
    "  WHEN 'type' THEN (SELECT jsonb_build_object('schema', n.nspname,\n"
    "      'name', t.typname,\n"
    "      'labels', coalesce((SELECT jsonb_agg(e.enumlabel\n"
    "        ORDER BY e.enumsortorder) FROM pg_enum e\n"
    "        WHERE e.enumtypid = t.oid), '[]'))\n"
    "    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace\n"
    "    WHERE t.oid = obj AND t.typtype = 'e')\n"
    "END\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_emit(event text, tag text, usr text,\n"
    "  path text, query text, key text, list jsonb) RETURNS void\n"
    "LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$\n"
    "SELECT pg_logical_emit_message(true, 'logship.ddl', jsonb_build_object(\n"
    "  'v', 1, 'event', event, 'tag', tag, 'search_path', path,\n"
    "  'query', query, 'user', usr, key, list)::text)\n"
    "WHERE jsonb_array_length(list) > 0\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_refresh(rels oid[], names text[])\n"
    "RETURNS void\n"
    "LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$\n"
    "WITH RECURSIVE d(relid) AS (\n"
    "  SELECT unnest(rels)\n"
    "  UNION SELECT h.inhrelid FROM pg_inherits h\n"
    "    JOIN d ON h.inhparent = d.relid\n"
    "), f AS (\n"
    "  SELECT relid FROM d\n"
    "  UNION SELECT s.relid FROM logship.ddl_shadow s\n"
    "    WHERE s.def->>'partition_of' = ANY (names)\n"
    "    OR s.def->'inherits' ?| names\n"
    ")\n"
    "INSERT INTO logship.ddl_shadow AS s (relid, def)\n"
    "SELECT f.relid, logship.ddl_table_def(f.relid) FROM f\n"
    "WHERE logship.ddl_tracked(f.relid)\n"
    "ON CONFLICT (relid) DO UPDATE SET def = excluded.def\n"
    "WHERE s.def IS DISTINCT FROM excluded.def\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_capture_end(tag text, usr text, path text,\n"
    "  query text) RETURNS void\n"
    "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp\n"
    "AS $f$\n"
    "DECLARE\n"
    "  r record;\n"
    "  cmds jsonb := '[]';\n"
    "  cmd jsonb;\n"
    "  b jsonb;\n"
    "  rels oid[] := '{}';\n"
    "  names text[] := '{}';\n"
    "  stale text := current_setting('logship.ddl_stale', true);\n"
    "BEGIN\n"
    "  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP\n"
    "    CONTINUE WHEN r.schema_name IN ('logship', 'pg_temp', 'pg_toast')\n"
    "      OR (r.object_type = 'schema' AND r.object_identity = 'logship');\n"
    "    cmd := jsonb_build_object('object_type', r.object_type,\n"
    "      'identity', r.object_identity, 'schema', r.schema_name,\n"
    "      'tag', r.command_tag, 'oid', r.objid::bigint,\n"
    "      'in_extension', r.in_extension,\n"
    "      'def', logship.ddl_def(r.object_type, r.objid));\n"
    "    IF r.object_type IN ('table', 'table column') THEN\n"
    "      SELECT s.def INTO b FROM logship.ddl_shadow s\n"
    "        WHERE s.relid = r.objid;\n"
    "      cmd := cmd || jsonb_build_object('before', b);\n"
    "      rels := rels || r.objid;\n"
    "      IF b IS NOT NULL THEN\n"
    "        names := names || format('%I.%I', b->>'schema', b->>'name');\n"
    "      END IF;\n"
    "    ELSIF r.object_type = 'index' THEN\n"
    "      rels := rels || ARRAY(SELECT i.indrelid FROM pg_index i\n"
    "        WHERE i.indexrelid = r.objid);\n"
    "    ELSIF r.object_type = 'table constraint' THEN\n"
    "      rels := rels || ARRAY(SELECT k.conrelid FROM pg_constraint k\n"
    "        WHERE k.oid = r.objid);\n"
    "    END IF;\n"
    "    cmds := cmds || jsonb_build_array(cmd);\n"
    "  END LOOP;\n"
    "  IF stale <> '' THEN\n"
    "    rels := rels || string_to_array(stale, ',')::oid[];\n"
    "    PERFORM set_config('logship.ddl_stale', '', true);\n"
    "  END IF;\n"
    "  PERFORM logship.ddl_emit('ddl_command_end', tag, usr, path, query,\n"
    "    'commands', cmds);\n"
    "  IF cardinality(rels) > 0 THEN\n"
    "    PERFORM logship.ddl_refresh(rels, names);\n"
    "  END IF;\n"
    "END\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_capture_drop(tag text, usr text, path text,\n"
    "  query text) RETURNS void\n"
    "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp\n"
    "AS $f$\n"
    "DECLARE\n"
    "  r record;\n"
    "  dropped jsonb := '[]';\n"
    "  stale oid[] := '{}';\n"
    "BEGIN\n"
    "  FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP\n"
    "    CONTINUE WHEN r.is_temporary\n"
    "      OR r.schema_name IN ('logship', 'pg_toast')\n"
    "      OR (r.object_type = 'schema' AND r.object_name = 'logship');\n"
    "    IF r.object_type = 'table' THEN\n"
    "      DELETE FROM logship.ddl_shadow WHERE relid = r.objid;\n"
    "    ELSIF r.object_type = 'index' THEN\n"
    "      stale := stale || ARRAY(SELECT s.relid FROM logship.ddl_shadow s\n"
    "        WHERE s.def->>'schema' = r.schema_name AND s.def->'indexes' @>\n"
    "        jsonb_build_array(jsonb_build_object('name', r.object_name)));\n"
    "    ELSIF cardinality(r.address_names) = 3 THEN\n"
    "      stale := stale || ARRAY(SELECT s.relid FROM logship.ddl_shadow s\n"
    "        WHERE s.def->>'schema' = r.address_names[1]\n"
    "        AND s.def->>'name' = r.address_names[2]);\n"
    "    END IF;\n"
    "    dropped := dropped || jsonb_build_array(jsonb_build_object(\n"
    "      'object_type', r.object_type, 'identity', r.object_identity,\n"
    "      'schema', r.schema_name, 'name', r.object_name,\n"
    "      'original', r.original, 'normal', r.normal,\n"
    "      'is_temporary', r.is_temporary, 'oid', r.objid::bigint,\n"
    "      'address_names', to_jsonb(r.address_names),\n"
    "      'address_args', to_jsonb(r.address_args)));\n"
    "  END LOOP;\n"
    "  IF cardinality(stale) > 0 THEN\n"
    "    PERFORM set_config('logship.ddl_stale', concat_ws(',',\n"
    "      nullif(current_setting('logship.ddl_stale', true), ''),\n"
    "      array_to_string(stale, ',')), true);\n"
    "  END IF;\n"
    "  PERFORM logship.ddl_emit('sql_drop', tag, usr, path, query, 'dropped',\n"
    "    dropped);\n"
    "END\n"
    "$f$;\n"
    "CREATE FUNCTION logship.ddl_event() RETURNS event_trigger\n"
    "LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "  IF coalesce(current_setting('logship.ddl_install', true), '') = 'on'\n"
    "  THEN\n"
    "    RETURN;\n"
    "  ELSIF tg_event = 'sql_drop' THEN\n"
    "    PERFORM logship.ddl_capture_drop(tg_tag, current_user::text,\n"
    "      current_setting('search_path'), current_query());\n"
    "  ELSE\n"
    "    PERFORM logship.ddl_capture_end(tg_tag, current_user::text,\n"
    "      current_setting('search_path'), current_query());\n"
    "  END IF;\n"
    "END\n"
    "$f$;\n"
    "CREATE EVENT TRIGGER logship_ddl_command_end ON ddl_command_end\n"
    "  EXECUTE FUNCTION logship.ddl_event();\n"
    "CREATE EVENT TRIGGER logship_sql_drop ON sql_drop\n"
    "  EXECUTE FUNCTION logship.ddl_event();\n"
    "INSERT INTO logship.ddl_shadow AS s (relid, def)\n"
    "  SELECT c.oid, logship.ddl_table_def(c.oid) FROM pg_catalog.pg_class c\n"
    "  WHERE c.relkind IN ('r', 'p') AND logship.ddl_tracked(c.oid)\n"
    "  ON CONFLICT (relid) DO UPDATE SET def = excluded.def\n"
    "  WHERE s.def IS DISTINCT FROM excluded.def;\n"
    "DELETE FROM logship.ddl_shadow WHERE NOT logship.ddl_tracked(relid);\n";

static const char installed_sql[] =
    "SELECT count(*) FROM pg_catalog.pg_event_trigger WHERE evtname IN "
    "('logship_ddl_command_end', 'logship_sql_drop') AND evtenabled <> 'D'";

/* Is a relation (oid $2) published by publication $1? */
static const char published_sql[] =
    "WITH a AS (SELECT relid FROM pg_catalog.pg_partition_ancestors($2)) "
    "SELECT p.puballtables OR EXISTS (SELECT 1 FROM "
    "pg_catalog.pg_publication_rel r WHERE r.prpubid = p.oid AND "
    "r.prrelid IN (SELECT relid FROM a)) OR EXISTS (SELECT 1 FROM "
    "pg_catalog.pg_publication_namespace s JOIN pg_catalog.pg_class c ON "
    "c.relnamespace = s.pnnspid WHERE s.pnpubid = p.oid AND "
    "c.oid IN (SELECT relid FROM a)) "
    "FROM pg_catalog.pg_publication p WHERE p.pubname = $1";

static int
need_superuser(PGconn *c, const char *option, const char *fix,
    char **errmsg)
{
	PGresult *res = source_query(c, "SELECT rolsuper, current_user FROM "
	    "pg_catalog.pg_roles WHERE rolname = current_user", 0, NULL,
	    errmsg);
	int r = 0;

	if (res == NULL)
		return LS_ERR_PG;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		r = ls_errf(errmsg, LS_ERR_INVALID, "%s needs a superuser on the "
		    "source (event triggers require it) and role %s is not one: "
		    "connect as a superuser%s", option, PQntuples(res) == 1 ?
		    PQgetvalue(res, 0, 1) : "?", fix);
	PQclear(res);
	return r;
}

/* Run parts in one transaction, rolled back on failure. */
static int
run_script(PGconn *c, const char *const *parts, const char *what,
    char **errmsg)
{
	PGresult *res;
	size_t i;

	if ((res = source_query(c, "BEGIN", 0, NULL, errmsg)) == NULL)
		return LS_ERR_PG;
	PQclear(res);
	for (i = 0; parts[i] != NULL; i++) {
		if ((res = source_query(c, parts[i], 0, NULL, errmsg)) == NULL) {
			PQclear(PQexec(c, "ROLLBACK"));
			return ls_errprefix(errmsg, LS_ERR_PG, "%s", what);
		}
		PQclear(res);
	}
	if ((res = source_query(c, "COMMIT", 0, NULL, errmsg)) == NULL)
		return ls_errprefix(errmsg, LS_ERR_PG, "%s", what);
	PQclear(res);
	return 0;
}

int
ddl_install(PGconn *c, char **errmsg)
{
	const char *const parts[] = { remove_sql, create_sql, NULL };
	int r;

	if ((r = need_superuser(c, "--ddl", " or run without --ddl",
	    errmsg)) != 0)
		return r;
	return run_script(c, parts, "installing the DDL capture", errmsg);
}

int
ddl_uninstall(PGconn *c, char **errmsg)
{
	const char *const parts[] = { remove_sql,
	    "DROP TABLE IF EXISTS logship.ddl_shadow", NULL };
	int r;

	if ((r = need_superuser(c, "--ddl-uninstall", "", errmsg)) != 0)
		return r;
	return run_script(c, parts, "removing the DDL capture", errmsg);
}

int
ddl_installed(PGconn *c, bool *on, char **errmsg)
{
	PGresult *res = source_query(c, installed_sql, 0, NULL, errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	*on = strcmp(PQgetvalue(res, 0, 0), "2") == 0;
	PQclear(res);
	return 0;
}

/* A command that creates a permanent table, or NULL. */
static const char *
created_table(json_t *cmd)
{
	const char *tag = json_string_value(json_object_get(cmd, "tag"));
	const char *kind = json_string_value(json_object_get(cmd,
	    "object_type"));
	json_t *def = json_object_get(cmd, "def");
	const char *pers = json_string_value(json_object_get(def,
	    "persistence"));

	if (tag == NULL || kind == NULL || pers == NULL ||
	    strcmp(kind, "table") != 0 || strcmp(pers, "p") != 0 ||
	    (strncmp(tag, "CREATE TABLE", 12) != 0 &&
	    strcmp(tag, "SELECT INTO") != 0))
		return NULL;
	return json_string_value(json_object_get(cmd, "identity"));
}

void
ddl_warn_unpublished(PGconn *c, const char *pub, const struct ls_message *m)
{
	const char *params[2] = { pub, NULL }, *name;
	char oid[24], *err = NULL;
	json_t *o, *cmd;
	PGresult *res;
	size_t i;

	if (c == NULL || strcmp(m->prefix, LS_DDL_MESSAGE) != 0 ||
	    (o = json_loadb(m->content, m->len, 0, NULL)) == NULL)
		return;
	json_array_foreach(json_object_get(o, "commands"), i, cmd) {
		if ((name = created_table(cmd)) == NULL)
			continue;
		snprintf(oid, sizeof(oid), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(cmd, "oid")));
		params[1] = oid;
		res = source_query(c, published_sql, 2, params, &err);
		if (res == NULL)
			log_warn("agent", "could not check that publication %s "
			    "publishes the new table %s: %s", pub, name, err);
		else if (PQntuples(res) != 1 ||
		    strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			log_warn("agent", "table %s was created on the source but "
			    "publication %s does not publish it: its rows will "
			    "not be streamed; add it (ALTER PUBLICATION %s ADD "
			    "TABLE %s) or use a FOR ALL TABLES publication", name,
			    pub, pub, name);
		PQclear(res);
		free(err);
		err = NULL;
	}
	json_decref(o);
}
