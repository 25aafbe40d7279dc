/*
 * mirror.c: logship-restore mirror: copy every object of one store that
 * another lacks, checking each before it is written.
 *
 * Objects are immutable, so one the destination holds with the source's
 * size counts as there, and one with another size is an error.  Every
 * object is fetched into a temp file and verified (a segment read through
 * and matched to its name and predecessor, a blob read through and
 * matched to its manifest, logship.json parsed) before put-if-absent
 * writes it.  The order of the puts leaves the destination, whenever a
 * run stops, in a state the source itself has been in:
 *	- a generation's base objects, then its manifest, then its segments
 *	  in numbering order;
 *	- logship.json last, and only if nothing failed, so the destination
 *	  never names a generation whose objects are missing;
 *	- a generation without a manifest is left alone: its base is still
 *	  being written, and a retried base rewrites those objects.
 * logship.json is the one object a store rewrites (the agent names a new
 * generation in it), so a destination's copy naming an older generation
 * of the same store is replaced.  Objects outside generations are copied
 * as they are; unknown ones inside a generation are refused.
 *
 * Workers (--jobs, pool.h) take objects in that order: fetching and
 * verifying run in parallel; a put that must follow another waits for it.
 * Waits only point backwards, so they always end.  A worker that cannot
 * start stops the others after the object they hold; what no worker took
 * is "not tried", and logship.json is held back as after a failure.
 */
#include <sys/stat.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/crashpoint.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/util.h"
#include "format/blob.h"
#include "format/segment.h"
#include "mirror.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "store/store.h"

#define NONE		SIZE_MAX
#define IDENTITY_MAX	65536
#define PROGRESS_US	250000

enum kind {
	K_OTHER,		/* outside any generation: copied as it is */
	K_CHUNK,		/* <gen>/base/t-...: a "copy" blob */
	K_SCHEMA,		/* <gen>/base/pre-data, post-data */
	K_MANIFEST,		/* <gen>/base/manifest */
	K_SEGMENT,		/* <gen>/seg/<segno> */
	K_UNEXPECTED		/* anything else under a generation */
};

enum state {
	S_TODO,
	S_PRESENT,		/* the destination has it */
	S_COPIED,
	S_FAILED,
	S_HELD,			/* not copied: an object it follows failed */
	S_LEFT,			/* for a later run: no manifest yet, vanished */
	S_NSTATES
};

/* A segment's verified header and trailer, for its successor's chain check. */
struct link {
	struct segment_header	h;
	uint8_t			sha[32];
};

struct obj {
	char		*key;
	uint64_t	 size;
	enum kind	 kind;
	size_t		 gen;		/* index in gens, or NONE */
	uint64_t	 segno;
	size_t		 pred;		/* settled before our put, or NONE */
	enum state	 state;
	struct link	*link;		/* segments copied in this run */
};

/* An object a manifest lists, with its trailer. */
struct listed {
	char	*key;
	uint8_t	 sha[32];
};

struct gen {
	char		 id[17];
	size_t		 manifest;	/* index of its manifest, or NONE */
	size_t		 base_left;	/* base objects to copy, unsettled */
	bool		 base_bad;	/* one of them failed or was held */
	struct listed	*listed;	/* sorted by key */
	size_t		 nlisted;
};

/* A store's listing. */
struct keys {
	struct store_entry	*e;
	size_t			 n, cap;
};

struct mirror {
	const struct mirror_opts *o;
	struct obj	*objs;
	size_t		 nobjs;
	struct gen	*gens;
	size_t		 ngens;
	pthread_mutex_t	 lock;		/* states, counters, stderr */
	pthread_cond_t	 settled;
	size_t		 next;		/* next object for a worker */
	size_t		 count[S_NSTATES];
	size_t		 ntodo;		/* objects to copy at the start */
	uint64_t	 todo_bytes, done_bytes, copied_bytes;
	int64_t		 t0, last_progress;
	bool		 tty;
	bool		 line;		/* a progress line is on the terminal */
	char		*ident_text;	/* the source's logship.json */
	size_t		 ident_len;
	json_t		*ident, *dst_ident;
};

/* ---- messages ---- */

