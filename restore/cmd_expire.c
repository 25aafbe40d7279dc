/*
 * cmd_expire.c: logship-restore expire, retention for a store's current
 * generation: delete old base snapshots and the segments only they need.
 *
 * Kept: the newest --keep-bases N complete bases (or those made within
 * --keep-since DURATION, and always the newest), every base and segment a
 * given --state-dir still needs (its resume segment on; while it loads a
 * base, that base), and the segments from the one a replay from the
 * oldest kept base begins in (catalog_segment_after_lsn).  The last
 * segment is never deleted: the agent continues the chain from it.
 *
 * Order, so that a run killed at any point leaves a store that verifies
 * and restores: (1) a new write-once low-water mark
 * <gen>/expired/<first kept segment> (catalog.h), which tells verify and
 * restore that the segments below may be missing; (2) each expired base,
 * oldest first, its manifest first (the base stops being one) and then its
 * objects; (3) segments from the oldest up, so what remains is always one
 * unbroken run.  Running expire again finishes the work: base directories
 * without a manifest older than the oldest kept base are removed too.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "common/crashpoint.h"
#include "common/error.h"
#include "common/util.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "state.h"
#include "store/store.h"

#define MAX_STATE_DIRS	16

struct expire_opts {
	const char	*store_url;
	const char	*key_file;
	long		 keep_bases;		/* 0: not given */
	int64_t		 keep_since_us;		/* 0: not given */
	bool		 dry_run;
	const char	*state_dirs[MAX_STATE_DIRS];
	size_t		 nstate_dirs;
};

/* One base directory of the generation. */
struct xbase {
	char		 name[BASE_NAME_MAX];
	bool		 complete;	/* its manifest exists */
	uint64_t	 lsn;		/* consistent LSN (complete bases) */
	int64_t		 created;
	bool		 keep;
};

struct expire {
	const struct expire_opts *o;
	struct store	*st;
	const uint8_t	*key;
	char		 gen[17];
	struct xbase	*b;
	size_t		 nb;
	struct catalog_seg *segs;
	size_t		 nseg;
	uint64_t	 low;		/* first segment kept */
	uint64_t	 held;		/* the lowest a --state-dir needs */
	size_t		 oldest;	/* index in b of the oldest kept base */
};

static int
parse_args(int argc, char **argv, struct expire_opts *o, struct store_opts *so)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "keep-bases", required_argument, NULL, 'n' },
		{ "keep-since", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'y' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	int ch;

	while ((ch = cmd_getopt(argc, argv, "h", opts, so)) != -1) {
		switch (ch) {
		case 's': o->store_url = optarg; break;
		case 'k': o->key_file = optarg; break;
		case 'y': o->dry_run = true; break;
		case 'n':
			o->keep_bases = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || o->keep_bases < 1 ||
			    o->keep_bases > 1000000)
				return cmd_usage_error("--keep-bases %s: expected a "
				    "whole number from 1 (the newest base is always "
				    "kept)", optarg);
			break;
		case 't':
			if (ls_parse_duration_us(optarg, &o->keep_since_us) != 0)
				return cmd_usage_error("--keep-since %s: expected a "
				    "duration: seconds, or a number with s, m, h, d "
				    "or w and no space (30d)", optarg);
			break;
		case 'd':
			if (o->nstate_dirs == MAX_STATE_DIRS)
				return cmd_usage_error("at most %d --state-dir",
				    MAX_STATE_DIRS);
			o->state_dirs[o->nstate_dirs++] = optarg;
			break;
		case 'h': cmd_usage(stdout); exit(0);
		default: return cmd_usage_error("%s", "bad option for expire");
		}
	}
	if (optind < argc)
		return cmd_usage_error("unexpected argument %s", argv[optind]);
	if (o->store_url == NULL)
		return cmd_usage_error("%s", "expire needs --store URL");
	if ((o->keep_bases > 0) == (o->keep_since_us > 0))
		return cmd_usage_error("%s", "expire needs exactly one of "
		    "--keep-bases N and --keep-since DURATION");
	return 0;
}

/* Every base directory, with what its manifest says. */
static int
read_bases(struct expire *x, char **errmsg)
{
	struct base_manifest *m = NULL;
	char (*names)[24] = NULL;
	size_t n, i;
	int r;

	if ((r = catalog_bases(x->st, x->gen, &names, &n, errmsg)) != 0)
		return r;
	if ((x->b = calloc(n + 1, sizeof(*x->b))) == NULL) {
		free(names);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < n && r == 0; i++) {
		snprintf(x->b[i].name, sizeof(x->b[i].name), "%s", names[i]);
		r = base_manifest_read_named(x->st, x->gen, names[i], x->key, &m,
		    errmsg);
		if (r == LS_ERR_NOTFOUND) {
			free(*errmsg);
			*errmsg = NULL;
			r = 0;
			if (strcmp(names[i], BASE_FIRST) != 0)
				x->b[i].lsn = strtoull(names[i] + 5, NULL, 16);
			continue;
		}
		if (r != 0)
			break;
		x->b[i].complete = true;
		x->b[i].lsn = base_manifest_lsn(m);
		x->b[i].created = base_manifest_created(m);
		base_manifest_free(m);
		m = NULL;
	}
	x->nb = n;
	free(names);
	return r;
}

