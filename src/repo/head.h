/*
 * head.h: where a generation's segments end, and how far a reader who has
 * applied up to some segment is behind: for metrics, status commands and
 * ls.  Reads only listings and headers (ranged reads), never bodies, so
 * it needs no key.
 */
#ifndef LS_HEAD_H
#define LS_HEAD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "format/segment.h"
#include "store/store.h"

/* Headers read back from the newest segment to find times: at most. */
#define HEAD_SCAN_MAX	32

struct store_head {
	uint64_t	last_segno;	/* newest segment; 0: none */
	uint64_t	nsegs;		/* segments numbered above after */
	uint64_t	bytes;		/* and their bytes */
	bool		has_next;	/* the first of them: */
	struct segment_header next;
	/* from the newest segment with transactions (0: none seen) */
	uint64_t	end_lsn;
	int64_t		commit_time;
	/* from the newest heartbeat (0: none seen) */
	uint64_t	heartbeat_lsn;
	int64_t		heartbeat_time;
	/* the store is complete up to this time: max of the two (0: unknown) */
	int64_t		as_of;
};

/*
 * Read the head of generation gen, counting what lies after segment
 * after.  Times come from the newest segments, reading at most scan
 * (<= HEAD_SCAN_MAX) headers back; 0: no times.  0 or LS_ERR_* with
 * *errmsg.
 */
int head_read(struct store *, const char *gen, uint64_t after, int scan,
    struct store_head *, char **errmsg);

/*
 * The lag in seconds at now of a reader who applied up to segment after:
 * 0 when nothing lies beyond it; else now minus the earliest time of the
 * first segment beyond it (its first commit, else its heartbeat, else
 * when it was written), never below 0.
 */
double head_lag_seconds(const struct store_head *, int64_t now);

/* Status output: an LSN as PostgreSQL prints it; a time, or null for 0. */
void head_json_lsn(json_t *o, const char *key, uint64_t lsn);
void head_json_time(json_t *o, const char *key, int64_t us);

#endif