static void report(struct mirror *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line to stderr, clearing a progress line first. */
static void
report(struct mirror *m, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	if (m->line)
		fputs("\r\033[K", stderr);
	m->line = false;
	fputs("logship-restore: mirror: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&m->lock);
}

/* Report *err (or a code's name) and free it; returns S_FAILED. */
static enum state
failed(struct mirror *m, int r, char **err)
{
	report(m, "%s", *err != NULL ? *err : ls_strerror(r));
	free(*err);
	*err = NULL;
	return S_FAILED;
}

/*
 * done/total, rate and ETA; the caller holds the lock.  Time goes both
 * per object and per byte, so the ETA takes the mean of the two fractions.
 */
static void
progress(struct mirror *m)
{
	int64_t now = ls_now_us();
	double secs = (double)(now - m->t0) / 1e6, f;
	size_t done = m->ntodo - m->count[S_TODO];
	char eta[32] = "-";

	if (!m->tty || now - m->last_progress < PROGRESS_US)
		return;
	m->last_progress = now;
	f = ((double)done / (double)m->ntodo + (m->todo_bytes > 0 ?
	    (double)m->done_bytes / (double)m->todo_bytes : 1.0)) / 2;
	if (f > 0)
		snprintf(eta, sizeof(eta), "%.0f s", secs * (1 - f) / f);
	fprintf(stderr, "\rmirror: %zu/%zu objects, %.1f/%.1f MB, %.1f MB/s, "
	    "ETA %s\033[K", done, m->ntodo, (double)m->done_bytes / 1e6,
	    (double)m->todo_bytes / 1e6, secs > 0 ?
	    (double)m->done_bytes / secs / 1e6 : 0.0, eta);
	m->line = true;
}

/* ---- names ---- */

static bool
is_hex16(const char *s)
{
	int i;

	for (i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * Length of the base directory that rest ("<dir>/...", after "<gen>/")
 * begins with, "base/" or "base-<lsn:016x>/" (schema/store-layout.md), or 0.
 */
static size_t
base_dir_len(const char *rest)
{
	if (strncmp(rest, "base/", 5) == 0)
		return 5;
	if (strncmp(rest, "base-", 5) == 0 && strlen(rest) > 22 &&
	    is_hex16(rest + 5) && rest[21] == '/')
		return 22;
	return 0;
}

/* What a key names (schema/store-layout.md); *segno for a segment. */
static enum kind
classify(const char *key, uint64_t *segno)
{
	const char *rest = key + 17, *in;
	size_t dl;

	if (strlen(key) <= 17 || key[16] != '/' || !is_hex16(key))
		return K_OTHER;
	if ((dl = base_dir_len(rest)) > 0) {
		in = rest + dl;
		if (strcmp(in, "manifest") == 0)
			return K_MANIFEST;
		if (strcmp(in, "pre-data") == 0 || strcmp(in, "post-data") == 0)
			return K_SCHEMA;
		if (strncmp(in, "t-", 2) == 0)
			return K_CHUNK;
		return K_UNEXPECTED;
	}
	if (strncmp(rest, "seg/", 4) == 0 && strlen(rest + 4) == 16 &&
	    is_hex16(rest + 4) && (*segno = strtoull(rest + 4, NULL, 16)) > 0)
		return K_SEGMENT;
	/* expire's low-water marks: copied as they are, before the rest */
	if (strncmp(rest, "expired/", 8) == 0 && strlen(rest + 8) == 16 &&
	    is_hex16(rest + 8))
		return K_OTHER;
	return K_UNEXPECTED;
}

static bool
is_base(enum kind k)
{
	return k == K_CHUNK || k == K_SCHEMA;
}

static int
phase(enum kind k)
{
	return k == K_MANIFEST ? 1 : k == K_SEGMENT ? 2 : 0;
}

/* Copy order: outside generations; per generation base, manifest, segments. */
static int
obj_cmp(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	int gx = x->kind != K_OTHER, gy = y->kind != K_OTHER, c;

	if (gx != gy)
		return gx - gy;
	if (gx && (c = strncmp(x->key, y->key, 16)) != 0)
		return c;
	if (phase(x->kind) != phase(y->kind))
		return phase(x->kind) - phase(y->kind);
	return strcmp(x->key, y->key);
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_entry *)a)->key,
	    ((const struct store_entry *)b)->key);
}

static int
listed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct listed *)a)->key,
	    ((const struct listed *)b)->key);
}

/* ---- logship.json ---- */

/* Parse a store identity: a JSON object naming a generation. */
static json_t *
ident_parse(const char *text, size_t len, const char *url, char **err)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	const char *gen = NULL;

	if (j == NULL) {
		ls_errf(err, LS_ERR_CORRUPT, "store %s: %s is not JSON: %s "
		    "(line %d)", url, CATALOG_IDENTITY, je.text, je.line);
		return NULL;
	}
	if (json_unpack(j, "{s:s}", "generation", &gen) != 0 ||
	    strlen(gen) != 16 || !is_hex16(gen)) {
		json_decref(j);
		ls_errf(err, LS_ERR_CORRUPT, "store %s: %s names no generation",
		    url, CATALOG_IDENTITY);
		return NULL;
	}
	return j;
}

