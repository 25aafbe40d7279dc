/*
 * segment.h: segment format v1 (spec: schema/segment-format.md).
 *
 * A segment is magic + version, a msgpack header map, a compressed body (a
 * zlib stream or a zstd frame, the header's "compression") of length-framed
 * msgpack records (optionally AES-256-GCM encrypted with the
 * prefix and header as additional authenticated data) and a SHA-256 trailer
 * over everything before it.  Writer and reader both stream: neither holds a
 * whole body in memory (one record at a time).
 */
#ifndef LS_SEGMENT_H
#define LS_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/compression.h"
#include "format/record.h"

#define SEGMENT_VERSION		1
#define SEGMENT_PREFIX_LEN	12	/* = CONTAINER_PREFIX_LEN */
#define SEGMENT_NONCE_LEN	12
#define SEGMENT_KEY_LEN		32
#define SEGMENT_KEYID_LEN	8
#define SEGMENT_RECORD_MAX	(1024u * 1024u * 1024u)	/* 1 GiB per record */

struct segment_header {
	uint16_t	version;
	bool		encrypted;
	enum compression_codec codec;		/* "compression" */
	uint64_t	segno;
	char		generation[17];		/* 16 lowercase hex + NUL */
	uint64_t	system_id;
	char		database[64];
	uint64_t	first_lsn;		/* commit LSN of the first txn */
	uint64_t	last_lsn;		/* commit LSN of the last txn */
	uint64_t	end_lsn;		/* end LSN of the last commit */
	int64_t		first_time;		/* Unix microseconds */
	int64_t		last_time;
	int64_t		created;
	uint64_t	txns;
	uint64_t	changes;
	uint64_t	records;
	bool		has_prev;
	uint8_t		prev_sha256[32];
	bool		has_heartbeat;		/* optional keys (spec 4.4) */
	uint64_t	heartbeat_lsn;		/* the source had reached this */
	int64_t		heartbeat_time;		/* at this time (source clock) */
	uint64_t	body_len;		/* stored body bytes */
	uint8_t		nonce[SEGMENT_NONCE_LEN];
	uint8_t		key_id[SEGMENT_KEYID_LEN];
	size_t		header_len;		/* msgpack header bytes */
	uint64_t	total_len;		/* whole object */
};

/* ---- writer ---- */

struct segment_writer;

struct segment_writer_opts {
	uint64_t	 segno;			/* >= 1 */
	const char	*generation;		/* 16 lowercase hex digits */
	uint64_t	 system_id;
	const char	*database;
	const uint8_t	*prev_sha256;		/* 32 bytes; NULL only for segno 1 */
	const uint8_t	*key;			/* 32 bytes, or NULL: no encryption */
	const char	*spool_dir;		/* temp body; NULL: $TMPDIR or /tmp */
	struct compression comp;		/* zeroed: zlib, its default level */
};

/*
 * Start a segment.  Records are compressed into an anonymous spool file as
 * they are added; segment_writer_finish() writes the final object.
 */
int segment_writer_new(const struct segment_writer_opts *,
    struct segment_writer **out, char **errmsg);

/*
 * Add one record.  Order is enforced: BEGIN, its changes and transactional
 * messages, COMMIT (matching BEGIN); relations, sequences and
 * non-transactional messages only outside a transaction; a change may only
 * name a relation already added to this segment, with as many columns.
 */
int segment_writer_add(struct segment_writer *, const struct ls_record *,
    char **errmsg);

/*
 * Mark the segment as a heartbeat: when it is closed, every transaction
 * the source committed before lsn is in it or in an earlier segment, and
 * the source was at lsn at time (Unix us).  Written as the header's
 * heartbeat_lsn / heartbeat_time.
 */
void segment_writer_heartbeat(struct segment_writer *, uint64_t lsn,
    int64_t time);

/* True if relation oid has been added to this segment. */
bool segment_writer_has_relation(const struct segment_writer *, uint32_t oid);
/* Compressed body bytes so far, transactions committed so far. */
uint64_t segment_writer_bytes(const struct segment_writer *);
uint64_t segment_writer_txns(const struct segment_writer *);
bool segment_writer_in_txn(const struct segment_writer *);

/*
 * Write the whole object to out_fd (from its current offset).  Fails if a
 * transaction is open.  On success fills *h (if not NULL) and sha256_out
 * (the trailer: the value the next segment's prev_sha256 must carry).
 */
int segment_writer_finish(struct segment_writer *, int out_fd,
    struct segment_header *h, uint8_t sha256_out[32], char **errmsg);
void segment_writer_free(struct segment_writer *);

/* ---- reader ---- */

struct segment_reader;

/*
 * Open a segment stored in the regular file fd (read from offset 0).  name
 * prefixes every error message ("segment 0000000000000007").  key is the
 * 32-byte key or NULL.  Checks the prefix, the header and the object's
 * length; integrity (trailer, GCM tag) is known only when
 * segment_reader_next() returns 0, so a caller that must not act on a bad
 * segment reads it through once (segment_verify_fd) before applying.
 */
int segment_reader_open(int fd, const char *name, const uint8_t *key,
    struct segment_reader **out, char **errmsg);
const struct segment_header *segment_reader_header(const struct segment_reader *);

/*
 * Next record: 1 and *rec filled (pointers valid until the next call), 0 at
 * the end once the trailer and tag have been verified, or an LS_ERR_* code:
 * CORRUPT (checksum, decoding, structure, oversize frame), AUTH (key), IO.
 */
int segment_reader_next(struct segment_reader *, struct ls_record *rec,
    char **errmsg);
void segment_reader_free(struct segment_reader *);

/* Read every record of fd and check everything; *h and sha256 if not NULL. */
int segment_verify_fd(int fd, const char *name, const uint8_t *key,
    struct segment_header *h, uint8_t sha256[32], char **errmsg);

/*
 * Parse the prefix and header from the first len bytes of an object.
 * If len is too short, returns LS_ERR_END with *need set to the bytes
 * required.  Does not check integrity (see segment_reader_open).
 */
int segment_parse_header(const uint8_t *buf, size_t len, const char *name,
    struct segment_header *h, size_t *need, char **errmsg);

/*
 * Check that cur directly follows prev: consecutive numbers, same
 * generation, cur's prev_sha256 equal to prev's trailer (prev_sha), commit
 * LSNs increasing.  LS_ERR_CHAIN with a message naming both segments.
 */
int segment_check_chain(const struct segment_header *prev,
    const uint8_t prev_sha[32], const struct segment_header *cur, char **errmsg);

/* Object name under a generation: "<gen>/seg/<segno:016x>". */
void segment_object_key(const char *generation, uint64_t segno, char out[64]);

#endif
