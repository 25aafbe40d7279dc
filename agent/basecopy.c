/*
 * basecopy.c: the base snapshot copy (see basecopy.h).
 *
 * A control connection imports the snapshot, resolves the tables, reads
 * their columns and sizes, and holds ACCESS SHARE locks on them until the
 * copy ends, so that no table is rewritten under the ctid ranges.  pg_dump
 * writes the schema sections on a thread beside the copy, run by pgtool.h
 * (connection parameters in PG* environment variables, never argv).
 * `jobs` threads, each with its own connection in the same snapshot, take
 * pieces from a shared queue (biggest tables first) and stream COPY text
 * output into blobs: a whole table cut into chunks as it streams, or (from
 * SPLIT_MIN_JOBS on) one ctid range per chunk.  Results land in per-table
 * slots, so the manifest lists each table's chunks in order whatever order
 * they finished in.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "basecopy.h"
#include "common/crashpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/util.h"
#include "dumpfilter.h"
#include "format/blob.h"
#include "pg/pgtool.h"
#include "repo/base.h"
#include "store/store.h"

#define SUB		"base"
#define IOBUF		(64 * 1024)
#define KEYLEN		512
#define MSGLEN		512

/*
 * A table is split into ctid ranges, each its own COPY, only from this many
 * workers on.  On PostgreSQL 15 a Tid Range Scan of a table larger than a
 * quarter of shared_buffers costs about twice a plain COPY's scan (measured
 * on pgbench_accounts, 5M rows: 1.6 s against 0.8 s, bench/results.md), so
 * two ranges on two workers take as long as one plain COPY and twice its
 * CPU.  Below it a table is one plain COPY, cut into chunks as it streams.
 */
#define SPLIT_MIN_JOBS	3

struct bc_table;

struct bc_chunk {
	struct bc_table	*t;
	unsigned	 n;		/* 0, 1, ... in ctid or stream order */
	uint8_t		 sha[32];
	uint64_t	 bytes;		/* raw COPY text */
	uint64_t	 rows;
};

struct bc_table {
	unsigned	 no;		/* its index in bc.tables: names chunks */
	char		*schema;
	char		*name;
	char		*qname;		/* "schema"."name", quoted */
	char		*cols;		/* quoted column list; NULL: none */
	char		**colnames;	/* the same columns, for the manifest */
	uint32_t	*coltypes;
	size_t		 ncols;
	uint64_t	 size;		/* heap + TOAST bytes */
	uint64_t	 pages;		/* heap pages */
	uint64_t	 per;		/* pages per chunk */
	unsigned	 nchunks;
	struct bc_chunk	*chunks;
	unsigned	 ndone;		/* these three under bc.lock */
	uint64_t	 rows;
	uint64_t	 bytes;
	/*
	 * A table copied whole (nchunks == 1): its one COPY is cut into
	 * these chunks, numbered 0, 1, ... in stream order, by the one
	 * worker that copies it.
	 */
	struct bc_chunk	*cuts;
	unsigned	 ncuts;
	unsigned	 cutcap;
};

struct bc {
	const struct basecopy_opts *o;
	struct bc_table	*tables;	/* by schema, name */
	size_t		 ntables;
	struct bc_chunk	**queue;	/* work order */
	size_t		 nqueue;
	pthread_mutex_t	 lock;		/* protects the fields below */
	size_t		 next;
	size_t		 ndone;
	size_t		 tables_done;
	uint64_t	 rows;
	uint64_t	 bytes;
	uint64_t	 size;		/* every table's size on disk */
	atomic_bool	 dump_failed;	/* the schema dump failed: stop copying */
	atomic_int	 spinners;	/* readers polling an empty socket now */
	int		 max_spinners;	/* how many may (copy_wait) */
};

/* The schema dump, on its own thread beside the copy workers. */
struct bc_dump {
	const struct basecopy_opts *o;
	PGconn		*ctl;
	struct base_manifest *m;
	struct bc	*bc;
	int		 r;
	char		*err;
};

struct oids {
	Oid		*v;
	size_t		 n;
	size_t		 cap;
};

static const char session_sql[] =
    "SET statement_timeout = 0; SET lock_timeout = 0; "
    "SET idle_in_transaction_session_timeout = 0; SET DateStyle = ISO; "
    "SET IntervalStyle = postgres; SET extra_float_digits = 3; "
    "SELECT pg_catalog.set_config('search_path', '', false)";

static const char pub_exists_sql[] =
    "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1";

static const char pub_tables_sql[] =
    "SELECT c.oid, c.relkind FROM pg_catalog.pg_publication_tables p "
    "JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname "
    "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid "
    "AND c.relname = p.tablename WHERE p.pubname = $1 "
    "AND p.schemaname <> 'logship' ORDER BY 1";	/* never logship's own */

static const char named_sql[] =
    "SELECT c.oid, c.relkind FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2";

static const char leaves_sql[] =
    "SELECT relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree($1) "
    "WHERE isleaf";

/* One row per column; tables without columns get one row, attname NULL. */
static const char details_sql[] =
    "SELECT c.oid, n.nspname, c.relname, pg_catalog.pg_table_size(c.oid), "
    "pg_catalog.pg_relation_size(c.oid) / "
    "pg_catalog.current_setting('block_size')::pg_catalog.int8, a.attname, "
    "a.atttypid "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
    "AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
    "WHERE c.oid = ANY ($1::pg_catalog.oid[]) AND c.relkind = 'r' "
    "ORDER BY n.nspname, c.relname, c.oid, a.attnum";

static int
nomem(char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
}

static int
interrupted(char **errmsg)
{
	return ls_errf(errmsg, LS_ERR_INVALID, "interrupted");
}

static int
stopping(const struct basecopy_opts *o)
{
	return o->stop != NULL && *o->stop != 0;
}

/* ---- PostgreSQL helpers ---- */

