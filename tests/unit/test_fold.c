/*
 * test_fold.c: the net change of a batch's updates (restore/fold.c): one
 * image per row, merged; unsent TOAST keeps the earlier value; taken in
 * first-held order, by relation or all; counters back to zero; a shape
 * change refused; a failing sender drops the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "fold.h"
#include "tap.h"

static struct ls_value
txt(const char *s)
{
	struct ls_value v = { LS_VAL_TEXT, (uint32_t)strlen(s), s };
	return v;
}

static const struct ls_value unchanged = { LS_VAL_UNCHANGED, 0, NULL };
static const struct ls_value null = { LS_VAL_NULL, 0, NULL };
static const char key1[3] = { 1, 0, 0 };	/* column 0 is the key */

/* put (relid, id, a, b) with b possibly unchanged or NULL */
static int
put(struct fold *f, uint32_t relid, const char *id, struct ls_value a,
    struct ls_value b, uint32_t xid, bool *merged)
{
	struct ls_value v[3] = { txt(id), a, b };
	struct ls_tuple t = { 3, v };
	struct fold_ctx ctx = { 1, 100 + xid, xid };

	return fold_put(f, relid, &t, key1, &ctx, merged);
}

struct seen {
	char	 out[4096];
	int	 calls, fail_at;
};

static int
record(void *arg, uint32_t relid, const struct ls_tuple *t,
    const struct fold_ctx *ctx)
{
	struct seen *s = arg;
	char line[256];
	uint16_t i;

	if (++s->calls == s->fail_at)
		return LS_ERR_PG;
	snprintf(line, sizeof(line), "%u:", relid);
	strcat(s->out, line);
	for (i = 0; i < t->ncols; i++) {
		snprintf(line, sizeof(line), "%s%.*s", i ? "," : "",
		    t->vals[i].kind == LS_VAL_TEXT ? (int)t->vals[i].len : 1,
		    t->vals[i].kind == LS_VAL_TEXT ? t->vals[i].data :
		    t->vals[i].kind == LS_VAL_NULL ? "N" : "U");
		strcat(s->out, line);
	}
	snprintf(line, sizeof(line), "@%u;", ctx->xid);
	strcat(s->out, line);
	return 0;
}

int
main(void)
{
	struct fold *f = fold_new();
	struct seen s = { "", 0, 0 };
	bool merged = true;
	struct ls_value v2[2] = { txt("1"), txt("x") };
	struct ls_tuple two = { 2, v2 };
	struct fold_ctx ctx = { 0, 0, 9 };
	char big[300];
	int i, rc;

	ok(f != NULL && fold_rows(f) == 0 && fold_bytes(f) == 0 &&
	    !fold_has(f, 7), "a new fold holds nothing");
	ok(put(f, 7, "1", txt("a1"), txt("long-b1"), 1, &merged) == 0 && !merged,
	    "the first update of a row is held");
	ok(put(f, 7, "2", txt("a2"), txt("b2"), 2, &merged) == 0 && !merged,
	    "another row: held beside it");
	ok(put(f, 7, "1", txt("a1'"), unchanged, 3, &merged) == 0 && merged,
	    "a second update of row 1 folds into it");
	ok(put(f, 8, "1", null, txt("other"), 4, &merged) == 0 && !merged,
	    "the same key in another relation is another row");
	ok(put(f, 7, "12", txt("c"), null, 5, &merged) == 0 && !merged,
	    "keys are compared whole (\"1\" and \"12\" differ)");
	ok(fold_rows(f) == 4 && fold_has(f, 7) && fold_has(f, 8) &&
	    !fold_has(f, 9), "four rows in two relations");
	ok(fold_put(f, 7, &two, key1, &ctx, &merged) == LS_ERR_INVALID,
	    "an update of another column count than the held row is refused");
	rc = fold_take(f, 7, record, &s);
	ok(rc == 0 && strcmp(s.out, "7:1,a1',long-b1@3;7:2,a2,b2@2;"
	    "7:12,c,N@5;") == 0, "relation 7 taken in first-held order, row 1 "
	    "by its last image, the unsent TOAST value kept, the last change's "
	    "context (%s)", s.out);
	ok(!fold_has(f, 7) && fold_has(f, 8) && fold_rows(f) == 1,
	    "relation 8 is still held");
	s.out[0] = '\0';
	ok(fold_take(f, 0, record, &s) == 0 && strcmp(s.out, "8:1,N,other@4;")
	    == 0 && fold_rows(f) == 0 && fold_bytes(f) == 0,
	    "taking all empties the fold, bytes back to zero");
	ok(put(f, 7, "1", txt("again"), txt("b"), 6, &merged) == 0 && !merged,
	    "a row taken is held anew");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 5000; i++) {
		char id[16];
		snprintf(id, sizeof(id), "%d", i % 1000);
		if (put(f, 9, id, txt(big), txt("b"), (uint32_t)i, &merged) != 0)
			break;
	}
	ok(i == 5000 && fold_rows(f) == 1001, "5000 updates of 1000 rows hold "
	    "1001 rows (%zu)", fold_rows(f));
	ok(fold_bytes(f) > 1000 * sizeof(big) && fold_bytes(f) < 1001 * 2 *
	    sizeof(big), "bytes count each held image once (%zu)", fold_bytes(f));
	s.out[0] = '\0';
	s.calls = 0;
	s.fail_at = 3;
	ok(fold_take(f, 0, record, &s) == LS_ERR_PG && fold_rows(f) == 0 &&
	    fold_bytes(f) == 0, "a failing sender: its error, the rest dropped");
	ok(put(f, 9, "5", txt("x"), txt("y"), 1, &merged) == 0 && !merged &&
	    fold_rows(f) == 1, "usable after a failure");
	fold_discard(f);
	ok(fold_rows(f) == 0 && fold_bytes(f) == 0 && !fold_has(f, 9),
	    "discard forgets everything");
	fold_free(f);
	return tap_done();
}
