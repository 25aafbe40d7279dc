/* head.c: the end of a generation and a reader's lag (see head.h). */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "repo/catalog.h"
#include "repo/head.h"

int
head_read(struct store *st, const char *gen, uint64_t after, int scan,
    struct store_head *hd, char **errmsg)
{
	struct catalog_seg *segs = NULL;
	struct segment_header h;
	uint64_t segno, stop;
	size_t n = 0, i;
	int r;

	memset(hd, 0, sizeof(*hd));
	if ((r = catalog_segments(st, gen, after, &segs, &n, errmsg)) != 0)
		return r;
	for (i = 0; i < n; i++)
		hd->bytes += segs[i].size;
	hd->nsegs = n;
	hd->last_segno = n > 0 ? segs[n - 1].segno : after;
	free(segs);
	if (n > 0 && (r = catalog_read_header(st, gen, after + 1, &hd->next,
	    errmsg)) != 0)
		return r;
	hd->has_next = n > 0;
	if (scan > HEAD_SCAN_MAX)
		scan = HEAD_SCAN_MAX;
	stop = hd->last_segno > (uint64_t)scan ? hd->last_segno - (uint64_t)scan :
	    0;
	for (segno = hd->last_segno; segno > stop; segno--) {
		if ((r = catalog_read_header(st, gen, segno, &h, errmsg)) != 0)
			return r;
		if (h.has_heartbeat && hd->heartbeat_time == 0) {
			hd->heartbeat_lsn = h.heartbeat_lsn;
			hd->heartbeat_time = h.heartbeat_time;
		}
		if (h.txns > 0) {
			hd->end_lsn = h.end_lsn;
			hd->commit_time = h.last_time;
			break;		/* a heartbeat before it is older */
		}
	}
	hd->as_of = hd->commit_time > hd->heartbeat_time ? hd->commit_time :
	    hd->heartbeat_time;
	return 0;
}

double
head_lag_seconds(const struct store_head *hd, int64_t now)
{
	const struct segment_header *h = &hd->next;
	int64_t t;

	if (!hd->has_next)
		return 0;
	t = h->txns > 0 ? h->first_time : h->has_heartbeat ? h->heartbeat_time :
	    h->created;
	return now > t ? (double)(now - t) / 1e6 : 0;
}

void
head_json_lsn(json_t *o, const char *key, uint64_t lsn)
{
	char b[32];

	ls_lsn_format(lsn, b);
	json_object_set_new(o, key, json_string(b));
}

void
head_json_time(json_t *o, const char *key, int64_t us)
{
	char b[64];

	if (us == 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	ls_format_time(us, b, sizeof(b));
	json_object_set_new(o, key, json_string(b));
}
