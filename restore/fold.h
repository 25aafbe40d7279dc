/*
 * fold.h: the net change of a batch's updates.  Inside one target
 * transaction that covers many source transactions, successive updates of
 * one row need only its last image: an update is kept here, keyed by its
 * relation and its key's values, merged into the image an earlier update
 * of the same row left (a value left out as unchanged TOAST keeps the
 * earlier one), and sent when it must go: before any other change to its
 * relation, before DDL, a new definition or TRUNCATE, at the commit, and
 * when the fold holds too much.  Pure: no connection; the applier decides
 * which relations may fold (apply.c, fold_sql) and sends what is taken.
 */
#ifndef LS_RESTORE_FOLD_H
#define LS_RESTORE_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/record.h"

/* Where a folded update's last change came from (error messages). */
struct fold_ctx {
	uint64_t	 segno;
	uint64_t	 lsn;
	uint32_t	 xid;
};

struct fold;

struct fold *fold_new(void);
void fold_free(struct fold *);

/*
 * Keep the update of relation relid to row image t, whose key columns are
 * those with key[i] set (their values must be text).  *merged: a row with
 * that key was already held (the update folded into it).  LS_ERR_INVALID
 * when t's column count differs from the held row's (the caller takes the
 * relation before a new definition), LS_ERR_NOMEM.
 */
int fold_put(struct fold *, uint32_t relid, const struct ls_tuple *t,
    const char *key, const struct fold_ctx *ctx, bool *merged);

/* Rows and bytes held, all relations. */
size_t fold_rows(const struct fold *);
size_t fold_bytes(const struct fold *);
/* Does relid have rows held? */
bool fold_has(const struct fold *, uint32_t relid);

/*
 * Hand the rows of relid (0: of every relation) to fn, in the order their
 * keys were first held, and forget them (also when fn fails: its error is
 * returned, the rest is dropped, the batch is to be rolled back).
 */
typedef int (*fold_fn)(void *arg, uint32_t relid, const struct ls_tuple *t,
    const struct fold_ctx *ctx);
int fold_take(struct fold *, uint32_t relid, fold_fn fn, void *arg);

/* Forget everything (a rolled-back batch). */
void fold_discard(struct fold *);

#endif
