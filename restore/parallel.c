/* parallel.c: parallel apply that keeps commit order (see parallel.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "apply.h"
#include "baseload.h"
#include "common/crashpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "format/relcache.h"
#include "format/segment.h"
#include "parallel.h"
#include "replay_int.h"
#include "repo/base.h"
#include "rewrite.h"
#include "state.h"
#include "target.h"

/*
 * A segment of more changes than this is applied serially: its scan holds
 * 32 bytes a change, its keys 16 or more.
 */
#define PAR_MAX_CHANGES	(1u << 20)

/* A relation's class for this run of chunks (apply.h, APPLY_PAR_*). */
struct relclass {
	uint32_t	 relid;
	int		 cls;
};

/* Hashes of the keys a chunk touches: open addressing, 0 is empty. */
struct keyset {
	uint64_t	*v;
	size_t		 cap, n;	/* cap: a power of two, or 0 */
};

enum chunk_state { CH_RUNNING, CH_COMMITTED, CH_FAILED };

struct chunk {
	uint64_t		 seq;
	struct prefetch_item	 it;		/* fd: par's duplicate */
	uint8_t			*early;		/* bit per change, in order */
	size_t			 nchanges;
	struct keyset		 keys;		/* for the chunks after it */
	uint32_t		*opaque;	/* relations with a key unknown */
	size_t			 nopaque;
	enum chunk_state	 state;
};

struct worker {
	struct par	*p;
	pthread_t	 th;
	bool		 started;
	PGconn		*c;
	struct applier	*ap;
	struct rewrite	*rw;
	struct chunk	*job;		/* NULL: idle */
};

struct par {
	struct run	*r;
	struct applier	*main;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct worker	*w;
	int		 nw;
	struct chunk	**ring;		/* handed out, not yet reaped, by seq */
	size_t		 nring;
	uint64_t	 next_seq, committed_seq;
	bool		 abort;		/* a chunk failed: the later roll back */
	bool		 quit;
	char		*why;		/* the first failure, for the log */
	struct relcache	*known;		/* source relations, as last seen */
	struct relclass	*cls;
	size_t		 ncls;
	uint64_t	 early, chunks;
	uint64_t	 fail_segno;	/* tests: this chunk fails once */
	void		(*committed)(void *, const struct state_marker *,
			    uint64_t, uint64_t);
	void		*arg;
};

/* ---- key hashes ---- */

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

/*
 * The hash of the key of relation rel in tuple t; false when the key is
 * not all there (no key columns, a value left out as unchanged TOAST).
 */
static bool
key_hash(const struct ls_relation *rel, const struct ls_tuple *t,
    uint64_t *out)
{
	uint64_t h = mix(0xcbf29ce484222325ULL, &rel->oid, sizeof(rel->oid));
	uint16_t i;
	bool any = false;

	for (i = 0; i < rel->ncols; i++) {
		if (!(rel->cols[i].flags & LS_COL_KEY))
			continue;
		if (i >= t->ncols || t->vals[i].kind == LS_VAL_UNCHANGED)
			return false;
		h = mix(h, &t->vals[i].kind, 1);
		h = mix(h, &t->vals[i].len, sizeof(t->vals[i].len));
		if (t->vals[i].data != NULL)
			h = mix(h, t->vals[i].data, t->vals[i].len);
		any = true;
	}
	h ^= h >> 31;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	*out = h != 0 ? h : 1;
	return any;
}

static bool
keyset_has(const struct keyset *k, uint64_t h)
{
	size_t i;

	if (k->cap == 0)
		return false;
	for (i = h & (k->cap - 1); k->v[i] != 0; i = (i + 1) & (k->cap - 1))
		if (k->v[i] == h)
			return true;
	return false;
}

static int
keyset_add(struct keyset *k, uint64_t h)
{
	size_t i, j;

	if ((k->n + 1) * 2 > k->cap) {
		struct keyset bigger = { NULL, k->cap ? k->cap * 2 : 1024, 0 };
		if ((bigger.v = calloc(bigger.cap, sizeof(*bigger.v))) == NULL)
			return LS_ERR_NOMEM;
		for (j = 0; j < k->cap; j++)
			if (k->v[j] != 0)
				(void)keyset_add(&bigger, k->v[j]);
		free(k->v);
		*k = bigger;
	}
	for (i = h & (k->cap - 1); k->v[i] != 0; i = (i + 1) & (k->cap - 1))
		if (k->v[i] == h)
			return 0;
	k->v[i] = h;
	k->n++;
	return 0;
}