/* The newest complete bases by --keep-bases or --keep-since. */
static int
choose(struct expire *x, char **errmsg)
{
	int64_t cutoff = ls_now_us() - x->o->keep_since_us;
	long kept = 0;
	size_t i, newest = x->nb;

	for (i = x->nb; i > 0; i--) {
		struct xbase *b = &x->b[i - 1];

		if (!b->complete)
			continue;
		if (newest == x->nb)
			newest = i - 1;
		if (x->o->keep_bases > 0 ? kept < x->o->keep_bases :
		    b->created >= cutoff || i - 1 == newest) {
			b->keep = true;
			kept++;
		}
	}
	if (newest == x->nb)
		return ls_errf(errmsg, LS_ERR_NOTFOUND, "generation %s of store %s "
		    "has no complete base snapshot: nothing can be expired",
		    x->gen, store_url(x->st));
	for (x->oldest = 0; !x->b[x->oldest].keep; x->oldest++)
		;
	return 0;
}

/* A state directory holds back its segments and, while loading, its base. */
static int
hold_back(struct expire *x, const char *dir, char **errmsg)
{
	struct state *s = NULL;
	struct state_marker mk;
	size_t i;
	uint64_t need;
	int r;

	if ((r = state_open_readonly(dir, &s, errmsg)) == 0)
		r = state_get_marker(s, &mk, errmsg);
	state_close(s);
	if (r == LS_ERR_NOTFOUND) {
		printf("state dir %s: nothing restored yet: holds nothing back\n",
		    dir);
		free(*errmsg);
		*errmsg = NULL;
		return 0;
	}
	if (r != 0)
		return ls_errprefix(errmsg, r, "--state-dir %s", dir);
	if (strcmp(mk.generation, x->gen) != 0) {
		printf("state dir %s: in generation %s, not %s: holds nothing "
		    "back here\n", dir, mk.generation, x->gen);
		return 0;
	}
	need = mk.segno > 0 ? mk.segno : 1;
	if (need < x->held)
		x->held = need;
	if ((mk.phase & PHASE_MASK) < PHASE_STREAM)
		for (i = 0; i < x->nb; i++)
			if (x->b[i].complete && (mk.end_lsn == 0 ?
			    strcmp(x->b[i].name, BASE_FIRST) == 0 :
			    x->b[i].lsn == mk.end_lsn) && i < x->oldest) {
				x->b[i].keep = true;
				x->oldest = i;
			}
	printf("state dir %s: at segment %016" PRIx64 "%s: holds back segments "
	    "from %016" PRIx64 "\n", dir, mk.segno,
	    (mk.phase & PHASE_MASK) < PHASE_STREAM ? " loading its base" : "",
	    need);
	return 0;
}

/* The first segment to keep: a replay from the oldest kept base needs it. */
static int
low_water(struct expire *x, char **errmsg)
{
	size_t i = 0, d;
	int r;

	x->held = UINT64_MAX;
	for (d = 0; d < x->o->nstate_dirs; d++)
		if ((r = hold_back(x, x->o->state_dirs[d], errmsg)) != 0)
			return r;
	x->low = 1;
	if (x->nseg == 0)
		return 0;
	if (strcmp(x->b[x->oldest].name, BASE_FIRST) == 0)
		x->low = x->segs[0].segno;
	else if ((r = catalog_segment_after_lsn(x->st, x->gen, x->segs,
	    x->nseg, x->b[x->oldest].lsn, &i, errmsg)) != 0)
		return r;
	else
		x->low = x->segs[i].segno;
	if (x->held < x->low)
		x->low = x->held;
	return 0;
}

static int
delete_one(struct expire *x, const char *key, char **errmsg)
{
	int r = store_delete(x->st, key, errmsg);

	if (r == 0)
		crashpoint("expire-after-delete");
	return r;
}

struct prefix_keys {
	char	**keys;
	size_t	 n;
};

static int
collect_key(void *arg, const struct store_entry *e)
{
	struct prefix_keys *p = arg;
	char **bigger = realloc(p->keys, (p->n + 1) * sizeof(*bigger));

	if (bigger == NULL || (bigger[p->n] = strdup(e->key)) == NULL) {
		if (bigger != NULL)
			p->keys = bigger;
		return LS_ERR_NOMEM;
	}
	p->keys = bigger;
	p->n++;
	return 0;
}

/* A base: its manifest first, then every object under its directory. */
static int
delete_base(struct expire *x, const struct xbase *b, char **errmsg)
{
	struct prefix_keys p = { NULL, 0 };
	char key[64], prefix[64];
	size_t i;
	int r;

	base_manifest_key(x->gen, b->name, key, sizeof(key));
	if (b->complete && (r = delete_one(x, key, errmsg)) != 0)
		return r;
	snprintf(prefix, sizeof(prefix), "%s/%s/", x->gen, b->name);
	r = store_list_all(x->st, prefix, collect_key, &p, errmsg);
	if (r == LS_ERR_NOMEM)
		r = ls_errf(errmsg, r, "out of memory");
	for (i = 0; i < p.n && r == 0; i++)
		r = delete_one(x, p.keys[i], errmsg);
	for (i = 0; i < p.n; i++)
		free(p.keys[i]);
	free(p.keys);
	return r;
}

