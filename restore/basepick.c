/*
 * basepick.c: which base snapshot a restore loads, and where its segments
 * begin (replay_int.h).
 *
 * A generation may hold several bases (base.h): its first, and later ones
 * taken in the live chain (logship-agent --new-base).  A fresh restore
 * loads the newest complete base that --until-lsn / --until-time allow,
 * then replays exactly the transactions after its consistent point C: the
 * marker starts at end LSN C, so the segment loop's own rule (skip what
 * ends at or before the marker) drops every transaction the snapshot
 * holds, whose commit records all end at or before C, and keeps every one
 * committed at or after C.  Segments entirely before C are not read.
 *
 * A restore resuming keeps its base: while loading, the one consistent at
 * its marker's LSN; once streaming, the newest at or before it (the base
 * then only describes the tables; any will do, as it may have expired).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "replay_int.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "store/store.h"

static bool
is_first(const struct base_manifest *m)
{
	return strcmp(base_manifest_name(m), BASE_FIRST) == 0;
}

/* May a restore stopping at --until-* start from m? */
static bool
allowed(const struct run *r, const struct base_manifest *m)
{
	if (is_first(m))	/* holds nothing the stream does not follow */
		return true;
	if (r->o->has_until_lsn && base_manifest_lsn(m) > r->o->until_lsn)
		return false;
	return !r->o->has_until_time ||
	    (base_manifest_consistent_time(m) != 0 &&
	    base_manifest_consistent_time(m) <= r->o->until_time);
}

/* Say what expire removed, if it did: the reason a base is not there. */
static int
none_left(struct run *r, const char *gen, const char *what, char **errmsg)
{
	struct catalog_expired ex;
	char *err = NULL, lsn[32], when[40];

	if (catalog_expired_read(r->store, gen, &ex, &err) != 0) {
		free(err);
		return ls_errf(errmsg, LS_ERR_NOTFOUND, "generation %s of store "
		    "%s has no complete base snapshot %s; wait for "
		    "logship-agent to finish it", gen, store_url(r->store),
		    what);
	}
	ls_lsn_format(ex.lsn, lsn);
	ls_format_time(ex.time, when, sizeof(when));
	r->bad_input = true;
	return ls_errf(errmsg, LS_ERR_NOTFOUND, "generation %s of store %s: "
	    "no base snapshot %s: logship-restore expire removed the bases "
	    "before %s (consistent at %s) and segments below %016" PRIx64
	    " at %s; restore to a later point, from %s on", gen,
	    store_url(r->store), what, ex.base, lsn, ex.first_segno, when,
	    lsn);
}

/* The segments a resumed restore needs must not have been expired. */
static int
check_not_expired(struct run *r, const struct state_marker *tm,
    char **errmsg)
{
	struct catalog_expired ex;
	char *err = NULL;
	uint64_t need = tm->segno > 0 ? tm->segno : 1;

	if (catalog_expired_read(r->store, tm->generation, &ex, &err) != 0) {
		free(err);
		return 0;
	}
	if (need >= ex.first_segno || (tm->phase & PHASE_MASK) < PHASE_STREAM)
		return 0;
	r->bad_input = true;
	return ls_errf(errmsg, LS_ERR_NOTFOUND, "this target is at segment "
	    "%016" PRIx64 " of generation %s, but logship-restore expire removed "
	    "the segments below %016" PRIx64 " from store %s (it was not given "
	    "this restore's --state-dir): the target cannot catch up; restore "
	    "into a new, empty database", need, tm->generation, ex.first_segno,
	    store_url(r->store));
}

/* Is m the base to load: the one a resume was loading, or one allowed? */
static bool
fits(const struct run *r, const struct base_manifest *m,
    const struct state_marker *tm)
{
	if (tm == NULL)
		return allowed(r, m);
	if ((tm->phase & PHASE_MASK) < PHASE_STREAM)
		return tm->end_lsn == 0 ? is_first(m) :
		    !is_first(m) && base_manifest_lsn(m) == tm->end_lsn;
	/* streaming: the base only describes the tables */
	return is_first(m) || base_manifest_lsn(m) <= tm->end_lsn;
}

/*
 * The newest complete base of gen that fits, reading one manifest at a
 * time from the newest; a streaming restore falls back to the oldest.
 * *m NULL when none: *ncomplete says how many complete bases there were.
 */