static const char *
ident_gen(const json_t *j)
{
	return json_string_value(json_object_get(j, "generation"));
}

/* Do two identities agree on field name (both lacking it counts)? */
static bool
ident_same(const json_t *a, const json_t *b, const char *name)
{
	json_t *x = json_object_get(a, name), *y = json_object_get(b, name);

	return (x == NULL && y == NULL) || json_equal(x, y);
}

/* The destination must be empty, or a copy of this store not ahead of it. */
static int
ident_check(struct mirror *m, char **err)
{
	const char *dst = store_url(m->o->dst);

	if (!ident_same(m->ident, m->dst_ident, "database") ||
	    !ident_same(m->ident, m->dst_ident, "created"))
		return ls_errf(err, LS_ERR_INVALID, "store %s holds another "
		    "logship store (its %s has another database or creation "
		    "time); mirror into an empty store or a copy of %s", dst,
		    CATALOG_IDENTITY, store_url(m->o->src));
	if (strcmp(ident_gen(m->dst_ident), ident_gen(m->ident)) > 0)
		return ls_errf(err, LS_ERR_INVALID, "store %s names generation "
		    "%s, newer than the source's %s: are --from and --to the "
		    "wrong way round?", dst, ident_gen(m->dst_ident),
		    ident_gen(m->ident));
	return 0;
}

/* The source's logship.json: it must have one. */
static int
ident_read_src(struct mirror *m, char **err)
{
	struct store *src = m->o->src;
	int r;

	r = store_get_buf(src, CATALOG_IDENTITY, IDENTITY_MAX, &m->ident_text,
	    &m->ident_len, err);
	if (r == LS_ERR_NOTFOUND)
		return ls_errf(err, r, "store %s has no %s: not a logship "
		    "store, or its agent has not started yet", store_url(src),
		    CATALOG_IDENTITY);
	if (r == 0 && (m->ident = ident_parse(m->ident_text, m->ident_len,
	    store_url(src), err)) == NULL)
		r = LS_ERR_CORRUPT;
	return r;
}

/* The destination's logship.json, if it has one. */
static int
ident_read_dst(struct mirror *m, char **err)
{
	struct store *dst = m->o->dst;
	char *text = NULL, *msg = NULL;
	size_t len;
	int r;

	r = store_get_buf(dst, CATALOG_IDENTITY, IDENTITY_MAX, &text, &len,
	    &msg);
	if (r == 0 && (m->dst_ident = ident_parse(text, len, store_url(dst),
	    err)) == NULL)
		r = LS_ERR_CORRUPT;
	else if (r == LS_ERR_NOTFOUND)
		r = 0;
	else if (r != 0) {
		free(*err);
		*err = msg;
		msg = NULL;
	}
	free(msg);
	free(text);
	return r;
}

/* Read and parse both stores' logship.json; check they go together. */
static int
ident_read(struct mirror *m)
{
	char *err = NULL;
	int r;

	if ((r = ident_read_src(m, &err)) == 0 &&
	    (r = ident_read_dst(m, &err)) == 0 && m->dst_ident != NULL)
		r = ident_check(m, &err);
	if (r != 0)
		failed(m, r, &err);
	return r;
}

/*
 * Did the agent only record its new slot's creation LSN since (it writes
 * logship.json again right after creating the slot)?
 */
static bool
slot_recorded(const json_t *dst, const json_t *src)
{
	json_t *x, *y;
	bool same;

	if (json_object_get(dst, "slot_lsn") != NULL ||
	    json_object_get(src, "slot_lsn") == NULL ||
	    strcmp(ident_gen(dst), ident_gen(src)) != 0)
		return false;
	x = json_deep_copy(dst);
	y = json_deep_copy(src);
	json_object_del(y, "slot_lsn");
	same = x != NULL && y != NULL && json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return same;
}

/*
 * Write logship.json: new, replacing one that names an older generation,
 * or one the agent has since completed with its slot's creation LSN.
 */
