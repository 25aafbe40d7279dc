/*
 * basecopy.h: the base snapshot of a generation, copied once under the
 * snapshot exported by CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT.
 *
 * The schema comes from pg_dump (pre-data and post-data sections, plain
 * SQL, owners and privileges kept), the rows from COPY ... TO STDOUT in
 * text format, large tables split into ctid page ranges.  Every object is
 * a blob (blob.h) put into the store under <gen>/<base>/; the manifest is
 * filled in but not written.
 */
#ifndef LS_BASECOPY_H
#define LS_BASECOPY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct base_manifest;

#define BASECOPY_CHUNK_BYTES	(64ull << 20)

struct basecopy_opts {
	/* Regular (non-replication) libpq conninfo of the source. */
	const char		*conninfo;
	/* Name of the exported snapshot; its exporter must stay open. */
	const char		*snapshot;
	/*
	 * pg_dump to run; NULL: $LOGSHIP_PG_DUMP, else "pg_dump" in PATH,
	 * else in `pg_config --bindir` (pgtool_spawn).
	 */
	const char		*pg_dump;
	/*
	 * Tables to copy as "schema.table" (raw names, split at the first
	 * '.', no quoting), or NULL for the tables of publication.  A
	 * partitioned table stands for its leaf partitions.
	 */
	const char *const	*tables;
	size_t			 ntables;
	const char		*publication;
	int			 jobs;		/* worker connections, >= 1 */
	/*
	 * 0: BASECOPY_CHUNK_BYTES.  Under 3 jobs: the COPY text a chunk
	 * holds before it is cut (at the next row); from 3 jobs on: the
	 * on-disk size of a table's ctid ranges.
	 */
	uint64_t		 chunk_bytes;
	struct store		*store;
	const uint8_t		*key;		/* 32 bytes or NULL */
	const struct compression *comp;		/* NULL: zlib */
	const char		*generation;
	/* The base's directory under <gen>/: NULL for BASE_FIRST (base.h). */
	const char		*base;
	const char		*spool_dir;	/* NULL: $TMPDIR or /tmp */
	volatile sig_atomic_t	*stop;		/* may be NULL */
	/*
	 * Called (from any worker thread) after each chunk, and once before
	 * the first: tables fully copied of all, COPY bytes copied, and the
	 * tables' size on disk (heap + TOAST, an estimate of the total).
	 * NULL: none.
	 */
	void			(*progress)(void *arg, size_t tables_done,
				    size_t tables, uint64_t bytes_done,
				    uint64_t bytes_estimate);
	void			*progress_arg;
};

/*
 * Copy the base snapshot: pg_dump's pre-data and post-data sections to
 * <gen>/<base>/pre-data and <gen>/<base>/post-data (on a thread beside the
 * copy), and every table's rows in chunks numbered 0, 1, ...
 * (base_chunk_key), using `jobs` connections that each import the
 * snapshot.  Under 3 jobs a table is one plain COPY cut into chunks as it
 * streams; from 3 on a big table is split into ctid ranges, one COPY and
 * one chunk each, in ctid order.  Objects are written
 * with store_put from several threads at once, so the store must allow
 * concurrent puts.  On success the sections and the chunks (per table in
 * chunk order, tables ordered by schema and name) are in m, which the
 * caller writes.
 *
 * Returns 0, or a negative LS_ERR_* code with *errmsg (caller frees) one
 * line naming the table and PostgreSQL's message: LS_ERR_PG for server
 * errors and a failed pg_dump, LS_ERR_NOTFOUND for a missing table,
 * publication or pg_dump, LS_ERR_INVALID ("base copy interrupted") when
 * *stop became nonzero; *stop is checked between chunks.
 * Objects already written stay in the store; without a manifest they are
 * not a base.  Progress is logged (log_info, subsystem "base").
 */
int basecopy_run(const struct basecopy_opts *, struct base_manifest *m,
    char **errmsg);

#endif