/* PostgreSQL's message: res's primary message, else conn's first line. */
static void
pg_message(PGconn *c, const PGresult *res, char *buf, size_t len)
{
	const char *m = NULL;

	if (res != NULL)
		m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (m == NULL)
		m = PQerrorMessage(c);
	snprintf(buf, len, "%.*s", (int)strcspn(m, "\n"), m);
	if (*buf == '\0')
		snprintf(buf, len, "no message from the server (connection lost?)");
}

/* Check res against want; on success hand it over (resp) or clear it. */
static int
pg_check(PGconn *c, PGresult *res, ExecStatusType want, PGresult **resp,
    const char *what, char **errmsg)
{
	char msg[MSGLEN];

	if (PQresultStatus(res) != want) {
		pg_message(c, res, msg, sizeof(msg));
		PQclear(res);
		return ls_errf(errmsg, LS_ERR_PG, "%s: %s", what, msg);
	}
	if (resp != NULL)
		*resp = res;
	else
		PQclear(res);
	return 0;
}

static int
pg_run(PGconn *c, const char *sql, ExecStatusType want, const char *what,
    char **errmsg)
{
	return pg_check(c, PQexec(c, sql), want, NULL, what, errmsg);
}

/* A parameterised query returning rows; *resp is the caller's to clear. */
static int
pg_query(PGconn *c, const char *sql, int nparams, const char *const *params,
    PGresult **resp, const char *what, char **errmsg)
{
	return pg_check(c, PQexecParams(c, sql, nparams, NULL, params, NULL,
	    NULL, 0), PGRES_TUPLES_OK, resp, what, errmsg);
}

static int
import_snapshot(PGconn *c, const char *snapshot, char **errmsg)
{
	char *lit = PQescapeLiteral(c, snapshot, strlen(snapshot)), *sql = NULL;
	int r;

	if (lit == NULL || asprintf(&sql, "SET TRANSACTION SNAPSHOT %s", lit) < 0) {
		sql = NULL;
		r = nomem(errmsg);
	} else
		r = pg_run(c, sql, PGRES_COMMAND_OK, "import snapshot (is the "
		    "exporting replication connection still open?)", errmsg);
	PQfreemem(lit);
	free(sql);
	return r;
}

/* A connection in a read-only REPEATABLE READ transaction on the snapshot. */
static int
snapshot_conn(const struct basecopy_opts *o, PGconn **out, char **errmsg)
{
	PGconn *c = PQconnectdb(o->conninfo);
	const char *enc;
	char msg[MSGLEN];
	int r;

	if (c == NULL)
		return nomem(errmsg);
	if (PQstatus(c) != CONNECTION_OK) {
		pg_message(c, NULL, msg, sizeof(msg));
		r = ls_errf(errmsg, LS_ERR_PG, "connect: %s", msg);
		goto out;
	}
	/* COPY text in the database's own encoding, byte for byte */
	if ((enc = PQparameterStatus(c, "server_encoding")) != NULL &&
	    PQsetClientEncoding(c, enc) != 0) {
		r = ls_errf(errmsg, LS_ERR_PG, "set client_encoding %s", enc);
		goto out;
	}
	if ((r = pg_run(c, session_sql, PGRES_TUPLES_OK, "session settings",
	    errmsg)) != 0 || (r = pg_run(c, "BEGIN ISOLATION LEVEL REPEATABLE "
	    "READ, READ ONLY", PGRES_COMMAND_OK, "begin", errmsg)) != 0 ||
	    (r = import_snapshot(c, o->snapshot, errmsg)) != 0)
		goto out;
	*out = c;
	c = NULL;
 out:
	PQfinish(c);
	return r;
}

/* ---- the table list ---- */

static int
oids_push(struct oids *ids, Oid id)
{
	Oid *v;

	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 64;
		if ((v = realloc(ids->v, ids->cap * sizeof(*v))) == NULL)
			return LS_ERR_NOMEM;
		ids->v = v;
	}
	ids->v[ids->n++] = id;
	return 0;
}