/* ---- chunks ---- */

static void
chunk_free(struct chunk *ch)
{
	if (ch == NULL)
		return;
	if (ch->it.fd >= 0)
		close(ch->it.fd);
	free(ch->it.errmsg);
	free(ch->early);
	free(ch->keys.v);
	free(ch->opaque);
	free(ch);
}

/* Does a chunk still in flight touch this key, or this relation opaquely? */
static bool
in_flight(const struct par *p, uint32_t relid, uint64_t h)
{
	size_t i, k;

	for (i = 0; i < p->nring; i++) {
		const struct chunk *ch = p->ring[i];
		if (ch->state == CH_COMMITTED)
			continue;
		for (k = 0; k < ch->nopaque; k++)
			if (ch->opaque[k] == relid)
				return true;
		if (h != 0 && keyset_has(&ch->keys, h))
			return true;
	}
	return false;
}

/* The relation's class, asked of the main applier once per run. */
static int
class_of(struct par *p, const struct ls_relation *rel)
{
	struct relclass *bigger;
	char *err = NULL;
	size_t i;
	int cls;

	for (i = 0; i < p->ncls; i++)
		if (p->cls[i].relid == rel->oid)
			return p->cls[i].cls;
	if (strcmp(rel->schema, "logship") == 0 ||
	    !rewrite_includes(p->r->rw, rel->schema, rel->name))
		cls = APPLY_PAR_IGNORED;	/* never reaches the target */
	else if (applier_parallel_class(p->main, rel->oid, &cls, &err) != 0) {
		log_debug("restore", "parallel apply: %s.%s applied in order: %s",
		    rel->schema, rel->name, err ? err : "?");
		cls = APPLY_PAR_NO;
	}
	free(err);
	if ((bigger = realloc(p->cls, (p->ncls + 1) * sizeof(*bigger))) != NULL) {
		p->cls = bigger;
		p->cls[p->ncls].relid = rel->oid;
		p->cls[p->ncls++].cls = cls;
	}
	return cls;
}

/* What the dispatcher reads of one change. */
struct cinfo {
	uint32_t	 relid;
	char		 kind;
	bool		 known;		/* every key it names is known */
	bool		 two;		/* h2: the old key of a key change */
	uint64_t	 h1, h2;
};

struct scan {
	struct cinfo	*c;
	size_t		 n, cap;
	uint32_t	*moved;		/* relations with a key change */
	size_t		 nmoved;
	bool		 barrier;
	const char	*why;		/* of the barrier (debug log) */
};

static bool
has_relid(const uint32_t *v, size_t n, uint32_t relid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == relid)
			return true;
	return false;
}

static int
add_relid(uint32_t **v, size_t *n, uint32_t relid)
{
	uint32_t *bigger;

	if (has_relid(*v, *n, relid))
		return 0;
	if ((bigger = realloc(*v, (*n + 1) * sizeof(*bigger))) == NULL)
		return LS_ERR_NOMEM;
	*v = bigger;
	bigger[(*n)++] = relid;
	return 0;
}

static int
scan_change(struct scan *sc, const struct relcache *rels,
    const struct ls_change *ch)
{
	const struct ls_relation *rel = relcache_get(rels, ch->relid);
	struct cinfo ci = { ch->relid, ch->kind, false, false, 0, 0 };

	if (ch->kind == LS_CHANGE_TRUNCATE) {
		sc->barrier = true;
		sc->why = "TRUNCATE";
		return 0;
	}
	if (sc->n >= PAR_MAX_CHANGES) {
		sc->barrier = true;
		sc->why = "too many changes";
		return 0;
	}
	if (rel != NULL) {
		if (ch->kind == LS_CHANGE_INSERT)
			ci.known = key_hash(rel, &ch->new, &ci.h1);
		else if (ch->kind == LS_CHANGE_DELETE)
			ci.known = ch->old_kind != LS_OLD_NONE &&
			    key_hash(rel, &ch->old, &ci.h1);
		else {
			ci.known = key_hash(rel, &ch->new, &ci.h1);
			if (ch->old_kind != LS_OLD_NONE) {
				ci.two = true;
				ci.known = ci.known && key_hash(rel, &ch->old,
				    &ci.h2);
			}
			if (ch->old_kind == LS_OLD_KEY && add_relid(&sc->moved,
			    &sc->nmoved, ch->relid) != 0)
				return LS_ERR_NOMEM;
		}
	}
	if (sc->n == sc->cap) {
		struct cinfo *bigger;
		sc->cap = sc->cap ? sc->cap * 2 : 1024;
		if ((bigger = realloc(sc->c, sc->cap * sizeof(*bigger))) == NULL)
			return LS_ERR_NOMEM;
		sc->c = bigger;
	}
	sc->c[sc->n++] = ci;
	return 0;
}

