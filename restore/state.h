/*
 * state.h: logship-restore's local state, an LMDB environment in
 * --state-dir (durable: no MDB_NOSYNC).  The target is authoritative; at
 * start-up the restore copies the target's marker here (reconcile).
 *	meta	"binding"  which store and target this state belongs to
 *		"marker"   the last applied position (struct state_marker)
 *	base	chunk key -> loaded
 */
#ifndef LS_RESTORE_STATE_H
#define LS_RESTORE_STATE_H

#include <stdbool.h>
#include <stdint.h>

struct state;

/* Phases of a restore, in order. */
enum restore_phase {
	PHASE_NEW = 0,		/* nothing done */
	PHASE_SCHEMA = 1,	/* pre-data applied */
	PHASE_DATA = 2,		/* every base chunk loaded */
	PHASE_STREAM = 3,	/* post-data applied: replaying segments */
};
#define PHASE_MASK		0x0f
#define PHASE_SCHEMA_GIVEN	0x10	/* flag: the target had the schema */
#define PHASE_POST_EARLY	0x20	/* flag: post-data ran before the data
					 * (ID remapping needs keys first) */
#define PHASE_KEYS_MAPPED	0x40	/* flag: base keys are in the ID map */
#define PHASE_LOBS_DONE		0x80	/* flag: large objects restored */

struct state_marker {
	char		generation[17];
	int		phase;
	uint64_t	segno;		/* segment of the last applied txn, or 0 */
	uint64_t	end_lsn;	/* its end LSN */
	int64_t		commit_time;	/* its commit time (Unix us) */
	uint8_t		seg_sha[32];	/* trailer of segment segno */
	uint64_t	txns;		/* transactions applied so far */
	int64_t		heartbeat_time;	/* the last heartbeat applied (Unix us,
					 * 0: none); absent from older states */
};

/* Open (creating the directory if needed).  LS_ERR_INVALID when unusable. */
int state_open(const char *dir, struct state **out, char **errmsg);
/* Open without the process lock, to read (logship-restore idmap). */
int state_open_readonly(const char *dir, struct state **out, char **errmsg);
void state_close(struct state *);

/*
 * Bind the state to a store and a target (opaque strings), or check the
 * binding made earlier: LS_ERR_INVALID naming both when they differ.
 */
int state_bind(struct state *, const char *store_id, const char *target_id,
    char **errmsg);

/* LS_ERR_NOTFOUND when there is none yet. */
int state_get_marker(struct state *, struct state_marker *, char **errmsg);
int state_put_marker(struct state *, const struct state_marker *, char **errmsg);

int state_base_loaded(struct state *, const char *key, bool *loaded,
    char **errmsg);
int state_base_mark(struct state *, const char *key, char **errmsg);

/*
 * The ID map: (table, original key) -> new key, and back.  Entries carry the
 * end LSN of the source transaction that made them (0: base snapshot), and
 * a deletion carries the LSN of the transaction that deleted the row, so
 * start-up can undo what a batch the target never committed wrote:
 * state_map_reconcile(committed) drops entries made after committed,
 * revives rows deleted after it, and purges rows deleted at or before it.
 * Writes go through one write transaction per target batch, committed
 * before the target's COMMIT.
 */
struct state_txn;

int state_txn_begin(struct state *, struct state_txn **out, char **errmsg);
int state_txn_commit(struct state_txn *, char **errmsg);
void state_txn_abort(struct state_txn *);

/* LS_ERR_NOTFOUND if absent or deleted; *newkey malloc'd.  txn may be NULL. */
int state_map_get(struct state *, struct state_txn *, const char *table,
    const char *orig, char **newkey, char **errmsg);
int state_map_put(struct state_txn *, const char *table, const char *orig,
    const char *newkey, uint64_t tag, char **errmsg);
int state_map_delete(struct state_txn *, const char *table, const char *orig,
    uint64_t tag, char **errmsg);
/* new -> original; LS_ERR_NOTFOUND if absent. */
/*
 * A table's entries marked deleted by tag (its DROP TABLE replayed): a
 * table created later under the same name starts with an empty map.
 * *n: how many.
 */
int state_map_drop_table(struct state_txn *, const char *table, uint64_t tag,
    uint64_t *n, char **errmsg);
/*
 * A table renamed (or moved to another schema): its live entries move to
 * the new name, tagged with tag (a crash before the target commit brings
 * the old ones back, state_map_reconcile).  *moved: how many.
 */
int state_map_rename_table(struct state_txn *, const char *from,
    const char *to, uint64_t tag, uint64_t *moved, char **errmsg);
int state_map_reverse(struct state *, const char *table, const char *newkey,
    char **orig, char **errmsg);
int state_map_reconcile(struct state *, uint64_t committed_lsn,
    uint64_t *dropped, char **errmsg);
/* Count live entries (for tests and messages). */
int state_map_count(struct state *, uint64_t *n, char **errmsg);

#endif