static int
newest_fitting(struct run *r, const char *gen, const struct state_marker *tm,
    struct base_manifest **m, size_t *ncomplete, char **errmsg)
{
	struct base_manifest *cur = NULL, *oldest = NULL;
	char (*names)[24] = NULL;
	size_t n, i;
	int rc;

	*m = NULL;
	*ncomplete = 0;
	if ((rc = catalog_bases(r->store, gen, &names, &n, errmsg)) != 0)
		return rc;
	for (i = n; i > 0; i--) {
		rc = base_manifest_read_named(r->store, gen, names[i - 1],
		    r->keyp, &cur, errmsg);
		if (rc == LS_ERR_NOTFOUND) {	/* being copied, or expiring */
			free(*errmsg);
			*errmsg = NULL;
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		(*ncomplete)++;
		if (fits(r, cur, tm)) {
			*m = cur;
			break;
		}
		base_manifest_free(oldest);
		oldest = cur;
		cur = NULL;
	}
	free(names);
	if (rc == LS_ERR_AUTH || rc == LS_ERR_VERSION)
		r->bad_input = true;
	if (rc == 0 && *m == NULL && tm != NULL &&
	    (tm->phase & PHASE_MASK) == PHASE_STREAM) {
		*m = oldest;
		oldest = NULL;
	}
	base_manifest_free(oldest);
	return rc;
}

int
basepick_read(struct run *r, const char *gen, const struct state_marker *tm,
    char **errmsg)
{
	char lsn[32];
	size_t n = 0;
	int rc;

	if (tm != NULL && (rc = check_not_expired(r, tm, errmsg)) != 0)
		return rc;
	if ((rc = newest_fitting(r, gen, tm, &r->m, &n, errmsg)) != 0)
		return rc;
	if (r->m != NULL && tm != NULL && (tm->phase & PHASE_MASK) < PHASE_STREAM) {
		ls_lsn_format(base_manifest_lsn(r->m), lsn);
		log_info("restore", "resuming the load of base %s of generation "
		    "%s (consistent at %s)", base_manifest_name(r->m), gen, lsn);
	}
	if (r->m != NULL)
		return 0;
	if (tm != NULL && (tm->phase & PHASE_MASK) < PHASE_STREAM) {
		ls_lsn_format(tm->end_lsn, lsn);
		r->bad_input = true;
		return ls_errf(errmsg, LS_ERR_NOTFOUND, "the base snapshot this "
		    "restore was loading (consistent at %s) is no longer in "
		    "store %s (logship-restore expire?); restore into a new, "
		    "empty database", lsn, store_url(r->store));
	}
	return none_left(r, gen, n == 0 ? "yet" : "at or before the --until "
	    "point", errmsg);
}

int
basepick_position(struct run *r, char **errmsg)
{
	struct catalog_seg *segs = NULL;
	const char *gen = r->mk.generation;
	uint64_t lsn = base_manifest_lsn(r->m);
	char l[32];
	size_t n = 0, i = 0;
	int rc;

	ls_lsn_format(lsn, l);
	if (is_first(r->m)) {
		log_info("restore", "base %s of generation %s (consistent at %s); "
		    "segments from 0000000000000001", BASE_FIRST, gen, l);
		return 0;	/* every segment follows it: from the first */
	}
	if ((rc = catalog_segments(r->store, gen, 0, &segs, &n, errmsg)) != 0 ||
	    (rc = catalog_segment_after_lsn(r->store, gen, segs, n, lsn, &i,
	    errmsg)) != 0)
		goto out;
	r->mk.end_lsn = lsn;	/* what the snapshot holds is applied */
	if (n > 0) {
		r->mk.segno = segs[i].segno;
		rc = catalog_read_trailer(r->store, gen, segs[i].segno,
		    segs[i].size, r->mk.seg_sha, errmsg);
	}
	if (rc == 0)
		log_info("restore", "base %s of generation %s (consistent at "
		    "%s); transactions after it from segment %016" PRIx64
		    ", %zu earlier segment(s) not read",
		    base_manifest_name(r->m), gen, l, r->mk.segno ? r->mk.segno : 1,
		    i);
 out:
	free(segs);
	return rc;
}