/* Is rel as a definition known before (NULL: none known) said? */
static bool
same_shape(const struct ls_relation *was, const struct ls_relation *rel)
{
	uint16_t i;

	if (was == NULL)
		return true;
	if (was->replident != rel->replident || was->ncols != rel->ncols ||
	    strcmp(was->schema, rel->schema) != 0 ||
	    strcmp(was->name, rel->name) != 0)
		return false;
	for (i = 0; i < rel->ncols; i++)
		if (strcmp(was->cols[i].name, rel->cols[i].name) != 0 ||
		    was->cols[i].type_oid != rel->cols[i].type_oid ||
		    was->cols[i].typmod != rel->cols[i].typmod ||
		    was->cols[i].flags != rel->cols[i].flags)
			return false;
	return true;
}

/*
 * Read the segment once: its relations (to on_rel), each change's keys,
 * and whether it is a barrier.
 */
static int
scan_segment(struct par *p, const struct prefetch_item *it,
    struct relcache *rels, struct scan *sc,
    int (*on_rel)(void *, const struct ls_relation *), void *arg,
    char **errmsg)
{
	struct segment_reader *rd = NULL;
	struct ls_record rec;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "segment %016" PRIx64, it->segno);
	if ((rc = segment_reader_open(it->fd, name, p->r->keyp, &rd,
	    errmsg)) != 0)
		return rc;
	while (!sc->barrier && (rc = segment_reader_next(rd, &rec,
	    errmsg)) == 1) {
		rc = 0;
		switch (rec.kind) {
		case LS_REC_RELATION:
			if (!same_shape(relcache_get(rels, rec.u.rel.oid),
			    &rec.u.rel) || !same_shape(relcache_get(p->known,
			    rec.u.rel.oid), &rec.u.rel)) {
				sc->barrier = true;
				sc->why = "a relation changed its shape";
			} else if (relcache_put(rels, &rec.u.rel) != 0 ||
			    relcache_put(p->known, &rec.u.rel) != 0)
				rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			else
				rc = on_rel(arg, &rec.u.rel);
			break;
		case LS_REC_CHANGE:
			if (scan_change(sc, rels, &rec.u.change) != 0)
				rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			break;
		case LS_REC_MESSAGE:
			if ((rec.u.msg.transactional && strcmp(rec.u.msg.prefix,
			    LS_DDL_MESSAGE) == 0) || (!rec.u.msg.transactional &&
			    strcmp(rec.u.msg.prefix, LS_TABLES_MESSAGE) == 0)) {
				sc->barrier = true;
				sc->why = rec.u.msg.transactional ? "DDL" :
				    "the published tables changed";
			}
			break;
		default:
			break;
		}
		if (rc != 0)
			break;
	}
	segment_reader_free(rd);
	return rc;
}

/* Decide early or ordered for each change; the chunk's keys for later. */
static int
classify(struct par *p, const struct relcache *rels, const struct scan *sc,
    struct chunk *ch)
{
	size_t i;

	if ((ch->early = calloc(sc->n / 8 + 1, 1)) == NULL)
		return LS_ERR_NOMEM;
	ch->nchanges = sc->n;
	for (i = 0; i < sc->n; i++) {
		const struct cinfo *ci = &sc->c[i];
		const struct ls_relation *rel = relcache_get(rels, ci->relid);
		int cls = rel != NULL ? class_of(p, rel) : APPLY_PAR_NO;
		bool early = false;

		if (cls == APPLY_PAR_IGNORED)
			early = true;
		else if (cls == APPLY_PAR_INSERTS)
			early = ci->kind == LS_CHANGE_INSERT;
		else if (cls == APPLY_PAR_KEYED) {
			early = ci->known &&
			    !has_relid(sc->moved, sc->nmoved, ci->relid) &&
			    !in_flight(p, ci->relid, ci->h1) &&
			    !(ci->two && in_flight(p, ci->relid, ci->h2));
			/* the chunks after this one must not pass these keys */
			if (!ci->known) {
				if (add_relid(&ch->opaque, &ch->nopaque,
				    ci->relid) != 0)
					return LS_ERR_NOMEM;
			} else if (keyset_add(&ch->keys, ci->h1) != 0 ||
			    (ci->two && keyset_add(&ch->keys, ci->h2) != 0))
				return LS_ERR_NOMEM;
		}
		if (early) {
			ch->early[i / 8] |= (uint8_t)(1u << (i % 8));
			p->early++;
		}
	}
	return 0;
}