static enum state
ident_write(struct mirror *m, char **err)
{
	const char *old = NULL;
	int r;

	if (m->dst_ident != NULL &&
	    strcmp((old = ident_gen(m->dst_ident)), ident_gen(m->ident)) >= 0 &&
	    !slot_recorded(m->dst_ident, m->ident)) {
		ls_errf(err, LS_ERR_EXISTS, "store %s: %s differs from the "
		    "source's for the same generation %s; not overwritten",
		    store_url(m->o->dst), CATALOG_IDENTITY, old);
		return S_FAILED;
	}
	r = store_put_buf(m->o->dst, CATALOG_IDENTITY, m->ident_text,
	    m->ident_len, m->dst_ident == NULL, err);
	if (r == LS_ERR_EXISTS)
		ls_errf(err, r, "store %s: %s appeared while mirroring "
		    "(another mirror or agent?); run mirror again",
		    store_url(m->o->dst), CATALOG_IDENTITY);
	if (r != 0)
		return S_FAILED;
	if (m->dst_ident != NULL)
		report(m, "%s: the destination now names generation %s "
		    "(was %s)", CATALOG_IDENTITY, ident_gen(m->ident), old);
	return S_COPIED;
}

/* logship.json goes last, and only when every other object is there. */
static void
ident_finish(struct mirror *m)
{
	char *err = NULL;
	enum state s;

	if (m->dst_ident != NULL && json_equal(m->ident, m->dst_ident)) {
		m->count[S_PRESENT]++;
		return;
	}
	if (m->count[S_FAILED] + m->count[S_HELD] + m->count[S_TODO] > 0) {
		report(m, "%s not %s, so that store %s names no missing "
		    "object", CATALOG_IDENTITY, m->dst_ident != NULL ?
		    "updated" : "written", store_url(m->o->dst));
		m->count[S_HELD]++;
		return;
	}
	if ((s = ident_write(m, &err)) == S_FAILED)
		failed(m, LS_ERR_IO, &err);
	m->count[s]++;
	if (s == S_COPIED)
		m->copied_bytes += m->ident_len;
}

/* ---- listing and planning ---- */

static int
keys_add(void *arg, const struct store_entry *e)
{
	struct keys *k = arg;
	struct store_entry *bigger;

	if (k->n == k->cap) {
		k->cap = k->cap != 0 ? 2 * k->cap : 256;
		if ((bigger = realloc(k->e, k->cap * sizeof(*bigger))) == NULL)
			return LS_ERR_NOMEM;
		k->e = bigger;
	}
	if ((k->e[k->n].key = strdup(e->key)) == NULL)
		return LS_ERR_NOMEM;
	k->e[k->n++].size = e->size;
	return 0;
}

static void
keys_free(struct keys *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->e[i].key);
	free(k->e);
}

/* Every key of st, sorted. */
static int
keys_list(struct mirror *m, struct store *st, struct keys *k)
{
	char *err = NULL;
	int r = store_list_all(st, "", keys_add, k, &err);

	if (r == LS_ERR_NOMEM && err == NULL)
		ls_errf(&err, r, "listing store %s: out of memory",
		    store_url(st));
	if (r != 0)
		failed(m, r, &err);
	else if (k->n > 0)
		qsort(k->e, k->n, sizeof(*k->e), entry_cmp);
	return r;
}

