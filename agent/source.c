/* source.c: SQL-level dealings with the source (see source.h). */
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "pg/pgtool.h"
#include "source.h"

/* The server's message without its trailing newline. */
static const char *
pgmsg(const PGconn *c, const PGresult *res)
{
	static __thread char buf[512];
	const char *m = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c);
	size_t n;

	snprintf(buf, sizeof(buf), "%s", m != NULL && *m ? m : "unknown error");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return buf;
}

int
source_connect(const char *conninfo, bool replication, PGconn **out,
    char **errmsg)
{
	const char *kw[] = { "dbname", "replication", "application_name",
	    "fallback_application_name", NULL };
	const char *val[] = { conninfo, replication ? "database" : NULL, NULL,
	    "logship-agent", NULL };
	PGconn *c;
	const char *m;

	if (!replication) {
		kw[1] = "fallback_application_name";
		val[1] = "logship-agent";
		kw[2] = NULL;
	}
	c = PQconnectdbParams(kw, val, 1);
	if (PQstatus(c) == CONNECTION_OK) {
		pgtool_tls_note(c, "--source", "agent");
		*out = c;
		return 0;
	}
	m = pgmsg(c, NULL);
	if (strstr(m, "password authentication failed") != NULL ||
	    strstr(m, "no password supplied") != NULL ||
	    strstr(m, "no pg_hba.conf entry") != NULL || PQconnectionNeedsPassword(c)) {
		ls_errf(errmsg, LS_ERR_AUTH, "source refused the login: %s; fix the "
		    "user/password (PGPASSFILE or the config file) or pg_hba.conf", m);
		PQfinish(c);
		return LS_ERR_AUTH;
	}
	ls_errf(errmsg, LS_ERR_TRANSIENT, "cannot connect to the source: %s; "
	    "check host and port in --source and that PostgreSQL is running", m);
	PQfinish(c);
	return LS_ERR_TRANSIENT;
}

PGresult *
source_query(PGconn *c, const char *sql, int nparams,
    const char *const *params, char **errmsg)
{
	PGresult *res = nparams == 0 ? PQexec(c, sql) :
	    PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_COMMAND_OK)
		return res;
	ls_errf(errmsg, PQstatus(c) == CONNECTION_OK ? LS_ERR_PG : LS_ERR_TRANSIENT,
	    "source: %s", pgmsg(c, res));
	PQclear(res);
	return NULL;
}

/* Wait until c has its result, at most until deadline (us); 0 or -1. */
static int
wait_result(PGconn *c, int64_t deadline)
{
	struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
	int64_t left;

	while (PQisBusy(c)) {
		if ((left = deadline - ls_now_us()) <= 0)
			return -1;
		if (poll(&p, 1, (int)(left / 1000) + 1) < 0 && errno != EINTR)
			return 0;	/* PQconsumeInput reports it */
		if (PQconsumeInput(c) != 1)
			return 0;
	}
	return 0;
}

PGresult *
source_query_within(PGconn *c, const char *sql, int nparams,
    const char *const *params, int timeout_ms, char **errmsg)
{
	PGresult *res, *last = NULL;
	int sent = nparams == 0 ? PQsendQuery(c, sql) :
	    PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0);

	if (sent && wait_result(c, ls_now_us() + (int64_t)timeout_ms * 1000) != 0) {
		shutdown(PQsocket(c), SHUT_RDWR);
		while ((res = PQgetResult(c)) != NULL)
			PQclear(res);
		ls_errf(errmsg, LS_ERR_TRANSIENT, "source: no answer in %d s: "
		    "the connection is dead (a network or server gone silent); "
		    "closed it", timeout_ms / 1000);
		return NULL;
	}
	while (sent && (res = PQgetResult(c)) != NULL) {
		PQclear(last);
		last = res;
	}
	if (last != NULL && (PQresultStatus(last) == PGRES_TUPLES_OK ||
	    PQresultStatus(last) == PGRES_COMMAND_OK))
		return last;
	ls_errf(errmsg, PQstatus(c) == CONNECTION_OK ? LS_ERR_PG : LS_ERR_TRANSIENT,
	    "source: %s", pgmsg(c, last));
	PQclear(last);
	return NULL;
}

int
source_preflight(PGconn *c, char **errmsg)
{
	PGresult *res = source_query(c, "SELECT current_setting('wal_level'), "
	    "r.rolreplication OR r.rolsuper, "
	    "has_database_privilege(current_database(), 'CREATE'), current_user "
	    "FROM pg_roles r WHERE r.rolname = current_user", 0, NULL, errmsg);
	int r = 0;

	if (res == NULL)
		return LS_ERR_PG;
	if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0)
		r = ls_errf(errmsg, LS_ERR_INVALID, "source has wal_level=%s; "
		    "logical replication needs wal_level=logical (ALTER SYSTEM "
		    "SET wal_level = logical; then restart PostgreSQL)",
		    PQgetvalue(res, 0, 0));
	else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		r = ls_errf(errmsg, LS_ERR_INVALID, "role %s lacks the REPLICATION "
		    "privilege (ALTER ROLE %s REPLICATION)", PQgetvalue(res, 0, 3),
		    PQgetvalue(res, 0, 3));
	else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
		r = ls_errf(errmsg, LS_ERR_INVALID, "role %s lacks the CREATE "
		    "privilege on this database, needed for the publication "
		    "(GRANT CREATE ON DATABASE ... TO %s)", PQgetvalue(res, 0, 3),
		    PQgetvalue(res, 0, 3));
	PQclear(res);
	return r;
}