/* Forget chunks at the head of the ring that have committed. */
static void
reap(struct par *p)
{
	size_t k = 0, i;

	while (k < p->nring && p->ring[k]->state == CH_COMMITTED)
		chunk_free(p->ring[k++]);
	for (i = k; i < p->nring; i++)
		p->ring[i - k] = p->ring[i];
	p->nring -= k;
}

/* ---- workers ---- */

static bool
is_early(const struct chunk *ch, size_t i)
{
	return i < ch->nchanges && (ch->early[i / 8] >> (i % 8)) & 1;
}

/*
 * One pass over the chunk's segment: the early changes, or the ordered
 * ones and the sequences (tracking the last transaction for the marker).
 */
static int
pass(struct worker *w, struct chunk *ch, bool early, uint64_t *end_lsn,
    int64_t *commit_time, uint64_t *txns, char **errmsg)
{
	struct run *r = w->p->r;
	struct segment_reader *rd = NULL;
	struct ls_record rec;
	uint64_t lsn = 0;
	uint32_t xid = 0;
	int64_t when = 0;
	size_t idx = 0;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "segment %016" PRIx64, ch->it.segno);
	if ((rc = segment_reader_open(ch->it.fd, name, r->keyp, &rd,
	    errmsg)) != 0)
		return rc;
	if (!applier_in_batch(w->ap) && (rc = applier_begin(w->ap,
	    errmsg)) != 0) {
		segment_reader_free(rd);
		return rc;
	}
	while ((rc = segment_reader_next(rd, &rec, errmsg)) == 1) {
		rc = 0;
		switch (rec.kind) {
		case LS_REC_RELATION:
			rc = rewrite_relation(w->rw, w->ap, &rec.u.rel, errmsg);
			break;
		case LS_REC_BEGIN:
			lsn = rec.u.txn.end_lsn;
			xid = rec.u.txn.xid;
			when = rec.u.txn.commit_time;
			applier_context(w->ap, ch->it.segno, rec.u.txn.commit_lsn,
			    xid);
			break;
		case LS_REC_CHANGE:
			if (is_early(ch, idx++) == early)
				rc = rewrite_change(w->rw, w->ap, &rec.u.change,
				    lsn, xid, errmsg);
			break;
		case LS_REC_SEQUENCE:
			if (!early)
				rc = rewrite_sequence(w->rw, w->ap, &rec.u.seq,
				    errmsg);
			break;
		case LS_REC_COMMIT:
			if (!early) {
				*end_lsn = rec.u.txn.end_lsn;
				*commit_time = when;
				(*txns)++;
			}
			break;
		default:
			break;
		}
		if (rc != 0)
			break;
	}
	segment_reader_free(rd);
	return rc;
}

