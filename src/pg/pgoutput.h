/*
 * pgoutput.h: decoder for PostgreSQL's pgoutput logical replication
 * messages, protocol versions 1 and 2 (streaming), as in PostgreSQL 15,
 * and the streaming replication envelope around them: XLogData 'w',
 * Primary keepalive 'k' and Standby status update 'r'.
 *
 * The decoder is stateless about the protocol: the caller tracks whether it
 * is between Stream Start and Stream Stop, which transactions are open, and
 * which relations it has seen.  It only turns bytes into structs, checking
 * every read.  Malformed input gives LS_ERR_CORRUPT and a message naming the
 * message type and the offset, never a crash and never an allocation larger
 * than a small multiple of the input length.
 */
#ifndef LS_PGOUTPUT_H
#define LS_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/record.h"

/* PostgreSQL epoch (2000-01-01) minus Unix epoch, in microseconds. */
#define PGO_EPOCH_OFFSET_US	INT64_C(946684800000000)

/* Message type bytes. */
enum pgo_msg_type {
	PGO_BEGIN = 'B',
	PGO_COMMIT = 'C',
	PGO_ORIGIN = 'O',
	PGO_RELATION = 'R',
	PGO_TYPE = 'Y',
	PGO_INSERT = 'I',
	PGO_UPDATE = 'U',
	PGO_DELETE = 'D',
	PGO_TRUNCATE = 'T',
	PGO_MESSAGE = 'M',
	PGO_STREAM_START = 'S',
	PGO_STREAM_STOP = 'E',
	PGO_STREAM_COMMIT = 'c',
	PGO_STREAM_ABORT = 'A',
};

/* Origin: the commit LSN on the origin server and the origin's name. */
struct pgo_origin {
	uint64_t	 lsn;
	const char	*name;
};

/* Type: a data type's oid and qualified name. */
struct pgo_type {
	uint32_t	 oid;
	const char	*schema;
	const char	*name;
};

/*
 * One decoded message.  Which member of u is set depends on type:
 *
 *   Begin		u.txn: xid, commit_lsn (the final LSN of the
 *			transaction), commit_time; end_lsn is 0
 *   Commit		u.txn: commit_lsn, end_lsn, commit_time; xid is 0
 *			(the caller knows it from Begin); flags
 *   Stream Commit	u.txn: xid, commit_lsn, end_lsn, commit_time; flags
 *   Origin		u.origin
 *   Relation		u.rel (an empty namespace on the wire, meaning
 *			pg_catalog, is returned as "pg_catalog")
 *   Type		u.type (same namespace rule)
 *   Insert		u.change: kind, relid, new
 *   Update		u.change: kind, relid, old_kind ('K', 'O' or 0),
 *			old (when old_kind is not 0), new
 *   Delete		u.change: kind, relid, old_kind ('K' or 'O'), old
 *   Truncate		u.change: kind, trunc_flags (LS_TRUNCATE_*),
 *			nrelids, relids; flags holds the same byte
 *   Message		u.message; flags holds the raw flags byte
 *   Stream Start	u.stream_start.first_segment
 *   Stream Stop	nothing
 *   Stream Abort	u.stream_abort.subxid (equal to xid for a top-level
 *			abort)
 *
 * xid/has_xid: the transaction's xid for Begin, Stream Start, Stream
 * Commit and Stream Abort; the streamed transaction's xid for Relation,
 * Type, Insert, Update, Delete, Truncate and Message decoded with
 * in_stream; otherwise 0 and false.
 *
 * Times are microseconds since the Unix epoch (converted from the wire's
 * PostgreSQL epoch).  u.txn.origin is NULL and u.txn.nchanges 0.
 */
struct pgo_msg {
	char		 type;		/* enum pgo_msg_type */
	bool		 has_xid;
	uint32_t	 xid;
	uint8_t		 flags;
	union {
		struct ls_txn		txn;
		struct pgo_origin	origin;
		struct ls_relation	rel;
		struct pgo_type		type;
		struct ls_change	change;
		struct ls_message	message;
		struct {
			bool		first_segment;
		} stream_start;
		struct {
			uint32_t	subxid;
		} stream_abort;
	} u;
};

