/*
 * txnbuf.c: buffered transactions (see txnbuf.h).  Entries are framed
 * u32 length (BE), u8 flags (1 = decode as in-stream), message bytes.
 *
 * A spilled transaction is written and read back through buffers of
 * SPOOL_BUF bytes, not a system call per message: a million-row UPDATE
 * is two million messages, and one pwrite and one pread each made the
 * agent's capture of it a third slower than pg_recvlogical's (issue 13).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "txnbuf.h"

struct sub {
	uint32_t	xid;
	uint64_t	off;
};

#define SPOOL_BUF	(256u << 10)

struct txnbuf {
	uint32_t	 xid;
	uint8_t		*mem;
	size_t		 cap, memlimit;
	uint64_t	 size;		/* bytes appended (memory or file) */
	int		 fd;		/* spool, once over memlimit */
	uint8_t		*wbuf;		/* spool bytes [size - wlen, size) */
	size_t		 wlen;		/* not yet written to fd */
	char		*spool_dir;
	struct sub	*subs;
	size_t		 nsubs, subcap;
};

int
txnbuf_new(uint32_t xid, size_t memlimit, const char *spool_dir,
    struct txnbuf **out, char **errmsg)
{
	struct txnbuf *t = calloc(1, sizeof(*t));

	if (t == NULL || (spool_dir != NULL &&
	    (t->spool_dir = strdup(spool_dir)) == NULL)) {
		free(t);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	t->xid = xid;
	t->memlimit = memlimit;
	t->fd = -1;
	*out = t;
	return 0;
}

void
txnbuf_free(struct txnbuf *t)
{
	if (t == NULL)
		return;
	if (t->fd >= 0)
		close(t->fd);
	free(t->wbuf);
	free(t->mem);
	free(t->subs);
	free(t->spool_dir);
	free(t);
}

uint32_t
txnbuf_xid(const struct txnbuf *t)
{
	return t->xid;
}

uint64_t
txnbuf_bytes(const struct txnbuf *t)
{
	return t->size;
}

bool
txnbuf_spilled(const struct txnbuf *t)
{
	return t->fd >= 0;
}

/* A failed write to the spool file, errno e: the directory and the cause. */
static int
spill_error(const struct txnbuf *t, int e, char **errmsg)
{
	return ls_errf(errmsg, ls_errno_code(e), "spool dir %s: spilling "
	    "transaction %u (%" PRIu64 " bytes so far): %s",
	    ls_temp_dir(t->spool_dir), t->xid,
	    t->size, strerror(e));
}

/* Move what is in memory to a spool file. */
static int
spill(struct txnbuf *t, char **errmsg)
{
	if ((t->wbuf = malloc(SPOOL_BUF)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((t->fd = ls_temp_fd(t->spool_dir, errmsg)) < 0) {
		int r = t->fd;
		t->fd = -1;
		free(t->wbuf);
		t->wbuf = NULL;
		return r;
	}
	if (ls_write_all(t->fd, t->mem, (size_t)t->size) != 0)
		return spill_error(t, errno, errmsg);
	free(t->mem);
	t->mem = NULL;
	t->cap = 0;
	return 0;
}

/* Write len bytes at the spool's offset off. */
static int
spool_write(struct txnbuf *t, const void *buf, size_t len, uint64_t off,
    char **errmsg)
{
	ssize_t n = pwrite(t->fd, buf, len, (off_t)off);

	if (n != (ssize_t)len)	/* a short write: the disk is full */
		return spill_error(t, n < 0 ? errno : ENOSPC, errmsg);
	return 0;
}

/* Write out what the spool's buffer holds. */
static int
spool_flush(struct txnbuf *t, char **errmsg)
{
	int r;

	if (t->fd < 0 || t->wlen == 0)
		return 0;
	if ((r = spool_write(t, t->wbuf, t->wlen, t->size - t->wlen,
	    errmsg)) != 0)
		return r;
	t->wlen = 0;
	return 0;
}

static int
put(struct txnbuf *t, const void *buf, size_t len, char **errmsg)
{
	size_t want;
	uint8_t *bigger;
	int r;

	if (t->fd < 0 && t->size + len > t->memlimit &&
	    (r = spill(t, errmsg)) != 0)
		return r;
	if (t->fd >= 0) {
		if (t->wlen + len > SPOOL_BUF && (r = spool_flush(t,
		    errmsg)) != 0)
			return r;
		if (len > SPOOL_BUF) {	/* past the buffer, straight on */
			if ((r = spool_write(t, buf, len, t->size, errmsg)) != 0)
				return r;
		} else {
			memcpy(t->wbuf + t->wlen, buf, len);
			t->wlen += len;
		}
		t->size += len;
		return 0;
	}
	if (t->size + len > t->cap) {
		want = t->cap ? t->cap * 2 : 4096;
		while (want < t->size + len)
			want *= 2;
		if ((bigger = realloc(t->mem, want)) == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		t->mem = bigger;
		t->cap = want;
	}
	memcpy(t->mem + t->size, buf, len);
	t->size += len;
	return 0;
}

static int
note_sub(struct txnbuf *t, uint32_t subxid)
{
	struct sub *bigger;
	size_t i;

	if (subxid == t->xid || subxid == 0)
		return 0;
	for (i = 0; i < t->nsubs; i++)
		if (t->subs[i].xid == subxid)
			return 0;
	if (t->nsubs == t->subcap) {
		t->subcap = t->subcap ? t->subcap * 2 : 8;
		if ((bigger = realloc(t->subs, t->subcap * sizeof(*bigger))) == NULL)
			return LS_ERR_NOMEM;
		t->subs = bigger;
	}
	t->subs[t->nsubs++] = (struct sub){ subxid, t->size };
	return 0;
}

int
txnbuf_append(struct txnbuf *t, uint32_t subxid, bool in_stream,
    const uint8_t *msg, size_t len, char **errmsg)
{
	uint8_t hdr[5];
	int r;

	if (len > 0x7fffffff)
		return ls_errf(errmsg, LS_ERR_TOOBIG, "message of %zu bytes", len);
	if (note_sub(t, subxid) != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	hdr[4] = in_stream ? 1 : 0;
	if ((r = put(t, hdr, sizeof(hdr), errmsg)) != 0)
		return r;
	return put(t, msg, len, errmsg);
}

int
txnbuf_abort_sub(struct txnbuf *t, uint32_t subxid, char **errmsg)
{
	uint64_t off;
	size_t i;

	for (i = 0; i < t->nsubs; i++)
		if (t->subs[i].xid == subxid)
			break;
	if (i == t->nsubs)
		return 0;		/* it wrote nothing */
	off = t->subs[i].off;
	t->nsubs = i;		/* later subtransactions started after it */
	if (off >= t->size - t->wlen) {
		/* nothing of the aborted tail reached the file */
		t->wlen -= (size_t)(t->size - off);
		t->size = off;
		return 0;
	}
	t->wlen = 0;
	t->size = off;
	if (t->fd >= 0 && ftruncate(t->fd, (off_t)t->size) != 0)
		return ls_errf(errmsg, LS_ERR_IO, "spill truncate: %s",
		    strerror(errno));
	return 0;
}

/* Spool bytes [at, at + len) held in memory while replaying. */
struct window {
	uint8_t		*p;
	uint64_t	 at;
	size_t		 len;
};

/* Read from off into the window, as much as it holds. */
static int
refill(struct txnbuf *t, struct window *w, uint64_t off, char **errmsg)
{
	size_t want = t->size - off < SPOOL_BUF ? (size_t)(t->size - off) :
	    SPOOL_BUF;

	if (ls_pread_all(t->fd, w->p, want, (off_t)off) != (ssize_t)want)
		return ls_errf(errmsg, LS_ERR_IO, "spill read: short");
	w->at = off;
	w->len = want;
	return 0;
}

/*
 * The entry at *off: *msg points into the window, or into *buf (grown as
 * needed) for a message larger than the window.
 */
static int
read_entry(struct txnbuf *t, struct window *w, uint64_t *off, uint8_t **buf,
    size_t *cap, const uint8_t **msg, size_t *len, bool *in_stream,
    char **errmsg)
{
	const uint8_t *hdr;
	uint8_t *bigger;
	int r;

	if (t->size - *off < 5)
		return ls_errf(errmsg, LS_ERR_IO, "spill read: short");
	if ((*off < w->at || *off + 5 > w->at + w->len) &&
	    (r = refill(t, w, *off, errmsg)) != 0)
		return r;
	hdr = w->p + (*off - w->at);
	*len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	*in_stream = hdr[4] & 1;
	if (*len > t->size - *off - 5)
		return ls_errf(errmsg, LS_ERR_IO, "spill read: short");
	if (5 + *len <= SPOOL_BUF) {
		if (*off + 5 + *len > w->at + w->len &&
		    (r = refill(t, w, *off, errmsg)) != 0)
			return r;
		*msg = w->p + (*off - w->at) + 5;
	} else {
		if (*len > *cap) {
			if ((bigger = realloc(*buf, *len)) == NULL)
				return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
			*buf = bigger;
			*cap = *len;
		}
		if (ls_pread_all(t->fd, *buf, *len, (off_t)(*off + 5)) !=
		    (ssize_t)*len)
			return ls_errf(errmsg, LS_ERR_IO, "spill read: short");
		*msg = *buf;
	}
	*off += 5 + *len;
	return 0;
}

int
txnbuf_replay(struct txnbuf *t,
    int (*fn)(void *arg, const uint8_t *msg, size_t len, bool in_stream),
    void *arg, char **errmsg)
{
	struct window w = { NULL, 0, 0 };
	uint8_t *buf = NULL;
	const uint8_t *msg = NULL;
	uint64_t off = 0;
	size_t cap = 0, len = 0;
	bool in_stream = false;
	int r = 0;

	if (t->fd >= 0) {
		if ((r = spool_flush(t, errmsg)) != 0)
			return r;
		if ((w.p = malloc(SPOOL_BUF)) == NULL)
			return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	while (r == 0 && off < t->size) {
		if (t->fd >= 0) {
			r = read_entry(t, &w, &off, &buf, &cap, &msg, &len,
			    &in_stream, errmsg);
			if (r == 0)
				r = fn(arg, msg, len, in_stream);
			continue;
		}
		len = (size_t)t->mem[off] << 24 | (size_t)t->mem[off + 1] << 16 |
		    (size_t)t->mem[off + 2] << 8 | t->mem[off + 3];
		in_stream = t->mem[off + 4] & 1;
		r = fn(arg, t->mem + off + 5, len, in_stream);
		off += 5 + len;
	}
	free(w.p);
	free(buf);
	return r;
}