/* The chunk's ordered part and commit, once every earlier one committed. */
static int
run_chunk(struct worker *w, struct chunk *ch, char **errmsg)
{
	struct par *p = w->p;
	struct run *r = p->r;
	struct state_marker mk;
	uint64_t end_lsn = 0, txns = 0, rows0 = applier_rows(w->ap);
	int64_t commit_time = 0;
	char sql[512];
	bool aborted;
	int rc;

	if ((rc = pass(w, ch, true, NULL, NULL, NULL, errmsg)) != 0 ||
	    (rc = applier_flush(w->ap, errmsg)) != 0)
		return rc;
	if (p->fail_segno != 0 && p->fail_segno == ch->it.segno) {
		p->fail_segno = 0;	/* tests: the fallback to serial apply */
		return ls_errf(errmsg, LS_ERR_PG, "failing on purpose "
		    "(LOGSHIP_TEST_PARALLEL_FAIL)");
	}
	pthread_mutex_lock(&p->mu);
	while (!p->abort && p->committed_seq + 1 != ch->seq)
		pthread_cond_wait(&p->cv, &p->mu);
	aborted = p->abort;
	mk = r->mk;	/* as the chunk before left it */
	pthread_mutex_unlock(&p->mu);
	if (aborted)
		return LS_ERR_END;
	if ((rc = pass(w, ch, false, &end_lsn, &commit_time, &txns,
	    errmsg)) != 0)
		return rc;
	mk.segno = ch->it.segno;
	memcpy(mk.seg_sha, ch->it.sha, 32);
	if (txns > 0) {
		mk.end_lsn = end_lsn;
		mk.commit_time = commit_time;
		mk.txns += txns;
	}
	if ((rc = target_marker_sql(w->c, &mk, sql, sizeof(sql))) != 0)
		return ls_errf(errmsg, rc, "target: the marker does not fit");
	if ((rc = applier_commit(w->ap, sql, NULL, errmsg)) != 0)
		return rc;
	pthread_mutex_lock(&p->mu);
	crashpoint("restore-after-target-commit");	/* before LMDB's */
	r->mk = mk;
	rc = state_put_marker(r->state, &mk, errmsg);
	p->committed_seq = ch->seq;
	ch->state = CH_COMMITTED;
	p->chunks++;
	p->committed(p->arg, &mk, txns, applier_rows(w->ap) - rows0);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct par *p = w->p;
	struct chunk *ch;
	char *err;
	bool skip;
	int rc;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->quit && w->job == NULL)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		ch = w->job;
		skip = p->abort;
		pthread_mutex_unlock(&p->mu);
		err = NULL;
		rc = skip ? LS_ERR_END : run_chunk(w, ch, &err);
		if (rc != 0 && applier_in_batch(w->ap))
			applier_rollback(w->ap);
		pthread_mutex_lock(&p->mu);
		if (rc != 0 && ch->state != CH_COMMITTED) {
			ch->state = CH_FAILED;
			if (!p->abort && rc != LS_ERR_END) {
				log_info("restore", "parallel apply: segment %016"
				    PRIx64 " failed (%s); it and the segments "
				    "after it are applied in order",
				    ch->it.segno, err ? err : ls_strerror(rc));
			}
			p->abort = true;
		} else if (rc != 0) {
			/* committed, but LMDB could not follow: stop too */
			p->abort = true;
			if (p->why == NULL && err != NULL)
				p->why = strdup(err);
		}
		w->job = NULL;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		free(err);
	}
	return NULL;
}

/* ---- the dispatcher's side ---- */

static int
worker_start(struct par *p, struct worker *w, char **errmsg)
{
	int rc;

	w->p = p;
	if ((rc = target_connect(p->r->o->target, &w->c, errmsg)) != 0 ||
	    (rc = restore_session_setup(w->c, errmsg)) != 0 ||
	    (rc = applier_new(w->c, &w->ap, errmsg)) != 0)
		return rc;
	applier_create_missing(w->ap, base_manifest_ddl(p->r->m));
	if ((w->rw = rewrite_new(p->r->o, p->r->state)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = rewrite_load_filters(w->rw, p->r->m, errmsg)) != 0)
		return rc;
	if (pthread_create(&w->th, NULL, worker_main, w) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "cannot start a thread");
	w->started = true;
	return 0;
}