/* Objects from the source's listing (logship.json aside), in copy order. */
static int
objs_build(struct mirror *m, struct keys *src)
{
	struct obj *o;
	size_t i;

	if ((m->objs = calloc(src->n + 1, sizeof(*m->objs))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < src->n; i++) {
		if (strcmp(src->e[i].key, CATALOG_IDENTITY) == 0)
			continue;
		o = &m->objs[m->nobjs++];
		o->key = src->e[i].key;
		src->e[i].key = NULL;
		o->size = src->e[i].size;
		o->kind = classify(o->key, &o->segno);
		o->gen = o->pred = NONE;
	}
	qsort(m->objs, m->nobjs, sizeof(*m->objs), obj_cmp);
	return 0;
}

/* One struct gen per generation; objects point at theirs. */
static int
gens_build(struct mirror *m)
{
	struct gen *g = NULL;
	size_t i;

	if ((m->gens = calloc(m->nobjs + 1, sizeof(*m->gens))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < m->nobjs; i++) {
		if (m->objs[i].kind == K_OTHER)
			continue;
		if (g == NULL || strncmp(g->id, m->objs[i].key, 16) != 0) {
			g = &m->gens[m->ngens++];
			memcpy(g->id, m->objs[i].key, 16);
			g->manifest = NONE;
		}
		m->objs[i].gen = (size_t)(g - m->gens);
		if (m->objs[i].kind == K_MANIFEST)
			g->manifest = i;
	}
	return 0;
}

/* Mark what the destination has, and what it has with another size. */
static void
mark_present(struct mirror *m, const struct keys *dst)
{
	struct store_entry k, *e;
	struct obj *o;
	size_t i;

	for (i = 0; i < m->nobjs; i++) {
		o = &m->objs[i];
		k.key = o->key;
		if (dst->n == 0 || (e = bsearch(&k, dst->e, dst->n, sizeof(*e),
		    entry_cmp)) == NULL)
			continue;
		if (e->size == o->size)
			o->state = S_PRESENT;
		else {
			o->state = S_FAILED;
			report(m, "%s: store %s holds %" PRIu64 " bytes of "
			    "it, store %s %" PRIu64 "; objects are never "
			    "overwritten: the stores differ", o->key,
			    store_url(m->o->dst), e->size,
			    store_url(m->o->src), o->size);
		}
	}
}

/* Refuse unknown objects under a generation; leave unfinished bases. */
static void
mark_refused(struct mirror *m)
{
	struct obj *o;
	size_t i, left = 0;

	for (i = 0; i < m->nobjs; i++) {
		o = &m->objs[i];
		if (o->state != S_TODO)
			continue;
		if (o->kind == K_UNEXPECTED) {
			o->state = S_FAILED;
			report(m, "%s: unexpected object in generation "
			    "%.16s of store %s; mirror copies only logship's "
			    "objects there", o->key, o->key,
			    store_url(m->o->src));
		} else if (o->gen != NONE && m->gens[o->gen].manifest == NONE) {
			o->state = S_LEFT;
			left++;
		}
	}
	if (left > 0)
		report(m, "%zu object(s) of generations without a base "
		    "manifest (a base snapshot still being written) left for "
		    "a later run", left);
}

/* Segments follow their manifest and each other; a gap stops them. */
static void
link_segments(struct mirror *m)
{
	struct obj *o, *p;
	size_t i;

	for (i = 0; i < m->nobjs; i++) {
		o = &m->objs[i];
		if (o->kind != K_SEGMENT)
			continue;
		p = i > 0 ? &m->objs[i - 1] : NULL;
		if (p != NULL && p->kind == K_SEGMENT && p->gen == o->gen) {
			o->pred = i - 1;
			if (o->state == S_TODO && o->segno != p->segno + 1) {
				o->state = S_FAILED;
				report(m, "%s: follows segment %016" PRIx64
				    " in store %s: a gap in the numbering "
				    "(run verify on it)", o->key, p->segno,
				    store_url(m->o->src));
			}
		} else
			o->pred = m->gens[o->gen].manifest;
	}
}

/* Hold back what follows a failure; count what is left to do. */
static void
mark_held(struct mirror *m)
{
	struct obj *o;
	struct gen *g;
	size_t i;

	for (i = 0; i < m->nobjs; i++) {
		o = &m->objs[i];
		g = o->gen != NONE ? &m->gens[o->gen] : NULL;
		if (o->state == S_TODO &&
		    ((o->kind == K_MANIFEST && g->base_bad) ||
		    (o->pred != NONE && m->objs[o->pred].state != S_TODO &&
		    m->objs[o->pred].state != S_PRESENT)))
			o->state = S_HELD;
		if (g != NULL && is_base(o->kind) && o->state == S_TODO)
			g->base_left++;
		if (g != NULL && is_base(o->kind) && o->state != S_TODO &&
		    o->state != S_PRESENT)
			g->base_bad = true;
		m->count[o->state]++;
		if (o->state == S_TODO)
			m->todo_bytes += o->size;
	}
	m->ntodo = m->count[S_TODO];
}

static int
listed_add(struct gen *g, const struct base_chunk *c)
{
	struct listed *l = &g->listed[g->nlisted];

	if ((l->key = strdup(c->key)) == NULL)
		return LS_ERR_NOMEM;
	memcpy(l->sha, c->sha256, 32);
	g->nlisted++;
	return 0;
}

/* Add what one manifest lists to g->listed. */
static int
listed_add_manifest(struct gen *g, const struct base_manifest *bm)
{
	struct base_table t;
	struct base_chunk c;
	struct listed *bigger;
	size_t i, k, n = base_manifest_nchunks(bm) + 3;
	int r = 0;

	if ((bigger = realloc(g->listed, (g->nlisted + n) *
	    sizeof(*bigger))) == NULL)
		return LS_ERR_NOMEM;
	g->listed = bigger;
	for (i = 0; r == 0 && base_manifest_table(bm, i, &t) == 0; i++)
		for (k = 0; r == 0 && k < t.nchunks; k++)
			if ((r = base_manifest_chunk(bm, i, k, &c)) == 0)
				r = listed_add(g, &c);
	if (r == 0 && base_manifest_section(bm, "pre_data", &c) == 0)
		r = listed_add(g, &c);
	if (r == 0 && base_manifest_section(bm, "post_data", &c) == 0)
		r = listed_add(g, &c);
	if (r == 0 && base_manifest_section(bm, "large_objects", &c) == 0)
		r = listed_add(g, &c);
	return r;
}

/* The trailers every manifest of a generation lists, to check blobs against. */
static int
listed_read(struct mirror *m, struct gen *g, char **err)
{
	struct base_manifest *bm = NULL;
	char (*names)[24] = NULL;
	size_t n = 0, i;
	int r;

	if ((r = catalog_bases(m->o->src, g->id, &names, &n, err)) != 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		r = base_manifest_read_named(m->o->src, g->id, names[i],
		    m->o->key, &bm, err);
		if (r == LS_ERR_NOTFOUND) {	/* a base still being written */
			free(*err);
			*err = NULL;
			r = 0;
			continue;
		}
		if (r == 0 && (r = listed_add_manifest(g, bm)) != 0)
			ls_errf(err, r, "%s/%s/manifest (store %s): %s", g->id,
			    names[i], store_url(m->o->src), r == LS_ERR_NOMEM ?
			    "out of memory" : "an entry does not parse");
		base_manifest_free(bm);
		bm = NULL;
	}
	free(names);
	if (g->nlisted > 0)
		qsort(g->listed, g->nlisted, sizeof(*g->listed), listed_cmp);
	return r;
}

/* Read the manifests of generations with base objects to copy. */
static void
manifests_read(struct mirror *m)
{
	struct obj *o;
	char *err = NULL;
	size_t i, last = NONE;

	for (i = 0; i < m->nobjs; i++) {
		o = &m->objs[i];
		if (!is_base(o->kind) || o->state != S_TODO || o->gen == last)
			continue;
		last = o->gen;
		if (listed_read(m, &m->gens[o->gen], &err) != 0) {
			m->objs[m->gens[o->gen].manifest].state =
			    failed(m, LS_ERR_CORRUPT, &err);
		}
	}
}

/* List both stores and decide, for each object, what to do. */
static int
plan(struct mirror *m)
{
	struct keys src = { 0 }, dst = { 0 };
	int r;

	if ((r = keys_list(m, m->o->src, &src)) == 0 &&
	    (r = keys_list(m, m->o->dst, &dst)) == 0 &&
	    ((r = objs_build(m, &src)) != 0 || (r = gens_build(m)) != 0))
		report(m, "out of memory");
	if (r == 0) {
		mark_present(m, &dst);
		mark_refused(m);
		link_segments(m);
		manifests_read(m);
		mark_held(m);
	}
	keys_free(&src);
	keys_free(&dst);
	return r;
}

/* ---- copying ---- */

/* The next object to copy, or NONE. */
static size_t
take(struct mirror *m, const struct pool *pool)
{
	size_t i = NONE;

	if (pool_stopping(pool))
		return NONE;
	pthread_mutex_lock(&m->lock);
	while (m->next < m->nobjs && m->objs[m->next].state != S_TODO)
		m->next++;
	if (m->next < m->nobjs)
		i = m->next++;
	pthread_mutex_unlock(&m->lock);
	return i;
}

/* Record object i's outcome and wake the workers waiting for it. */
static void
settle(struct mirror *m, size_t i, enum state s)
{
	struct obj *o = &m->objs[i];
	struct gen *g = o->gen != NONE ? &m->gens[o->gen] : NULL;

	pthread_mutex_lock(&m->lock);
	o->state = s;
	m->count[S_TODO]--;
	m->count[s]++;
	m->done_bytes += o->size;
	if (s == S_COPIED)
		m->copied_bytes += o->size;
	if (g != NULL && is_base(o->kind)) {
		g->base_left--;
		if (s != S_COPIED && s != S_PRESENT)
			g->base_bad = true;
	}
	progress(m);
	pthread_cond_broadcast(&m->settled);
	pthread_mutex_unlock(&m->lock);
}

/* Wait until what object i follows is settled; false if it is not there. */
static bool
wait_turn(struct mirror *m, size_t i)
{
	const struct obj *o = &m->objs[i], *p;
	struct gen *g = o->gen != NONE ? &m->gens[o->gen] : NULL;
	bool ok;

	pthread_mutex_lock(&m->lock);
	p = o->pred != NONE ? &m->objs[o->pred] : NULL;
	while ((p != NULL && p->state == S_TODO) ||
	    (o->kind == K_MANIFEST && g->base_left > 0))
		pthread_cond_wait(&m->settled, &m->lock);
	ok = (p == NULL || p->state == S_COPIED || p->state == S_PRESENT) &&
	    !(o->kind == K_MANIFEST && g->base_bad);
	pthread_mutex_unlock(&m->lock);
	return ok;
}

/* A blob's trailer must be the one its manifest lists (if it lists it). */
static int
check_listed(const struct gen *g, const char *key, const uint8_t sha[32],
    char **err)
{
	struct listed k = { .key = (char *)key }, *l;

	if (g->nlisted == 0 || (l = bsearch(&k, g->listed, g->nlisted,
	    sizeof(*l), listed_cmp)) == NULL)
		return 0;
	if (memcmp(l->sha, sha, 32) != 0)
		return ls_errf(err, LS_ERR_CORRUPT, "%s: sha256 differs from "
		    "the manifest's (replaced or corrupt object)", key);
	return 0;
}

/* Read a segment through; its header must match its name. */
static int
check_segment(struct mirror *m, struct obj *o, int fd, char **err)
{
	int r;

	if ((o->link = calloc(1, sizeof(*o->link))) == NULL)
		return ls_errf(err, LS_ERR_NOMEM, "out of memory");
	if ((r = segment_verify_fd(fd, o->key, m->o->key, &o->link->h,
	    o->link->sha, err)) != 0)
		return r;
	if (o->link->h.segno != o->segno ||
	    strncmp(o->link->h.generation, o->key, 16) != 0)
		return ls_errf(err, LS_ERR_CORRUPT, "%s: its header says "
		    "segment %016" PRIx64 " of generation %s: misplaced object",
		    o->key, o->link->h.segno, o->link->h.generation);
	return 0;
}

/* Verify a fetched object by its kind. */
static int
check_object(struct mirror *m, struct obj *o, int fd, char **err)
{
	const struct gen *g = o->gen != NONE ? &m->gens[o->gen] : NULL;
	uint8_t sha[32];
	struct stat sb = { .st_size = -1 };
	int r;

	if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != o->size)
		return ls_errf(err, LS_ERR_IO, "%s: listed with %" PRIu64
		    " bytes, read %lld: changed while mirroring?", o->key,
		    o->size, (long long)sb.st_size);
	switch (o->kind) {
	case K_SEGMENT:
		return check_segment(m, o, fd, err);
	case K_CHUNK:
	case K_SCHEMA:
		r = blob_read_fd(fd, o->key, m->o->key, o->kind == K_CHUNK ?
		    "copy" : "schema", NULL, NULL, sha, err);
		return r != 0 ? r : check_listed(g, o->key, sha, err);
	case K_MANIFEST:
		return blob_read_fd(fd, o->key, m->o->key, "manifest", NULL,
		    NULL, NULL, err);
	default:
		return 0;
	}
}

/* Segment i must chain onto its predecessor, copied now or already there. */
static int
check_chain(struct mirror *m, size_t i, char **err)
{
	struct obj *o = &m->objs[i], *p;
	struct link there, *pl;
	int r = 0;

	if (o->pred == NONE || (p = &m->objs[o->pred])->kind != K_SEGMENT) {
		if (o->segno == 1 && o->link->h.has_prev)
			r = ls_errf(err, LS_ERR_CHAIN, "%s: the first segment "
			    "names a predecessor", o->key);
		return r;
	}
	if ((pl = p->link) == NULL) {
		pl = &there;
		if ((r = catalog_read_header(m->o->dst, m->gens[o->gen].id,
		    p->segno, &there.h, err)) != 0 ||
		    (r = catalog_read_trailer(m->o->dst, m->gens[o->gen].id,
		    p->segno, p->size, there.sha, err)) != 0)
			return r;
	}
	r = segment_check_chain(&pl->h, pl->sha, &o->link->h, err);
	free(p->link);		/* o is the one reader of p->link */
	p->link = NULL;
	return r;
}

/* put-if-absent; an object that appeared meanwhile must have our size. */
static enum state
put(struct mirror *m, const struct obj *o, int fd, char **err)
{
	uint64_t size;
	int r = store_put_if_absent(m->o->dst, o->key, fd, err);

	if (r == 0)
		return S_COPIED;
	if (r != LS_ERR_EXISTS ||
	    store_head(m->o->dst, o->key, &size, err) != 0)
		return S_FAILED;
	if (size == o->size)
		return S_PRESENT;
	ls_errf(err, LS_ERR_EXISTS, "%s: appeared in store %s with %" PRIu64
	    " bytes while mirroring, the source has %" PRIu64, o->key,
	    store_url(m->o->dst), size, o->size);
	return S_FAILED;
}

/* Fetch, verify, wait for the turn, write: the outcome for object i. */
static enum state
copy_one(struct mirror *m, size_t i)
{
	struct obj *o = &m->objs[i];
	char *err = NULL;
	enum state s;
	int fd = -1, r;

	r = catalog_fetch(m->o->src, o->key, &fd, &err);
	if (r == LS_ERR_NOTFOUND && o->kind == K_OTHER) {
		report(m, "%s: gone from store %s while mirroring; not copied",
		    o->key, store_url(m->o->src));
		s = S_LEFT;
	} else if (r != 0)
		s = failed(m, r, &err);
	else if ((r = check_object(m, o, fd, &err)) != 0) {
		ls_errprefix(&err, r, "store %s", store_url(m->o->src));
		s = failed(m, r, &err);
	}
	else if (!wait_turn(m, i))
		s = S_HELD;
	else if (o->kind == K_SEGMENT && (r = check_chain(m, i, &err)) != 0)
		s = failed(m, r, &err);
	else if ((s = put(m, o, fd, &err)) == S_FAILED)
		failed(m, LS_ERR_IO, &err);
	else
		crashpoint("mirror-after-copy");
	if (fd >= 0)
		close(fd);
	free(err);
	return s;
}

/* A pool worker; an object's failure is its state, not the worker's. */
static int
worker(const struct pool *pool, void *arg, char **errmsg)
{
	struct mirror *m = arg;
	size_t i;

	while ((i = take(m, pool)) != NONE)
		settle(m, i, copy_one(m, i));
	return 0;
}

/*
 * Run the workers until every object is settled; if one cannot start, the
 * others stop after the object they hold, and the rest stay S_TODO.
 */
static void
copy_all(struct mirror *m)
{
	size_t n = m->ntodo < (size_t)m->o->jobs ? m->ntodo :
	    (size_t)m->o->jobs;
	char *err = NULL;
	int r;

	if (n > 0 && (r = pool_run((int)n, worker, m, &err)) != 0)
		report(m, "%s", err != NULL ? err : ls_strerror(r));
	free(err);
	if (m->line)
		fputs("\r\033[K", stderr);
	m->line = false;
}

/* ---- the command ---- */

/* The summary on stdout; the exit status. */
static int
summary(struct mirror *m)
{
	double secs = (double)(ls_now_us() - m->t0) / 1e6;

	printf("mirror: %zu objects copied, %zu already present",
	    m->count[S_COPIED], m->count[S_PRESENT]);
	if (m->count[S_LEFT] > 0)
		printf(", %zu left for a later run", m->count[S_LEFT]);
	if (m->count[S_FAILED] + m->count[S_HELD] > 0)
		printf(", %zu failed, %zu held back", m->count[S_FAILED],
		    m->count[S_HELD]);
	if (m->count[S_TODO] > 0)
		printf(", %zu not tried", m->count[S_TODO]);
	printf("; %" PRIu64 " bytes in %.1f s (%.1f MB/s)\n", m->copied_bytes,
	    secs, secs > 0 ? (double)m->copied_bytes / secs / 1e6 : 0.0);
	fflush(stdout);
	if (m->count[S_FAILED] + m->count[S_TODO] == 0)
		return 0;
	if (m->count[S_FAILED] > 0)
		report(m, "%zu object(s) failed (named above), %zu held back "
		    "behind them; what was copied names no missing object "
		    "(logship.json goes last): repair the cause and run "
		    "mirror again", m->count[S_FAILED], m->count[S_HELD]);
	else
		report(m, "%zu object(s) not tried: the workers stopped "
		    "(the cause is above); what was copied names no missing "
		    "object (logship.json goes last): run mirror again",
		    m->count[S_TODO]);
	return 1;
}

static void
mirror_free(struct mirror *m)
{
	size_t i, k;

	for (i = 0; i < m->nobjs; i++) {
		free(m->objs[i].key);
		free(m->objs[i].link);
	}
	for (i = 0; i < m->ngens; i++) {
		for (k = 0; k < m->gens[i].nlisted; k++)
			free(m->gens[i].listed[k].key);
		free(m->gens[i].listed);
	}
	free(m->objs);
	free(m->gens);
	free(m->ident_text);
	json_decref(m->ident);
	json_decref(m->dst_ident);
	pthread_cond_destroy(&m->settled);
	pthread_mutex_destroy(&m->lock);
}

int
mirror_main(const struct mirror_opts *o)
{
	struct mirror m = { .o = o };
	int rc = 1;

	m.t0 = m.last_progress = ls_now_us();
	m.tty = isatty(STDERR_FILENO) == 1;
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.settled, NULL);
	if (ident_read(&m) == 0 && plan(&m) == 0) {
		copy_all(&m);
		ident_finish(&m);
		rc = summary(&m);
	}
	mirror_free(&m);
	return rc;
}