/* Expired: older than the oldest kept, complete or left without a manifest. */
static bool
expired(const struct expire *x, size_t i)
{
	return !x->b[i].keep && i < x->oldest;
}

static void
print_plan(const struct expire *x, size_t nsegs_gone)
{
	char l[32];
	size_t i;

	for (i = 0; i < x->nb; i++) {
		ls_lsn_format(x->b[i].lsn, l);
		printf("%s %s/%s%s%s\n", expired(x, i) ? "expire" : "keep  ",
		    x->gen, x->b[i].name, x->b[i].complete ? " consistent at " :
		    " (no manifest)", x->b[i].complete ? l : "");
	}
	if (nsegs_gone > 0)
		printf("expire %zu segment(s) %016" PRIx64 "..%016" PRIx64 "\n",
		    nsegs_gone, x->segs[0].segno, x->low - 1);
	printf("keep   segments from %016" PRIx64 "\n", x->low);
}

static int
run(struct expire *x, char **errmsg)
{
	struct catalog_identity id;
	struct catalog_expired ex = { 0 };
	size_t i, nsegs_gone = 0, nbases_gone = 0;
	char key[64];
	int r;

	if ((r = catalog_identity_read(x->st, &id, errmsg)) == LS_ERR_NOTFOUND)
		return ls_errf(errmsg, LS_ERR_INVALID, "store %s holds no %s: not "
		    "a logship store", store_url(x->st), CATALOG_IDENTITY);
	if (r != 0)
		return r;
	memcpy(x->gen, id.generation, 17);
	if ((r = read_bases(x, errmsg)) != 0 || (r = choose(x, errmsg)) != 0 ||
	    (r = catalog_segments(x->st, x->gen, 0, &x->segs, &x->nseg,
	    errmsg)) != 0 || (r = low_water(x, errmsg)) != 0)
		return r;
	for (i = 0; i < x->nseg && x->segs[i].segno < x->low; i++)
		nsegs_gone++;
	for (i = 0; i < x->nb; i++)
		nbases_gone += expired(x, i);
	print_plan(x, nsegs_gone);
	if (nsegs_gone == 0 && nbases_gone == 0) {
		printf("expire: nothing to delete in generation %s\n", x->gen);
		return 0;
	}
	if (x->o->dry_run) {
		printf("expire: dry run: nothing deleted\n");
		return 0;
	}
	ex.first_segno = x->low;
	ex.lsn = x->b[x->oldest].lsn;
	ex.time = ls_now_us();
	snprintf(ex.base, sizeof(ex.base), "%s", x->b[x->oldest].name);
	if ((r = catalog_expired_write(x->st, x->gen, &ex, errmsg)) != 0)
		return r;
	for (i = 0; i < x->nb && r == 0; i++)
		if (expired(x, i))
			r = delete_base(x, &x->b[i], errmsg);
	for (i = 0; i < nsegs_gone && r == 0; i++) {
		segment_object_key(x->gen, x->segs[i].segno, key);
		r = delete_one(x, key, errmsg);
	}
	if (r == 0)
		printf("expire: deleted %zu base(s) and %zu segment(s) of "
		    "generation %s\n", nbases_gone, nsegs_gone, x->gen);
	return r;
}

static int
expire_exec(int argc, char **argv)
{
	struct expire_opts o = { 0 };
	struct store_opts so = { 0 };
	struct expire x = { 0 };
	uint8_t key[32];
	char *err = NULL;
	int rc;

	if ((rc = parse_args(argc, argv, &o, &so)) != 0 ||
	    (rc = cmd_key_load(o.key_file, key)) != 0 ||
	    (rc = cmd_store_open(o.store_url, &so, &x.st)) != 0)
		return rc;
	x.o = &o;
	x.key = o.key_file != NULL ? key : NULL;
	if ((rc = run(&x, &err)) != 0) {
		fprintf(stderr, "logship-restore: expire: %s\n", err ? err :
		    ls_strerror(rc));
		rc = rc == LS_ERR_INVALID || rc == LS_ERR_AUTH ||
		    rc == LS_ERR_NOTFOUND ? LS_EXIT_USAGE : LS_EXIT_FAILURE;
	}
	free(err);
	free(x.b);
	free(x.segs);
	store_free(x.st);
	return rc;
}

const struct cmd_entry cmd_expire_entry = {
	.name = "expire",
	.synopsis = "expire --store URL (--keep-bases N | --keep-since DURATION)\n"
"                       [--dry-run] [--state-dir DIR]... [--key-file F]\n",
	.help =
"  --keep-bases N    expire: keep the newest N bases (the newest always)\n"
"  --keep-since D    expire: keep bases made within D (30d, 12h, 3600)\n"
"  --dry-run         expire: say what would go, delete nothing\n",
	.exec = expire_exec,
};