int
par_new(struct run *r, struct applier *main, int n,
    void (*committed)(void *, const struct state_marker *, uint64_t,
    uint64_t), void *arg, struct par **out, char **errmsg)
{
	struct par *p = calloc(1, sizeof(*p));
	const char *crash;
	int i, rc = 0;

	*out = NULL;
	if (p == NULL || (p->w = calloc((size_t)n, sizeof(*p->w))) == NULL ||
	    (p->ring = calloc((size_t)n, sizeof(*p->ring))) == NULL) {
		if (p != NULL)
			free(p->w);
		free(p);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	if ((p->known = relcache_new()) == NULL) {
		free(p->ring);
		free(p->w);
		free(p);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	p->r = r;
	p->main = main;
	p->committed = committed;
	p->arg = arg;
	if ((crash = getenv("LOGSHIP_TEST_PARALLEL_FAIL")) != NULL)
		p->fail_segno = strtoull(crash, NULL, 16);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (i = 0; i < n && rc == 0; i++) {
		p->nw++;
		rc = worker_start(p, &p->w[i], errmsg);
	}
	if (rc != 0) {
		par_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void
par_free(struct par *p)
{
	size_t i;
	int k;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	p->abort = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (k = 0; k < p->nw; k++) {
		struct worker *w = &p->w[k];
		if (w->started)
			pthread_join(w->th, NULL);
		if (w->ap != NULL && applier_in_batch(w->ap))
			applier_rollback(w->ap);
		applier_free(w->ap);
		rewrite_free(w->rw);
		PQfinish(w->c);
	}
	for (i = 0; i < p->nring; i++)
		chunk_free(p->ring[i]);
	free(p->ring);
	free(p->w);
	free(p->cls);
	relcache_free(p->known);
	free(p->why);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int
par_submit(struct par *p, const struct prefetch_item *it,
    int (*on_rel)(void *, const struct ls_relation *), void *arg,
    bool *taken, char **errmsg)
{
	struct relcache *rels;
	struct scan sc = { 0 };
	struct chunk *ch = NULL;
	struct worker *free_w = NULL;
	int rc, k;

	*taken = false;
	pthread_mutex_lock(&p->mu);
	k = p->abort;
	pthread_mutex_unlock(&p->mu);
	if (it->h.txns == 0 || k)
		return 0;
	if ((rels = relcache_new()) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	rc = scan_segment(p, it, rels, &sc, on_rel, arg, errmsg);
	if (rc == 0 && sc.barrier)
		log_debug("restore", "segment %016" PRIx64 " applied in order: %s",
		    it->segno, sc.why);
	if (rc != 0 || sc.barrier)
		goto out;
	if ((ch = calloc(1, sizeof(*ch))) == NULL) {
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		goto out;
	}
	ch->it = *it;
	ch->it.errmsg = NULL;
	pthread_mutex_lock(&p->mu);
	reap(p);
	rc = classify(p, rels, &sc, ch);
	pthread_mutex_unlock(&p->mu);
	if (rc != 0 || (ch->it.fd = dup(it->fd)) < 0) {
		ch->it.fd = -1;
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory (or descriptors)");
		goto out;
	}
	pthread_mutex_lock(&p->mu);
	for (;;) {
		reap(p);
		for (k = 0; k < p->nw && free_w == NULL; k++)
			if (p->w[k].job == NULL)
				free_w = &p->w[k];
		if ((free_w != NULL && p->nring < (size_t)p->nw) || p->abort)
			break;
		free_w = NULL;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	if (!p->abort) {
		ch->seq = ++p->next_seq;
		ch->state = CH_RUNNING;
		p->ring[p->nring++] = ch;
		free_w->job = ch;
		ch = NULL;
		*taken = true;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
 out:
	chunk_free(ch);
	relcache_free(rels);
	free(sc.c);
	free(sc.moved);
	return rc;
}

int
par_drain(struct par *p, struct prefetch_item **redo, size_t *n,
    char **errmsg)
{
	struct prefetch_item *items = NULL;
	size_t i, k = 0;
	bool busy;
	int j, rc = 0;

	*redo = NULL;
	*n = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (j = 0, busy = false; j < p->nw; j++)
			busy = busy || p->w[j].job != NULL;
		if (!busy)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	reap(p);
	if (p->why != NULL) {
		rc = ls_errf(errmsg, LS_ERR_IO, "%s", p->why);
		free(p->why);
		p->why = NULL;
	}
	if (p->nring > 0 && (items = calloc(p->nring, sizeof(*items))) == NULL)
		rc = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	for (i = 0; i < p->nring; i++) {
		if (items != NULL && p->ring[i]->state == CH_FAILED) {
			items[k++] = p->ring[i]->it;
			p->ring[i]->it.fd = -1;
		}
		chunk_free(p->ring[i]);
	}
	p->nring = 0;
	p->committed_seq = p->next_seq;
	p->abort = false;
	p->ncls = 0;	/* a barrier may change what a table is */
	pthread_mutex_unlock(&p->mu);
	*redo = items;
	*n = k;
	return rc;
}

uint64_t
par_early(const struct par *p)
{
	return p->early;
}

uint64_t
par_chunks(const struct par *p)
{
	return p->chunks;
}

uint64_t
par_folded(const struct par *p)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < p->nw; k++)
		if (p->w[k].ap != NULL)
			n += applier_folded(p->w[k].ap);
	return n;
}

uint64_t
par_missing(const struct par *p)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < p->nw; k++)
		if (p->w[k].ap != NULL)
			n += applier_missing(p->w[k].ap);
	return n;
}