int
source_identity(PGconn *c, uint64_t *system_id, char *dbname, char **errmsg)
{
	PGresult *res = source_query(c, "SELECT system_identifier, "
	    "current_database() FROM pg_control_system()", 0, NULL, errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	*system_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(dbname, 64, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/*
 * Run sql (one row: the tables' names, their count); when any, refuse FOR
 * ALL TABLES with "N table(s) <why>: <names>; <fix>".
 */
static int
refuse_tables(PGconn *c, const char *sql, const char *why, const char *fix,
    char **errmsg)
{
	PGresult *res = source_query(c, sql, 0, NULL, errmsg);
	int r = 0;

	if (res == NULL)
		return LS_ERR_PG;
	if (strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		r = ls_errf(errmsg, LS_ERR_INVALID, "refusing to publish FOR ALL "
		    "TABLES: %s table(s) %s: %s; %s", PQgetvalue(res, 0, 1), why,
		    PQgetvalue(res, 0, 0), fix);
	PQclear(res);
	return r;
}

/*
 * Tables whose replica identity key has a generated column: PostgreSQL does
 * not send generated columns, so their UPDATE and DELETE reach the restore
 * with nothing to find the row by.
 */
static int
check_generated_identity(PGconn *c, char **errmsg)
{
	return refuse_tables(c, "SELECT string_agg(DISTINCT format('%I.%I', "
	    "n.nspname, c.relname), ', '), count(DISTINCT c.oid) FROM pg_class c "
	    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON "
	    "i.indrelid = c.oid AND ((c.relreplident = 'd' AND i.indisprimary) OR "
	    "(c.relreplident = 'i' AND i.indisreplident)) JOIN pg_attribute a ON "
	    "a.attrelid = c.oid AND a.attnum = ANY (i.indkey) AND a.attgenerated "
	    "<> '' WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND "
	    "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'",
	    "have a generated column in their replica identity, which "
	    "PostgreSQL does not send, so their UPDATE and DELETE could not be "
	    "applied", "fix with ALTER TABLE ... REPLICA IDENTITY FULL, or "
	    "choose tables with --tables", errmsg);
}

/*
 * Tables that UPDATE/DELETE would fail on under FOR ALL TABLES.  Only
 * leaves count (plain tables and partitions): a change through a
 * partitioned parent is checked, and published, against the leaf it
 * lands in, so a parent needs no replica identity of its own.
 */
static int
check_replica_identity(PGconn *c, char **errmsg)
{
	int r = refuse_tables(c, "SELECT string_agg(format('%I.%I', n.nspname, "
	    "c.relname), ', ' ORDER BY 1), count(*) FROM pg_class c JOIN "
	    "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
	    "AND c.relpersistence = 'p' AND n.nspname NOT IN "
	    "('pg_catalog','information_schema') AND n.nspname !~ '^pg_' AND "
	    "(c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS "
	    "(SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND "
	    "i.indisprimary)) OR (c.relreplident = 'i' AND NOT EXISTS "
	    "(SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND "
	    "i.indisreplident)))",
	    "have no replica identity, so UPDATE and DELETE on them would fail "
	    "on the source", "fix with ALTER TABLE ... REPLICA IDENTITY FULL (or "
	    "add a primary key), or choose tables with --tables", errmsg);

	return r != 0 ? r : check_generated_identity(c, errmsg);
}

/* "s.t,s.t" -> "s"."t", "s"."t" with identifiers quoted. */
static char *
table_list_sql(PGconn *c, const char *tables)
{
	char *copy = strdup(tables), *save = NULL, *tok, *dot, *out = NULL;
	char *qs, *qt, *next;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		dot = strchr(tok, '.');
		qs = PQescapeIdentifier(c, dot ? tok : "public",
		    dot ? (size_t)(dot - tok) : 6);
		qt = PQescapeIdentifier(c, dot ? dot + 1 : tok, strlen(dot ? dot + 1 : tok));
		if (asprintf(&next, "%s%s%s.%s", out ? out : "", out ? ", " : "",
		    qs, qt) < 0)
			next = NULL;
		PQfreemem(qs);
		PQfreemem(qt);
		free(out);
		if ((out = next) == NULL)
			break;
	}
	free(copy);
	return out;
}

int
source_ensure_publication(PGconn *c, const char *pub, const char *tables,
    char **errmsg)
{
	const char *params[1] = { pub };
	PGresult *res = source_query(c, "SELECT 1 FROM pg_publication WHERE "
	    "pubname = $1", 1, params, errmsg);
	char *qpub, *list = NULL, *sql = NULL;
	int r = 0, exists;

	if (res == NULL)
		return LS_ERR_PG;
	exists = PQntuples(res) > 0;
	PQclear(res);
	if (exists)
		return 0;
	if (tables == NULL && (r = check_replica_identity(c, errmsg)) != 0)
		return r;
	qpub = PQescapeIdentifier(c, pub, strlen(pub));
	if (tables != NULL && (list = table_list_sql(c, tables)) == NULL)
		r = ls_errf(errmsg, LS_ERR_INVALID, "--tables %s: bad list", tables);
	else if (asprintf(&sql, "CREATE PUBLICATION %s FOR %s%s", qpub,
	    list ? "TABLE " : "ALL TABLES", list ? list : "") < 0)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else if ((res = source_query(c, sql, 0, NULL, errmsg)) == NULL)
		r = ls_errprefix(errmsg, LS_ERR_PG, "creating publication %s "
		    "(FOR ALL TABLES needs a superuser; or use --tables)", pub);
	PQclear(res);
	PQfreemem(qpub);
	free(list);
	free(sql);
	return r;
}

int
source_slot_state(PGconn *c, const char *slot, struct slot_state *st,
    char **errmsg)
{
	const char *params[1] = { slot };
	PGresult *res = source_query(c, "SELECT coalesce(active_pid, 0), "
	    "coalesce(wal_status = 'lost', false), slot_type = 'logical' AND "
	    "plugin = 'pgoutput', coalesce(confirmed_flush_lsn::text, ''), "
	    "current_setting('max_slot_wal_keep_size') "
	    "FROM pg_replication_slots WHERE slot_name = $1", 1, params, errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	memset(st, 0, sizeof(*st));
	if ((st->exists = PQntuples(res) > 0)) {
		st->active_pid = atoi(PQgetvalue(res, 0, 0));
		st->lost = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		st->logical_pgoutput = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		if (ls_lsn_parse(PQgetvalue(res, 0, 3), &st->confirmed_flush) != 0)
			st->confirmed_flush = 0;
		snprintf(st->keep_size, sizeof(st->keep_size), "%s",
		    PQgetvalue(res, 0, 4));
	}
	PQclear(res);
	return 0;
}

int
source_caveats(PGconn *c, struct source_caveats *cv, char **errmsg)
{
	PGresult *res = source_query(c, "SELECT (SELECT count(*) FROM "
	    "pg_largeobject_metadata), count(*), coalesce(string_agg("
	    "format('%I.%I', n.nspname, c.relname), ', ' ORDER BY 1), '') FROM "
	    "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	    "c.relkind IN ('r','p') AND c.relpersistence = 'u'", 0, NULL,
	    errmsg);

	memset(cv, 0, sizeof(*cv));
	if (res == NULL)
		return LS_ERR_PG;
	cv->large_objects = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	cv->unlogged = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	if (cv->unlogged > 0 &&
	    (cv->unlogged_names = strdup(PQgetvalue(res, 0, 2))) == NULL) {
		PQclear(res);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	PQclear(res);
	return 0;
}

int
source_drop_slot(PGconn *c, const char *slot, char **errmsg)
{
	const char *params[1] = { slot };
	PGresult *res = source_query(c, "SELECT pg_drop_replication_slot($1)", 1,
	    params, errmsg);

	if (res == NULL)
		return LS_ERR_PG;
	PQclear(res);
	return 0;
}

int
source_sample_sequences(PGconn *c, int timeout_ms,
    int (*fn)(void *arg, const struct ls_sequence *), void *arg, char **errmsg)
{
	PGresult *res = source_query_within(c, "SELECT schemaname, sequencename, "
	    "coalesce(last_value, start_value), last_value IS NOT NULL, "
	    "pg_current_wal_lsn()::text FROM pg_sequences WHERE schemaname NOT "
	    "IN ('pg_catalog', 'information_schema') ORDER BY 1, 2", 0, NULL,
	    timeout_ms, errmsg);
	struct ls_sequence s;
	int i, r = 0;

	if (res == NULL)
		return LS_ERR_PG;
	for (i = 0; i < PQntuples(res) && r == 0; i++) {
		s.schema = PQgetvalue(res, i, 0);
		s.name = PQgetvalue(res, i, 1);
		s.last_value = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		s.is_called = strcmp(PQgetvalue(res, i, 3), "t") == 0;
		s.lsn = 0;
		ls_lsn_parse(PQgetvalue(res, i, 4), &s.lsn);
		r = fn(arg, &s);
	}
	PQclear(res);
	return r;
}
