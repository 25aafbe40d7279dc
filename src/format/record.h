/*
 * record.h: the logical change data model shared by the pgoutput decoder,
 * the segment format and the restore.
 *
 * All pointers inside these structs are borrowed: they point into a buffer
 * owned by whoever produced the struct (a decoder or a segment reader) and
 * stay valid until that producer's next call, unless noted otherwise.
 * Strings are NUL-terminated; value data carries an explicit length.
 */
#ifndef LS_RECORD_H
#define LS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A column value.  The four kinds are distinct on purpose. */
enum ls_value_kind {
	LS_VAL_NULL = 'n',		/* SQL NULL */
	LS_VAL_UNCHANGED = 'u',		/* unchanged TOASTed value: not sent */
	LS_VAL_TEXT = 't',		/* text output form, data[len] is NUL */
	LS_VAL_BINARY = 'b',		/* binary send form */
};

struct ls_value {
	char		 kind;		/* enum ls_value_kind */
	uint32_t	 len;
	const char	*data;		/* NULL for NULL/UNCHANGED */
};

struct ls_tuple {
	uint16_t	 ncols;
	struct ls_value	*vals;
};

#define LS_COL_KEY	0x01		/* part of the replica identity */

struct ls_column {
	const char	*name;
	uint32_t	 type_oid;
	int32_t		 typmod;
	uint8_t		 flags;		/* LS_COL_* */
};

/* Replica identity: 'd' default, 'n' nothing, 'f' full, 'i' index. */
struct ls_relation {
	uint32_t	  oid;
	const char	 *schema;
	const char	 *name;
	char		  replident;
	uint16_t	  ncols;
	struct ls_column *cols;
};

/* Transaction boundaries.  Times are microseconds since the Unix epoch. */
struct ls_txn {
	uint32_t	 xid;
	uint64_t	 commit_lsn;	/* LSN of the commit record */
	uint64_t	 end_lsn;	/* end of the commit record: the confirm point */
	int64_t		 commit_time;
	const char	*origin;	/* replication origin name or NULL */
	uint64_t	 nchanges;	/* in a commit record: changes that preceded it */
};

enum ls_change_kind {
	LS_CHANGE_INSERT = 'I',
	LS_CHANGE_UPDATE = 'U',
	LS_CHANGE_DELETE = 'D',
	LS_CHANGE_TRUNCATE = 'T',
};

/* Old tuple kinds (pgoutput 'K' and 'O'), or 0 when there is none. */
#define LS_OLD_NONE	0
#define LS_OLD_KEY	'K'
#define LS_OLD_FULL	'O'

#define LS_TRUNCATE_CASCADE		0x01
#define LS_TRUNCATE_RESTART_IDENTITY	0x02

struct ls_change {
	char		 kind;		/* enum ls_change_kind */
	uint32_t	 relid;		/* insert/update/delete */
	char		 old_kind;	/* LS_OLD_* (update, delete) */
	struct ls_tuple	 old;		/* update (optional), delete */
	struct ls_tuple	 new;		/* insert, update */
	uint8_t		 trunc_flags;	/* truncate: LS_TRUNCATE_* */
	uint32_t	 nrelids;	/* truncate */
	const uint32_t	*relids;	/* truncate */
};

/* A sampled sequence value. */
struct ls_sequence {
	const char	*schema;
	const char	*name;
	int64_t		 last_value;
	bool		 is_called;
	uint64_t	 lsn;		/* position at which it was sampled */
};

/*
 * A logical decoding message (pg_logical_emit_message).  Prefixes starting
 * "logship." are logship's own (schema/segment-format.md, §6.10):
 * LS_TABLES_MESSAGE, written by the agent outside transactions whenever
 * the set of tables the source publishes changes, holds
 * {"publication": name, "tables": [[schema, name], ...]};
 * LS_DDL_MESSAGE, emitted on the source by the DDL capture (agent --ddl)
 * inside the transaction that ran the command, holds one JSON object per
 * event trigger firing.
 */
#define LS_TABLES_MESSAGE	"logship.tables"
#define LS_DDL_MESSAGE		"logship.ddl"

struct ls_message {
	uint64_t	 lsn;
	bool		 transactional;
	const char	*prefix;
	uint32_t	 len;
	const char	*content;
};

enum ls_record_kind {
	LS_REC_RELATION = 'R',
	LS_REC_BEGIN = 'B',
	LS_REC_CHANGE = 'X',		/* insert/update/delete/truncate */
	LS_REC_COMMIT = 'C',
	LS_REC_SEQUENCE = 'S',
	LS_REC_MESSAGE = 'M',
};

struct ls_record {
	char			 kind;	/* enum ls_record_kind */
	union {
		struct ls_relation	rel;
		struct ls_txn		txn;	/* BEGIN and COMMIT */
		struct ls_change	change;
		struct ls_sequence	seq;
		struct ls_message	msg;
	} u;
};

#endif
