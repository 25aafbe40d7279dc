/* target.c: the restore target's logship schema and checks (see target.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "pg/pgtool.h"
#include "target.h"

int
target_classify(PGconn *c, const PGresult *res)
{
	const char *st = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(c) != CONNECTION_OK)
		return LS_ERR_TRANSIENT;
	if (st != NULL && (strncmp(st, "08", 2) == 0 || strncmp(st, "57", 2) == 0 ||
	    strncmp(st, "40", 2) == 0))
		return LS_ERR_TRANSIENT;
	return LS_ERR_PG;
}

int
target_error(PGconn *c, const PGresult *res, char **errmsg, const char *what)
{
	const char *m = res != NULL ? PQresultErrorMessage(res) : "";
	char buf[512];
	size_t n;

	snprintf(buf, sizeof(buf), "%s", *m ? m : PQerrorMessage(c));
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return ls_errf(errmsg, target_classify(c, res), "target: %s: %s", what,
	    buf);
}

int
target_connect(const char *conninfo, PGconn **out, char **errmsg)
{
	const char *kw[] = { "dbname", "fallback_application_name", NULL };
	const char *val[] = { conninfo, "logship-restore", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);
	int r;

	if (PQstatus(c) == CONNECTION_OK) {
		pgtool_tls_note(c, "--target", "restore");
		*out = c;
		return 0;
	}
	r = ls_errf(errmsg, LS_ERR_TRANSIENT, "cannot connect to the target: "
	    "%s; check --target", PQerrorMessage(c));
	if (*errmsg != NULL && strchr(*errmsg, '\n') != NULL)
		*strchr(*errmsg, '\n') = '\0';
	PQfinish(c);
	return r;
}

static PGresult *
q(PGconn *c, const char *sql, int n, const char *const *params,
    const char *what, char **errmsg)
{
	PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_COMMAND_OK)
		return res;
	target_error(c, res, errmsg, what);
	PQclear(res);
	return NULL;
}

int
target_exec(PGconn *c, const char *sql, char **errmsg)
{
	PGresult *res = PQexec(c, sql);	/* simple protocol: several commands */
	int r = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		r = target_error(c, res, errmsg, "exec");
	PQclear(res);
	return r;
}

