/* prefetch.c: segments fetched and verified ahead (see prefetch.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/service.h"
#include "common/util.h"
#include "prefetch.h"
#include "repo/catalog.h"
#include "store/store.h"

struct prefetch {
	struct store		*store;
	char			 generation[17];
	uint8_t			 key[32];
	bool			 has_key;
	bool			 follow;
	uint64_t		 until;		/* until_lsn, or 0 */
	volatile sig_atomic_t	*stop;
	uint64_t		 next;		/* segno to fetch */
	struct prefetch_item	 ring[PREFETCH_DEPTH];
	int			 head, count;
	bool			 finished;	/* no more items will come */
	bool			 quit;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
};

static void
push(struct prefetch *p, struct prefetch_item *it)
{
	pthread_mutex_lock(&p->lock);
	while (p->count == PREFETCH_DEPTH && !p->quit)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->quit) {
		if (it->fd >= 0)
			close(it->fd);
		free(it->errmsg);
	} else {
		p->ring[(p->head + p->count) % PREFETCH_DEPTH] = *it;
		p->count++;
	}
	if (it->rc != 0)
		p->finished = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Fetch and verify segment segno; the item says how it went. */
static void
fetch(struct prefetch *p, uint64_t segno, struct prefetch_item *it)
{
	char key[64], name[64];

	memset(it, 0, sizeof(*it));
	it->segno = segno;
	it->fd = -1;
	segment_object_key(p->generation, segno, key);
	snprintf(name, sizeof(name), "segment %016" PRIx64, segno);
	if ((it->rc = catalog_fetch(p->store, key, &it->fd, &it->errmsg)) != 0)
		return;
	it->rc = segment_verify_fd(it->fd, name, p->has_key ? p->key : NULL,
	    &it->h, it->sha, &it->errmsg);
	if (it->rc == 0 && (it->h.segno != segno ||
	    strcmp(it->h.generation, p->generation) != 0))
		it->rc = ls_errf(&it->errmsg, LS_ERR_CORRUPT, "%s: its header "
		    "says segment %016" PRIx64 " of generation %s: misplaced "
		    "object", name, it->h.segno, it->h.generation);
	if (it->rc != 0 && it->fd >= 0) {
		close(it->fd);
		it->fd = -1;
	}
}

/* Segment segno is absent: a gap, a newer generation, or just not yet. */
static int
absent(struct prefetch *p, uint64_t segno, struct prefetch_item *it)
{
	struct catalog_seg *segs = NULL;
	struct catalog_identity id;
	size_t n = 0;
	char *err = NULL, last[64];

	if (segno > 1)
		snprintf(last, sizeof(last), "segment %016" PRIx64, segno - 1);
	else
		snprintf(last, sizeof(last), "its base");
	memset(it, 0, sizeof(*it));
	it->segno = segno;
	it->fd = -1;
	if (catalog_segments(p->store, p->generation, segno, &segs, &n, &err) == 0 &&
	    n > 0) {
		it->rc = ls_errf(&it->errmsg, LS_ERR_CHAIN, "segment %016" PRIx64
		    " is missing but segment %016" PRIx64 " exists: gap in the "
		    "numbering; the restore stops before it", segno, segs[0].segno);
		free(segs);
		return 1;
	}
	free(segs);
	free(err);
	err = NULL;
	if (catalog_identity_read(p->store, &id, &err) == 0 &&
	    strcmp(id.generation, p->generation) > 0) {
		it->rc = ls_errf(&it->errmsg, LS_ERR_END, "GENERATION CHANGE: "
		    "the store moved on to generation %s (a new base snapshot: "
		    "the source's slot was dropped or invalidated, or the "
		    "source was replaced); generation %s ends at %s and changes the "
		    "source committed after it are not in it, so this target "
		    "stops there. To continue, restore the store into a new, "
		    "empty database with a new --state-dir (the new "
		    "generation's base replaces this one)", id.generation,
		    p->generation, last);
		free(err);
		return 1;
	}
	free(err);
	return 0;
}

static void
nap(struct prefetch *p, int64_t us)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(us / 1000000);
	ts.tv_nsec += (long)(us % 1000000) * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	if (!p->quit)
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	pthread_mutex_unlock(&p->lock);
}

/*
 * Following to an until point: has the agent stored everything up to it?
 * Its idle position is written after every segment before it, so segment
 * next is looked for once more after reading it.
 */
static bool
reached_until(struct prefetch *p)
{
	uint64_t lsn = 0, size;
	char key[64], l[32];

	if (p->until == 0 || catalog_confirmed_read(p->store, p->generation,
	    &lsn, NULL) != 0 || lsn < p->until)
		return false;
	segment_object_key(p->generation, p->next, key);
	if (store_head(p->store, key, &size, NULL) == 0)
		return false;
	ls_lsn_format(p->until, l);
	log_info("restore", "the store holds every transaction up to "
	    "--until-lsn %s: done", l);
	return true;
}

static void *
run(void *arg)
{
	struct prefetch *p = arg;
	struct prefetch_item it;
	uint64_t size;
	char key[64];
	int idle = 0;

	while (!p->quit && !*p->stop) {
		segment_object_key(p->generation, p->next, key);
		if (store_head(p->store, key, &size, NULL) == 0) {
			fetch(p, p->next++, &it);
			push(p, &it);
			idle = 0;
			if (it.rc != 0)
				break;
			continue;
		}
		if (absent(p, p->next, &it)) {
			push(p, &it);
			break;
		}
		if (!p->follow || reached_until(p))
			break;
		/* poll with back-off: 50 ms doubling to 2 s */
		nap(p, (50000LL << (idle < 5 ? idle : 5)) > 2000000 ? 2000000 :
		    (50000LL << (idle < 5 ? idle : 5)));
		idle++;
	}
	pthread_mutex_lock(&p->lock);
	p->finished = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int
prefetch_start(struct store *st, const char *generation, const uint8_t *key,
    uint64_t first, bool follow, uint64_t until_lsn,
    volatile sig_atomic_t *stop, struct prefetch **out, char **errmsg)
{
	struct prefetch *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	p->store = st;
	snprintf(p->generation, sizeof(p->generation), "%s", generation);
	if ((p->has_key = key != NULL))
		memcpy(p->key, key, 32);
	p->follow = follow;
	p->until = until_lsn;
	p->stop = stop;
	p->next = first;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->thread, NULL, run, p) != 0) {
		free(p);
		return ls_errf(errmsg, LS_ERR_INTERNAL, "cannot start a thread");
	}
	*out = p;
	return 0;
}

int
prefetch_next(struct prefetch *p, struct prefetch_item *item)
{
	struct timespec ts;
	int got = 0;

	pthread_mutex_lock(&p->lock);
	while (p->count == 0 && !p->finished && !*p->stop) {
		service_watchdog();	/* following: the restore waits here */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	if (p->count > 0) {
		*item = p->ring[p->head];
		p->head = (p->head + 1) % PREFETCH_DEPTH;
		p->count--;
		got = 1;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return got;
}

bool
prefetch_ready(struct prefetch *p)
{
	bool ready;

	pthread_mutex_lock(&p->lock);
	ready = p->count > 0;
	pthread_mutex_unlock(&p->lock);
	return ready;
}

void
prefetch_stop(struct prefetch *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	for (i = 0; i < p->count; i++) {
		struct prefetch_item *it = &p->ring[(p->head + i) % PREFETCH_DEPTH];
		if (it->fd >= 0)
			close(it->fd);
		free(it->errmsg);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