static int
oid_cmp(const void *a, const void *b)
{
	Oid x = *(const Oid *)a, y = *(const Oid *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates (a leaf listed itself and through its root). */
static void
oids_unique(struct oids *ids)
{
	size_t i, k = 0;

	qsort(ids->v, ids->n, sizeof(*ids->v), oid_cmp);
	for (i = 0; i < ids->n; i++)
		if (k == 0 || ids->v[k - 1] != ids->v[i])
			ids->v[k++] = ids->v[i];
	ids->n = k;
}

/* Add a relation: a table itself, a partitioned table its leaves. */
static int
add_relation(PGconn *c, const char *oid, char relkind, const char *label,
    struct oids *ids, char **errmsg)
{
	PGresult *res = NULL;
	int i, r = 0;

	if (relkind == 'r')
		return oids_push(ids, (Oid)strtoul(oid, NULL, 10)) ?
		    nomem(errmsg) : 0;
	if (relkind != 'p')
		return ls_errf(errmsg, LS_ERR_INVALID, "%s is not a table "
		    "(relkind '%c')", label, relkind);
	if ((r = pg_query(c, leaves_sql, 1, &oid, &res, label, errmsg)) != 0)
		return r;
	for (i = 0; r == 0 && i < PQntuples(res); i++)
		if (oids_push(ids, (Oid)strtoul(PQgetvalue(res, i, 0), NULL, 10)))
			r = nomem(errmsg);
	PQclear(res);
	return r;
}

static int
resolve_publication(PGconn *c, const char *pub, struct oids *ids,
    char **errmsg)
{
	PGresult *res = NULL;
	int i, r;

	if ((r = pg_query(c, pub_exists_sql, 1, &pub, &res, "publication",
	    errmsg)) != 0)
		return r;
	if (PQntuples(res) == 0)
		r = ls_errf(errmsg, LS_ERR_NOTFOUND, "publication %s does not "
		    "exist", pub);
	PQclear(res);
	res = NULL;
	if (r != 0 || (r = pg_query(c, pub_tables_sql, 1, &pub, &res,
	    "tables of publication", errmsg)) != 0)
		return r;
	for (i = 0; r == 0 && i < PQntuples(res); i++)
		r = add_relation(c, PQgetvalue(res, i, 0),
		    *PQgetvalue(res, i, 1), "publication table", ids, errmsg);
	PQclear(res);
	return r;
}

/* "schema.table": raw names split at the first '.'. */
static int
resolve_named(PGconn *c, const char *spec, struct oids *ids, char **errmsg)
{
	const char *dot = strchr(spec, '.'), *params[2];
	PGresult *res = NULL;
	char *schema;
	int r;

	if (dot == NULL || dot == spec || dot[1] == '\0')
		return ls_errf(errmsg, LS_ERR_INVALID, "table \"%s\": expected "
		    "schema.table", spec);
	if ((schema = strndup(spec, (size_t)(dot - spec))) == NULL)
		return nomem(errmsg);
	params[0] = schema;
	params[1] = dot + 1;
	if ((r = pg_query(c, named_sql, 2, params, &res, spec, errmsg)) == 0) {
		if (PQntuples(res) == 0)
			r = ls_errf(errmsg, LS_ERR_NOTFOUND, "table %s does not "
			    "exist (schema \"%s\", table \"%s\")", spec, schema,
			    dot + 1);
		else
			r = add_relation(c, PQgetvalue(res, 0, 0),
			    *PQgetvalue(res, 0, 1), spec, ids, errmsg);
	}
	PQclear(res);
	free(schema);
	return r;
}

static int
resolve_tables(const struct basecopy_opts *o, PGconn *c, struct oids *ids,
    char **errmsg)
{
	size_t i;
	int r = 0;

	if (o->tables == NULL)
		r = resolve_publication(c, o->publication, ids, errmsg);
	for (i = 0; r == 0 && o->tables != NULL && i < o->ntables; i++)
		r = resolve_named(c, o->tables[i], ids, errmsg);
	if (r == 0)
		oids_unique(ids);
	return r;
}

/* *dst = *dst + sep + the quoted identifier s (*dst may be NULL). */
static int
append_ident(PGconn *c, char **dst, const char *sep, const char *s)
{
	char *q = PQescapeIdentifier(c, s, strlen(s)), *n = NULL;

	if (q == NULL || asprintf(&n, "%s%s%s", *dst ? *dst : "",
	    *dst ? sep : "", q) < 0) {
		PQfreemem(q);
		return LS_ERR_NOMEM;
	}
	PQfreemem(q);
	free(*dst);
	*dst = n;
	return 0;
}

/* Remember a column's name and type for the manifest. */
static int
add_column(struct bc_table *t, const char *name, const char *type)
{
	char **n = realloc(t->colnames, (t->ncols + 1) * sizeof(*n));
	uint32_t *ty;

	if (n == NULL)
		return LS_ERR_NOMEM;
	t->colnames = n;
	if ((ty = realloc(t->coltypes, (t->ncols + 1) * sizeof(*ty))) == NULL)
		return LS_ERR_NOMEM;
	t->coltypes = ty;
	if ((t->colnames[t->ncols] = strdup(name)) == NULL)
		return LS_ERR_NOMEM;
	t->coltypes[t->ncols++] = (uint32_t)strtoul(type, NULL, 10);
	return 0;
}

/* A table from row i of details_sql. */
static int
table_init(PGconn *c, const PGresult *res, int i, struct bc_table *t)
{
	if ((t->schema = strdup(PQgetvalue(res, i, 1))) == NULL ||
	    (t->name = strdup(PQgetvalue(res, i, 2))) == NULL ||
	    append_ident(c, &t->qname, ".", t->schema) != 0 ||
	    append_ident(c, &t->qname, ".", t->name) != 0)
		return LS_ERR_NOMEM;
	t->size = strtoull(PQgetvalue(res, i, 3), NULL, 10);
	t->pages = strtoull(PQgetvalue(res, i, 4), NULL, 10);
	return 0;
}

/* Tables' names, sizes and non-generated, non-dropped columns. */
static int
load_tables(struct bc *bc, PGconn *c, const struct oids *ids, char **errmsg)
{
	PGresult *res = NULL;
	FILE *f;
	char *arr = NULL;
	size_t len, i;
	int row, r;

	if ((f = open_memstream(&arr, &len)) == NULL)
		return nomem(errmsg);
	for (i = 0; i < ids->n; i++)
		fprintf(f, "%s%u", i ? "," : "{", ids->v[i]);
	fprintf(f, "%s", ids->n ? "}" : "{}");
	fclose(f);
	r = pg_query(c, details_sql, 1, (const char *const *)&arr, &res,
	    "table details", errmsg);
	if (r == 0 && (bc->tables = calloc(ids->n + 1, sizeof(*bc->tables))) == NULL)
		r = nomem(errmsg);
	for (row = 0; r == 0 && row < PQntuples(res); row++) {
		if ((row == 0 || strcmp(PQgetvalue(res, row, 0),
		    PQgetvalue(res, row - 1, 0)) != 0) &&
		    table_init(c, res, row, &bc->tables[bc->ntables++]) != 0)
			r = nomem(errmsg);
		if (r == 0)
			bc->tables[bc->ntables - 1].no = (unsigned)bc->ntables - 1;
		if (r == 0 && !PQgetisnull(res, row, 5) && (append_ident(c,
		    &bc->tables[bc->ntables - 1].cols, ",",
		    PQgetvalue(res, row, 5)) != 0 || add_column(
		    &bc->tables[bc->ntables - 1], PQgetvalue(res, row, 5),
		    PQgetvalue(res, row, 6)) != 0))
			r = nomem(errmsg);
	}
	PQclear(res);
	free(arr);
	return r;
}

/* Keep every table from being rewritten or dropped until the copy ends. */
static int
lock_tables(struct bc *bc, PGconn *c, char **errmsg)
{
	char *sql = NULL;
	size_t i;
	int r = 0;

	for (i = 0; r == 0 && i < bc->ntables; i++) {
		if (asprintf(&sql, "LOCK TABLE ONLY %s IN ACCESS SHARE MODE",
		    bc->tables[i].qname) < 0)
			return nomem(errmsg);
		r = pg_run(c, sql, PGRES_COMMAND_OK, "lock", errmsg);
		if (r != 0)
			ls_errprefix(errmsg, r, "table %s.%s",
			    bc->tables[i].schema, bc->tables[i].name);
		free(sql);
	}
	return r;
}

/* ---- planning ---- */

static uint64_t
chunk_limit(const struct basecopy_opts *o)
{
	return o->chunk_bytes ? o->chunk_bytes : BASECOPY_CHUNK_BYTES;
}

/*
 * Split a table into page ranges of about chunk_bytes each, from
 * SPLIT_MIN_JOBS workers on; else it is one range, the whole table.
 */
static int
plan_table(struct bc_table *t, uint64_t chunk_bytes, int jobs)
{
	uint64_t n = (t->size + chunk_bytes - 1) / chunk_bytes;
	unsigned i;

	if (jobs < SPLIT_MIN_JOBS)
		n = 1;
	if (n > t->pages)
		n = t->pages;
	if (n <= 1) {
		n = 1;
		t->per = t->pages;
	} else {
		t->per = (t->pages + n - 1) / n;
		n = (t->pages + t->per - 1) / t->per;
	}
	t->nchunks = (unsigned)n;
	if ((t->chunks = calloc(n, sizeof(*t->chunks))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < t->nchunks; i++) {
		t->chunks[i].t = t;
		t->chunks[i].n = i;
	}
	return 0;
}

static int
bigger_first(const void *a, const void *b)
{
	const struct bc_table *x = *(struct bc_table *const *)a;
	const struct bc_table *y = *(struct bc_table *const *)b;

	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Chunk every table; queue the chunks, biggest tables first. */
static int
plan(struct bc *bc, char **errmsg)
{
	struct bc_table **order;
	size_t i, n = 0;
	unsigned k;

	for (i = 0; i < bc->ntables; i++) {
		if (plan_table(&bc->tables[i], chunk_limit(bc->o),
		    bc->o->jobs) != 0)
			return nomem(errmsg);
		n += bc->tables[i].nchunks;
	}
	if ((order = calloc(bc->ntables + 1, sizeof(*order))) == NULL ||
	    (bc->queue = calloc(n + 1, sizeof(*bc->queue))) == NULL) {
		free(order);
		return nomem(errmsg);
	}
	for (i = 0; i < bc->ntables; i++)
		order[i] = &bc->tables[i];
	qsort(order, bc->ntables, sizeof(*order), bigger_first);
	for (i = 0; i < bc->ntables; i++)
		for (k = 0; k < order[i]->nchunks; k++)
			bc->queue[bc->nqueue++] = &order[i]->chunks[k];
	free(order);
	return 0;
}

/* ---- objects ---- */


/* Finish b into a temp file and store it as key; sha is its trailer. */
static int
put_blob(const struct basecopy_opts *o, struct blob_writer *b,
    const char *key, uint8_t sha[32], char **errmsg)
{
	int fd, r;

	if ((fd = ls_temp_fd(o->spool_dir, errmsg)) < 0)
		return fd;
	if ((r = blob_writer_finish(b, fd, sha, errmsg)) == 0)
		r = store_put(o->store, key, fd, errmsg);
	close(fd);
	return r;
}

/* ---- the schema, from pg_dump ---- */

/* Copy pg_dump's output into the blob, less logship's event triggers. */
static int
read_dump(const struct basecopy_opts *o, int fd, struct blob_writer *b,
    char **errmsg)
{
	struct dumpfilter f;
	char buf[IOBUF];
	ssize_t n;
	int r;

	dumpfilter_init(&f, b);
	for (;;) {
		if (stopping(o))
			return interrupted(errmsg);
		if ((n = read(fd, buf, sizeof(buf))) == 0)
			return dumpfilter_finish(&f, errmsg);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ls_errf(errmsg, LS_ERR_IO, "read from pg_dump: "
			    "%s", strerror(errno));
		if ((r = dumpfilter_write(&f, buf, (size_t)n, errmsg)) != 0)
			return r;
	}
}

/*
 * Run pg_dump with args (NULL-terminated, at most 9) into b; its warning,
 * if any, is logged.  logship's own schema is never dumped.
 */
static int
run_dump(const struct basecopy_opts *o, const char *what,
    const char *const *args, struct blob_writer *b, char **errmsg)
{
	struct pgtool *t = NULL;
	char *snap = NULL, *note = NULL;
	const char *argv[12];
	size_t n = 0;
	int r;

	if (asprintf(&snap, "--snapshot=%s", o->snapshot) < 0)
		return nomem(errmsg);
	while (*args != NULL && n < 9)
		argv[n++] = *args++;
	argv[n++] = snap;
	argv[n++] = "--format=plain";
	argv[n++] = "--exclude-schema=logship";
	argv[n] = NULL;
	if ((r = pgtool_spawn("pg_dump", o->pg_dump, o->conninfo, argv,
	    PGTOOL_DEVNULL, PGTOOL_PIPE, &t, errmsg)) != 0)
		goto out;
	if ((r = read_dump(o, pgtool_stdout(t), b, errmsg)) != 0)
		pgtool_kill(t);
	else if ((r = pgtool_wait(t, what, &note, errmsg)) == 0 && note)
		log_warn(SUB, "%s: %s", what, note);
 out:
	free(note);
	free(snap);
	return r;
}

/*
 * Dump into <gen>/<base>/<name>; record it as manifest section msection
 * (count: how many objects it holds, or 0).
 */
static int
dump_section(const struct basecopy_opts *o, const char *name,
    const char *msection, const char *const *args, uint64_t count,
    struct base_manifest *m, char **errmsg)
{
	struct blob_writer *b = NULL;
	char key[KEYLEN], what[80];
	uint8_t sha[32];
	int r;

	snprintf(key, sizeof(key), "%s/%s/%s", o->generation,
	    o->base != NULL ? o->base : BASE_FIRST, name);
	snprintf(what, sizeof(what), "pg_dump %s", count > 0 ? "--blobs" :
	    args[1] != NULL ? args[1] : args[0]);
	if ((r = blob_writer_new("schema", o->key, o->spool_dir, o->comp, &b,
	    errmsg)) == 0 && (r = run_dump(o, what, args, b, errmsg)) == 0 &&
	    (r = put_blob(o, b, key, sha, errmsg)) == 0 &&
	    base_manifest_set_section(m, msection, key, sha,
	    blob_writer_raw_len(b), count) != 0)
		r = nomem(errmsg);
	if (r == 0)
		log_info(SUB, "%s dumped bytes=%" PRIu64, name,
		    blob_writer_raw_len(b));
	blob_writer_free(b);
	return r;
}

/* How many large objects the snapshot holds. */
static int
count_large_objects(PGconn *c, uint64_t *n, char **errmsg)
{
	PGresult *res = NULL;
	int r;

	if ((r = pg_query(c, "SELECT count(*) FROM "
	    "pg_catalog.pg_largeobject_metadata", 0, NULL, &res,
	    "counting large objects", errmsg)) != 0)
		return r;
	*n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/*
 * pg_dump's schema: pre-data; post-data with the REFRESH of every
 * populated materialized view (in dependency order), so no --schema-only
 * there; and the large objects, which logical decoding never streams.
 */
static int
dump_schema(const struct basecopy_opts *o, PGconn *ctl,
    struct base_manifest *m, char **errmsg)
{
	static const char *const pre[] = { "--schema-only",
	    "--section=pre-data", NULL };
	static const char *const post[] = { "--section=post-data", NULL };
	static const char *const lobs[] = { "--data-only", "--blobs",
	    "--exclude-table-data=*.*", NULL };
	uint64_t nlobs = 0;
	int r;

	if ((r = dump_section(o, "pre-data", "pre_data", pre, 0, m,
	    errmsg)) != 0 ||
	    (r = dump_section(o, "post-data", "post_data", post, 0, m,
	    errmsg)) != 0 ||
	    (r = count_large_objects(ctl, &nlobs, errmsg)) != 0)
		return r;
	if (nlobs == 0)
		return 0;
	log_warn(SUB, "%" PRIu64 " large object(s) are copied with this base "
	    "snapshot; later changes to large objects are not streamed (logical "
	    "decoding does not carry them)", nlobs);
	return dump_section(o, "large-objects", "large_objects", lobs, nlobs, m,
	    errmsg);
}

/* ---- the rows, from COPY ---- */

/* The COPY statement of chunk k: plain for one chunk, else a ctid range. */
static char *
chunk_sql(const struct bc_chunk *k)
{
	const struct bc_table *t = k->t;
	char *sql = NULL, lo[64] = "", hi[64] = "";
	int n;

	if (t->nchunks == 1)
		n = asprintf(&sql, "COPY %s%s%s%s TO STDOUT", t->qname,
		    t->cols ? " (" : "", t->cols ? t->cols : "",
		    t->cols ? ")" : "");
	else {
		if (k->n > 0)
			snprintf(lo, sizeof(lo), "ctid >= '(%" PRIu64 ",0)'"
			    "::pg_catalog.tid", k->n * t->per);
		if (k->n + 1 < t->nchunks)
			snprintf(hi, sizeof(hi), "ctid < '(%" PRIu64 ",0)'"
			    "::pg_catalog.tid", (k->n + 1) * t->per);
		n = asprintf(&sql, "COPY (SELECT %s FROM ONLY %s WHERE %s%s%s) "
		    "TO STDOUT", t->cols ? t->cols : "", t->qname, lo,
		    *lo && *hi ? " AND " : "", hi);
	}
	return n < 0 ? NULL : sql;
}

static uint64_t
count_rows(const char *p, size_t len)
{
	const char *end = p + len;
	uint64_t n = 0;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* Where copy_out hands each row: 0, or an LS_ERR_* with *errmsg. */
typedef int row_fn(void *arg, const char *row, size_t len, char **errmsg);

/*
 * Wait for more of a COPY's output.  A reader that keeps up with the
 * source finds the socket empty after each 8 kB piece, and if it then
 * sleeps, every piece the backend sends must wake it.  Those wake-ups cost
 * the sending backend, the bound of a base copy, about an eighth of its
 * CPU (pgbench scale 50 on 2 cores: 2.2 s for the COPY against 1.95 s when
 * the reader does not sleep; bench/results.md, "Base: a reader that does
 * not sleep").  So a reader first polls the empty socket for up to
 * BASE_SPIN_US, within which the next piece nearly always arrives, and only
 * then sleeps.  At most bc->max_spinners readers poll at once (none on one
 * core), so that on a small machine they leave a core to the source's
 * backends.
 * Not over TLS or GSSAPI encryption (copy_out).  Returns 0, or an
 * LS_ERR_* with *errmsg (a lost connection: the connection's error).
 */
#define BASE_SPIN_US	50

static int
copy_wait(struct bc *bc, PGconn *c, char **errmsg)
{
	struct pollfd p = { PQsocket(c), POLLIN, 0 };
	int64_t t0;
	int n = 0;

	if (p.fd < 0)	/* the connection is lost */
		return pg_check(c, NULL, PGRES_COMMAND_OK, NULL, "COPY",
		    errmsg);
	if (atomic_fetch_add(&bc->spinners, 1) < bc->max_spinners) {
		t0 = ls_mono_us();
		while ((n = poll(&p, 1, 0)) == 0 &&
		    ls_mono_us() - t0 < BASE_SPIN_US)
			;
	}
	atomic_fetch_sub(&bc->spinners, 1);
	if (n == 0 && poll(&p, 1, -1) < 0 && errno != EINTR)
		return ls_errf(errmsg, LS_ERR_PG, "COPY: waiting for the "
		    "source: poll: %s", strerror(errno));
	if (PQconsumeInput(c) != 1)	/* the connection is lost */
		return pg_check(c, NULL, PGRES_COMMAND_OK, NULL, "COPY",
		    errmsg);
	return 0;
}

/*
 * One core is left to the source's backends when they run here; on one
 * core a polling reader would only keep the backend from sending.
 */
static int
base_max_spinners(void)
{
	cpu_set_t set;
	long n;

	/* the cores this process may run on (taskset, a cgroup's cpuset) */
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 1 ? (int)n - 1 : 0;
}

/* Run a COPY ... TO STDOUT and hand each of its rows to fn. */
static int
copy_out(struct bc *bc, PGconn *c, const char *sql, row_fn *fn, void *arg,
    char **errmsg)
{
	PGresult *res;
	char *row;
	int n, r, async;

	if ((r = pg_check(c, PQexec(c, sql), PGRES_COPY_OUT, NULL, "COPY",
	    errmsg)) != 0)
		return r;
	/*
	 * Over TLS, OpenSSL may hold bytes that poll() does not see (and GSSAPI
	 * encryption decrypted ones): libpq's own wait (blocking
	 * PQgetCopyData) knows to look there first.
	 */
	async = !PQsslInUse(c) && !PQgssEncInUse(c);
	while ((n = PQgetCopyData(c, &row, async)) >= 0) {
		if (n == 0) {
			if ((r = copy_wait(bc, c, errmsg)) != 0)
				return r;	/* the connection is dropped */
			continue;
		}
		r = fn(arg, row, (size_t)n, errmsg);
		PQfreemem(row);
		if (r != 0)
			return r;	/* the connection is dropped */
	}
	if (n == -2)
		return pg_check(c, NULL, PGRES_COMMAND_OK, NULL, "COPY", errmsg);
	r = pg_check(c, PQgetResult(c), PGRES_COMMAND_OK, NULL, "COPY", errmsg);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	return r;
}

/* Another worker or the schema dump failed: take no more work. */
static bool
failed_elsewhere(struct bc *bc, const struct pool *pool)
{
	return pool_stopping(pool) || atomic_load(&bc->dump_failed);
}

/*
 * Count chunk k of t as stored.  end: the piece of work that wrote it (a
 * ctid range, or the whole table's COPY) is finished.
 */
static void
chunk_done(struct bc *bc, struct bc_table *t, const struct bc_chunk *k,
    bool end)
{
	size_t done;
	bool last = false;

	pthread_mutex_lock(&bc->lock);
	t->rows += k->rows;
	t->bytes += k->bytes;
	if (end)
		last = ++t->ndone == t->nchunks;
	bc->rows += k->rows;
	bc->bytes += k->bytes;
	done = ++bc->ndone;
	if (last)
		bc->tables_done++;
	if (bc->o->progress != NULL)
		bc->o->progress(bc->o->progress_arg, bc->tables_done, bc->ntables,
		    bc->bytes, bc->size);
	pthread_mutex_unlock(&bc->lock);
	crashpoint("agent-base-chunk");
	log_info(SUB, "copied %s.%s chunk %u rows=%" PRIu64 " bytes=%" PRIu64
	    " (%zu chunks stored)", t->schema, t->name, k->n + 1, k->rows,
	    k->bytes, done);
	if (last && (t->nchunks > 1 || t->ncuts > 1))
		log_info(SUB, "copied table %s.%s chunks=%u rows=%" PRIu64
		    " bytes=%" PRIu64, t->schema, t->name, t->nchunks > 1 ?
		    t->nchunks : t->ncuts, t->rows, t->bytes);
}

/* ---- a ctid range: one COPY, one chunk ---- */

struct sink {
	struct blob_writer *b;
	uint64_t	*rows;
};

static int
sink_row(void *arg, const char *row, size_t len, char **errmsg)
{
	struct sink *x = arg;

	*x->rows += count_rows(row, len);
	return blob_writer_write(x->b, row, len, errmsg);
}

static int
copy_range(struct bc *bc, PGconn *c, struct bc_chunk *k, char **errmsg)
{
	const struct basecopy_opts *o = bc->o;
	struct blob_writer *b = NULL;
	struct sink x = { NULL, &k->rows };
	char key[KEYLEN], *sql;
	int r;

	base_chunk_key(o->generation, o->base, k->t->no, k->n, key, sizeof(key));
	if ((sql = chunk_sql(k)) == NULL)
		r = nomem(errmsg);
	else if ((r = blob_writer_new("copy", o->key, o->spool_dir, o->comp, &b,
	    errmsg)) == 0 && (x.b = b, r = copy_out(bc, c, sql, sink_row, &x,
	    errmsg)) == 0 && (r = put_blob(o, b, key, k->sha, errmsg)) == 0)
		k->bytes = blob_writer_raw_len(b);
	if (r != 0)
		ls_errprefix(errmsg, r, "table %s.%s chunk %u/%u", k->t->schema,
		    k->t->name, k->n + 1, k->t->nchunks);
	else
		chunk_done(bc, k->t, k, true);
	blob_writer_free(b);
	free(sql);
	return r;
}

/* ---- a whole table: one COPY, cut into chunks as it streams ---- */

struct cutter {
	const struct pool *pool;
	struct bc	*bc;
	struct bc_table	*t;
	struct blob_writer *b;		/* the chunk being written, or NULL */
	struct bc_chunk	 k;		/* its figures */
	uint64_t	 limit;		/* raw bytes after which it is cut */
};

static int
cut_open(struct cutter *x, char **errmsg)
{
	const struct basecopy_opts *o = x->bc->o;

	x->k = (struct bc_chunk){ .t = x->t, .n = x->t->ncuts };
	return blob_writer_new("copy", o->key, o->spool_dir, o->comp, &x->b,
	    errmsg);
}

/* Store the chunk being written and count it; end: the table's last. */
static int
cut_close(struct cutter *x, bool end, char **errmsg)
{
	const struct basecopy_opts *o = x->bc->o;
	struct bc_table *t = x->t;
	struct bc_chunk *v;
	char key[KEYLEN];
	unsigned cap;
	int r;

	if (t->ncuts == t->cutcap) {
		cap = t->cutcap > 0 ? 2 * t->cutcap : 8;
		if ((v = realloc(t->cuts, cap * sizeof(*v))) == NULL)
			return nomem(errmsg);
		t->cuts = v;
		t->cutcap = cap;
	}
	base_chunk_key(o->generation, o->base, t->no, x->k.n, key, sizeof(key));
	if ((r = put_blob(o, x->b, key, x->k.sha, errmsg)) != 0)
		return r;
	x->k.bytes = blob_writer_raw_len(x->b);
	blob_writer_free(x->b);
	x->b = NULL;
	t->cuts[t->ncuts++] = x->k;
	chunk_done(x->bc, t, &x->k, end);
	return 0;
}

/* A row: into the open chunk; a full one is cut when the next row comes. */
static int
cut_row(void *arg, const char *row, size_t len, char **errmsg)
{
	struct cutter *x = arg;
	int r;

	/* a whole table can be long: stop as promptly as between chunks */
	if (stopping(x->bc->o))
		return interrupted(errmsg);
	if (failed_elsewhere(x->bc, x->pool))
		return ls_errf(errmsg, LS_ERR_INTERNAL, "stopped: another part "
		    "of the copy failed");
	if (x->b != NULL && blob_writer_raw_len(x->b) >= x->limit &&
	    (r = cut_close(x, false, errmsg)) != 0)
		return r;
	if (x->b == NULL && (r = cut_open(x, errmsg)) != 0)
		return r;
	x->k.rows += count_rows(row, len);
	return blob_writer_write(x->b, row, len, errmsg);
}

/* The whole table; an empty one still gets its one (empty) chunk. */
static int
copy_table(const struct pool *pool, struct bc *bc, PGconn *c,
    struct bc_table *t, char **errmsg)
{
	struct cutter x = { pool, bc, t, NULL, { 0 }, chunk_limit(bc->o) };
	char *sql;
	int r;

	if ((sql = chunk_sql(&t->chunks[0])) == NULL)
		r = nomem(errmsg);
	else if ((r = copy_out(bc, c, sql, cut_row, &x, errmsg)) == 0 &&
	    (x.b != NULL || (r = cut_open(&x, errmsg)) == 0))
		r = cut_close(&x, true, errmsg);
	if (r != 0)
		ls_errprefix(errmsg, r, "table %s.%s", t->schema, t->name);
	blob_writer_free(x.b);
	free(sql);
	return r;
}

/* ---- workers ---- */

/* The next chunk to copy, or NULL when done, failed or stopping. */
static struct bc_chunk *
next_chunk(struct bc *bc, const struct pool *pool)
{
	struct bc_chunk *k = NULL;

	if (stopping(bc->o) || failed_elsewhere(bc, pool))
		return NULL;
	pthread_mutex_lock(&bc->lock);
	if (bc->next < bc->nqueue)
		k = bc->queue[bc->next++];
	pthread_mutex_unlock(&bc->lock);
	return k;
}

/* A pool worker: copy tables and ranges on one snapshot connection. */
static int
worker(const struct pool *pool, void *arg, char **errmsg)
{
	struct bc *bc = arg;
	struct bc_chunk *k;
	PGconn *c = NULL;
	int r;

	if ((r = snapshot_conn(bc->o, &c, errmsg)) != 0)
		return r;
	while (r == 0 && (k = next_chunk(bc, pool)) != NULL)
		r = k->t->nchunks == 1 ? copy_table(pool, bc, c, k->t, errmsg) :
		    copy_range(bc, c, k, errmsg);
	if (r == 0 && stopping(bc->o))
		r = interrupted(errmsg);
	PQfinish(c);
	return r;
}

/* Up to --jobs workers, no more than there are chunks. */
static int
run_workers(struct bc *bc, char **errmsg)
{
	size_t n = (size_t)bc->o->jobs;

	if (bc->nqueue == 0)
		return 0;
	if (n > bc->nqueue)
		n = bc->nqueue;
	return pool_run((int)n, worker, bc, errmsg);
}

static void *
dump_main(void *arg)
{
	struct bc_dump *d = arg;

	if ((d->r = dump_schema(d->o, d->ctl, d->m, &d->err)) != 0)
		atomic_store(&d->bc->dump_failed, true);
	return NULL;
}

/*
 * The schema dumps (pg_dump, a few tenths of a second of catalog reads
 * on the source) run beside the copy rather than before it: the snapshot
 * and the control connection's locks hold for both.  A failed dump stops
 * the workers at their next row or chunk; its error comes first, as it
 * did when the dump ran first.  A thread that cannot start dumps here,
 * before the copy.
 */
static int
copy_and_dump(struct bc *bc, PGconn *ctl, struct base_manifest *m,
    char **errmsg)
{
	struct bc_dump d = { bc->o, ctl, m, bc, 0, NULL };
	pthread_t t;
	int r;

	if (pthread_create(&t, NULL, dump_main, &d) != 0) {
		if ((r = dump_schema(bc->o, ctl, m, errmsg)) != 0)
			return r;
		return run_workers(bc, errmsg);
	}
	r = run_workers(bc, errmsg);
	pthread_join(t, NULL);
	if (d.r != 0) {
		if (r != 0 && errmsg != NULL) {
			free(*errmsg);
			*errmsg = NULL;
		}
		if (errmsg != NULL)
			*errmsg = d.err;
		else
			free(d.err);
		return d.r;
	}
	free(d.err);
	return r;
}

/* ---- the whole copy ---- */

static int
fill_manifest(const struct bc *bc, struct base_manifest *m, char **errmsg)
{
	const struct bc_table *t;
	const struct bc_chunk *v;
	struct base_chunk c;
	char key[KEYLEN];
	size_t i;
	unsigned k, n;

	for (i = 0; i < bc->ntables; i++) {
		t = &bc->tables[i];
		if (base_manifest_set_columns(m, t->schema, t->name,
		    (const char *const *)t->colnames, t->coltypes, t->ncols) != 0)
			return nomem(errmsg);
		/* a whole table's chunks are its cuts; a split one's, its ranges */
		v = t->nchunks == 1 ? t->cuts : t->chunks;
		n = t->nchunks == 1 ? t->ncuts : t->nchunks;
		for (k = 0; k < n; k++) {
			base_chunk_key(bc->o->generation, bc->o->base, t->no, k, key,
			    sizeof(key));
			c = (struct base_chunk){ key, { 0 }, v[k].bytes, v[k].rows };
			memcpy(c.sha256, v[k].sha, 32);
			if (base_manifest_add_chunk(m, t->schema, t->name, &c))
				return nomem(errmsg);
		}
	}
	return 0;
}

static int
check_opts(const struct basecopy_opts *o, char **errmsg)
{
	if (o->conninfo == NULL || o->snapshot == NULL || o->store == NULL ||
	    o->generation == NULL || o->jobs < 1 ||
	    (o->tables == NULL && o->publication == NULL))
		return ls_errf(errmsg, LS_ERR_INVALID, "base copy: conninfo, "
		    "snapshot, store, generation, jobs >= 1 and a table list "
		    "or a publication are required");
	return 0;
}

/* Find, size, lock and chunk the tables under the control connection. */
static int
prepare(struct bc *bc, PGconn *ctl, char **errmsg)
{
	struct oids ids = { 0 };
	uint64_t total = 0;
	size_t i;
	int r;

	if ((r = resolve_tables(bc->o, ctl, &ids, errmsg)) == 0 &&
	    (r = load_tables(bc, ctl, &ids, errmsg)) == 0 &&
	    (r = lock_tables(bc, ctl, errmsg)) == 0)
		r = plan(bc, errmsg);
	free(ids.v);
	if (r != 0)
		return r;
	for (i = 0; i < bc->ntables; i++) {
		total += bc->tables[i].size;
		if (bc->tables[i].nchunks == 0)
			bc->tables_done++;
	}
	bc->size = total;
	if (bc->o->progress != NULL)
		bc->o->progress(bc->o->progress_arg, bc->tables_done, bc->ntables,
		    0, total);
	if (bc->ntables == 0)
		log_warn(SUB, "no tables to copy");
	log_info(SUB, "copying %zu tables in %zu pieces, about %.1f MB, with "
	    "%d workers", bc->ntables, bc->nqueue, (double)total / 1e6,
	    bc->o->jobs);
	return 0;
}

static void
summary(const struct bc *bc, int64_t start)
{
	double secs = (double)(ls_now_us() - start) / 1e6;

	log_info(SUB, "base copy done: tables=%zu chunks=%zu rows=%" PRIu64
	    " bytes=%" PRIu64 " seconds=%.2f rate=%.1f MB/s", bc->ntables,
	    bc->ndone, bc->rows, bc->bytes, secs,
	    secs > 0 ? (double)bc->bytes / 1e6 / secs : 0.0);
}

static void
bc_free(struct bc *bc)
{
	size_t i, k;

	for (i = 0; bc->tables != NULL && i < bc->ntables; i++) {
		for (k = 0; k < bc->tables[i].ncols; k++)
			free(bc->tables[i].colnames[k]);
		free(bc->tables[i].colnames);
		free(bc->tables[i].coltypes);
		free(bc->tables[i].schema);
		free(bc->tables[i].name);
		free(bc->tables[i].qname);
		free(bc->tables[i].cols);
		free(bc->tables[i].chunks);
		free(bc->tables[i].cuts);
	}
	free(bc->tables);
	free(bc->queue);
	pthread_mutex_destroy(&bc->lock);
}

int
basecopy_run(const struct basecopy_opts *o, struct base_manifest *m,
    char **errmsg)
{
	struct bc bc = { .o = o };
	int64_t start;
	PGconn *ctl = NULL;
	int r;

	if ((r = check_opts(o, errmsg)) != 0)
		return r;
	pthread_mutex_init(&bc.lock, NULL);
	bc.max_spinners = base_max_spinners();
	if ((r = snapshot_conn(o, &ctl, errmsg)) != 0 ||
	    (r = prepare(&bc, ctl, errmsg)) != 0)
		goto out;
	if (o->publication != NULL &&
	    base_manifest_set_publication(m, o->publication) != 0) {
		r = nomem(errmsg);
		goto out;
	}
	if (stopping(o)) {
		r = interrupted(errmsg);
		goto out;
	}
	start = ls_now_us();
	if ((r = copy_and_dump(&bc, ctl, m, errmsg)) != 0 ||
	    (r = fill_manifest(&bc, m, errmsg)) != 0)
		goto out;
	summary(&bc, start);
 out:
	if (r != 0 && stopping(o))
		r = ls_errf(errmsg, LS_ERR_INVALID, "base copy interrupted");
	else if (r != 0)
		ls_errprefix(errmsg, r, "base copy");
	PQfinish(ctl);
	bc_free(&bc);
	return r;
}