struct pgo_decoder;

/*
 * Allocate a decoder: scratch memory reused from one pgo_decode call to the
 * next.  Returns 0, or LS_ERR_NOMEM.  Free with pgo_decoder_free (NULL is a
 * no-op).
 */
int pgo_decoder_new(struct pgo_decoder **out, char **errmsg);
void pgo_decoder_free(struct pgo_decoder *);

/*
 * Decode one pgoutput message: buf is the payload of an XLogData message,
 * starting at the message type byte, len bytes long, nothing after it.
 * in_stream says the message arrives between Stream Start and Stream Stop,
 * where protocol 2 puts the streamed xid after the type byte of Relation,
 * Type, Insert, Update, Delete, Truncate and Message.
 *
 * Returns 0 and fills *out, or LS_ERR_CORRUPT (truncated message, bad count
 * or length, unknown type or tag, trailing bytes), LS_ERR_NOMEM; on error
 * *out is unspecified.  Every pointer in *out (strings, values, arrays)
 * points into d's scratch memory, not into buf, and stays valid until the
 * next pgo_decode or pgo_decoder_free on d.  Strings are NUL-terminated;
 * TEXT and BINARY values and message content have a NUL after their len
 * bytes too.
 */
int pgo_decode(struct pgo_decoder *d, const uint8_t *buf, size_t len,
    bool in_stream, struct pgo_msg *out, char **errmsg);

/*
 * What a message is, without decoding it: the agent buffers a
 * transaction's messages raw and decodes each once, at commit.
 */
struct pgo_peek {
	char		 type;		/* enum pgo_msg_type */
	bool		 has_xid;	/* as pgo_msg: the streamed xid */
	uint32_t	 xid;
	bool		 transactional;	/* Message only: its flag bit */
};

/*
 * Read the type byte, the streamed xid (in_stream, for the kinds that carry
 * one) and a Message's flags byte; nothing else is checked, so a message
 * that peeks may still fail pgo_decode.  Whatever pgo_decode accepts peeks
 * to the same type, transactional flag and (where the peek has one) xid.
 * Returns 0 or
 * LS_ERR_CORRUPT (empty, unknown type, shorter than those fields).
 */
int pgo_peek(const uint8_t *buf, size_t len, bool in_stream,
    struct pgo_peek *out, char **errmsg);

/* Name of a message type ("Insert"), or NULL for an unknown byte. */
const char *pgo_type_name(char type);

/*
 * Parse an XLogData message ('w', WAL start, WAL end, send time, data).
 * send_time is in PostgreSQL-epoch microseconds, as on the wire.  *payload
 * points into buf.  Returns 0 or LS_ERR_CORRUPT.
 */
int pgo_parse_xlogdata(const uint8_t *buf, size_t len, uint64_t *wal_start,
    uint64_t *wal_end, int64_t *send_time, const uint8_t **payload,
    size_t *payload_len, char **errmsg);

/*
 * Parse a Primary keepalive message ('k', WAL end, send time, reply
 * requested), exactly 18 bytes.  send_time is PostgreSQL-epoch
 * microseconds.  Returns 0 or LS_ERR_CORRUPT.
 */
int pgo_parse_keepalive(const uint8_t *buf, size_t len, uint64_t *wal_end,
    int64_t *send_time, bool *reply_requested, char **errmsg);

#define PGO_STATUS_LEN	34

/*
 * Build a Standby status update ('r') into out and return its length
 * (PGO_STATUS_LEN).  The positions are sent as given: written is "the
 * last WAL byte + 1 written", flushed is what the server may discard up
 * to.  now_pg_us is the client's clock in PostgreSQL-epoch microseconds;
 * reply asks the server to answer at once.
 */
size_t pgo_build_status(uint8_t out[PGO_STATUS_LEN], uint64_t written,
    uint64_t flushed, uint64_t applied, int64_t now_pg_us, bool reply);

#endif