int
target_identity(PGconn *c, char *buf, size_t len, char **errmsg)
{
	PGresult *res = q(c, "SELECT system_identifier, current_database() FROM "
	    "pg_control_system()", 0, NULL, "identity", errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	snprintf(buf, len, "system %s database %s", PQgetvalue(res, 0, 0),
	    PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

int
target_get_marker(PGconn *c, struct state_marker *m, char *store_id,
    size_t len, char **errmsg)
{
	PGresult *res = q(c, "SELECT to_regclass('logship.applied') IS NOT NULL",
	    0, NULL, "marker", errmsg);
	const char *sha;
	int r = LS_ERR_NOTFOUND;

	if (res == NULL)
		return LS_ERR_PG;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		/* heartbeat_time through jsonb: older markers lack it */
		res = q(c, "SELECT store, generation, phase, segno, end_lsn::text, "
		    "(extract(epoch from commit_time) * 1000000)::bigint, "
		    "coalesce(seg_sha256, ''), txns, coalesce((extract(epoch from "
		    "(to_jsonb(a)->>'heartbeat_time')::timestamptz) * 1000000)::"
		    "bigint, 0) FROM logship.applied a", 0, NULL, "marker", errmsg);
		if (res == NULL)
			return LS_ERR_PG;
	}
	if (PQntuples(res) == 1 && PQnfields(res) == 9) {
		memset(m, 0, sizeof(*m));
		snprintf(store_id, len, "%s", PQgetvalue(res, 0, 0));
		snprintf(m->generation, sizeof(m->generation), "%s",
		    PQgetvalue(res, 0, 1));
		m->phase = atoi(PQgetvalue(res, 0, 2));
		m->segno = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		ls_lsn_parse(PQgetvalue(res, 0, 4), &m->end_lsn);
		m->commit_time = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
		sha = PQgetvalue(res, 0, 6);
		if (strlen(sha) == 64)
			ls_unhex(sha, m->seg_sha, 32);
		m->txns = strtoull(PQgetvalue(res, 0, 7), NULL, 10);
		m->heartbeat_time = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
		r = 0;
	}
	PQclear(res);
	return r;
}

int
target_user_tables(PGconn *c, int *ntables, char **errmsg)
{
	PGresult *res = q(c, "SELECT count(*) FROM pg_class r JOIN pg_namespace n "
	    "ON n.oid = r.relnamespace WHERE r.relkind IN ('r','p') AND "
	    "n.nspname NOT IN ('pg_catalog','information_schema','logship') AND "
	    "n.nspname !~ '^pg_'", 0, NULL, "listing tables", errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	*ntables = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

char *
target_qualify(PGconn *c, const char *schema, const char *name)
{
	char *qs = PQescapeIdentifier(c, schema, strlen(schema));
	char *qn = PQescapeIdentifier(c, name, strlen(name));
	char *out = NULL;

	if (qs != NULL && qn != NULL && asprintf(&out, "%s.%s", qs, qn) < 0)
		out = NULL;
	PQfreemem(qs);
	PQfreemem(qn);
	return out;
}

int
target_existing(PGconn *c, const char *const *tables, size_t n,
    size_t *existing, char **errmsg)
{
	PGresult *res;
	size_t i;
	int r = 0;

	*existing = 0;
	for (i = 0; r == 0 && i < n; i++) {
		const char *params[2] = { tables[2 * i], tables[2 * i + 1] };
		res = PQexecParams(c, "SELECT to_regclass(format('%I.%I', $1::text, "
		    "$2::text)) IS NOT NULL", 2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r = target_error(c, res, errmsg, "looking up a table");
		else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
			(*existing)++;
		PQclear(res);
	}
	return r;
}

/* tables are "schema.name" pairs: tables[2i], tables[2i+1]. */
int
target_nonempty(PGconn *c, const char *const *tables, size_t n, char **names,
    char **errmsg)
{
	char *qt, *sql = NULL, *list = NULL, *next;
	PGresult *res;
	size_t i;

	*names = NULL;
	for (i = 0; i < n; i++) {
		if ((qt = target_qualify(c, tables[2 * i], tables[2 * i + 1])) == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		if (asprintf(&sql, "SELECT EXISTS (SELECT 1 FROM %s) WHERE "
		    "to_regclass('%s') IS NOT NULL", qt, qt) < 0)
			sql = NULL;
		res = sql != NULL ? PQexec(c, sql) : NULL;
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		    strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
			if (asprintf(&next, "%s%s%s.%s", list ? list : "",
			    list ? ", " : "", tables[2 * i], tables[2 * i + 1]) >= 0) {
				free(list);
				list = next;
			}
		}
		PQclear(res);
		free(sql);
		PQfreemem(qt);
	}
	*names = list;
	return 0;
}

int
target_truncate(PGconn *c, const char *const *tables, size_t n, char **errmsg)
{
	char *sql = strdup("TRUNCATE"), *qt, *next;
	size_t i;
	int r;

	for (i = 0; sql != NULL && i < n; i++) {
		if ((qt = target_qualify(c, tables[2 * i], tables[2 * i + 1])) == NULL ||
		    asprintf(&next, "%s%s %s", sql, i ? "," : "", qt) < 0)
			next = NULL;
		PQfreemem(qt);
		free(sql);
		sql = next;
	}
	if (sql == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	r = n > 0 ? target_exec(c, sql, errmsg) : 0;
	free(sql);
	return r;
}

int
target_init(PGconn *c, const char *store_id, const char *generation,
    char **errmsg)
{
	const char *params[2] = { store_id, generation };
	PGresult *res;
	int r;

	r = target_exec(c, "BEGIN; CREATE SCHEMA IF NOT EXISTS logship; "
	    "CREATE TABLE IF NOT EXISTS logship.applied (id int PRIMARY KEY "
	    "CHECK (id = 1), store text NOT NULL, generation text NOT NULL, "
	    "phase int NOT NULL, segno bigint NOT NULL, end_lsn pg_lsn NOT NULL, "
	    "commit_time timestamptz, seg_sha256 text, txns bigint NOT NULL, "
	    "updated timestamptz NOT NULL, heartbeat_time timestamptz); "
	    "CREATE TABLE IF NOT EXISTS "
	    "logship.base_chunks (key text PRIMARY KEY, loaded timestamptz NOT "
	    "NULL DEFAULT now())", errmsg);
	if (r != 0)
		return r;
	res = q(c, "INSERT INTO logship.applied VALUES (1, $1, $2, 0, 0, '0/0', "
	    "NULL, NULL, 0, now(), NULL) ON CONFLICT (id) DO NOTHING", 2, params,
	    "init", errmsg);
	if (res == NULL) {
		PQclear(PQexec(c, "ROLLBACK"));
		return LS_ERR_PG;
	}
	PQclear(res);
	return target_exec(c, "COMMIT", errmsg);
}

int
target_upgrade(PGconn *c, char **errmsg)
{
	PGresult *res = q(c, "SELECT 1 FROM pg_attribute WHERE attrelid = "
	    "'logship.applied'::regclass AND attname = 'heartbeat_time' AND "
	    "NOT attisdropped", 0, NULL, "marker", errmsg);
	int n;

	if (res == NULL)
		return LS_ERR_PG;
	n = PQntuples(res);
	PQclear(res);
	return n == 1 ? 0 : target_exec(c, "ALTER TABLE logship.applied ADD "
	    "COLUMN IF NOT EXISTS heartbeat_time timestamptz", errmsg);
}

int
target_marker_sql(PGconn *c, const struct state_marker *m, char *buf,
    size_t len)
{
	char lsn[32], sha[65], when[128] = "NULL", hb[128] = "NULL";
	int n;

	(void)c;
	ls_lsn_format(m->end_lsn, lsn);
	ls_hex(m->seg_sha, 32, sha);
	if (m->commit_time != 0)	/* exact to the microsecond */
		snprintf(when, sizeof(when), "'epoch'::timestamptz + %" PRId64
		    " * interval '1 microsecond'", m->commit_time);
	if (m->heartbeat_time != 0)
		snprintf(hb, sizeof(hb), "'epoch'::timestamptz + %" PRId64
		    " * interval '1 microsecond'", m->heartbeat_time);
	n = snprintf(buf, len, "UPDATE logship.applied SET phase = %d, segno = %"
	    PRIu64 ", end_lsn = '%s', commit_time = %s, seg_sha256 = '%s', "
	    "txns = %" PRIu64 ", updated = now(), heartbeat_time = %s",
	    m->phase, m->segno, lsn, when, sha, m->txns, hb);
	return n > 0 && (size_t)n < len ? 0 : LS_ERR_INTERNAL;
}
