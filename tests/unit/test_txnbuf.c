/* test_txnbuf.c: buffered transactions in memory and spilled; subxact aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "tap.h"
#include "txnbuf.h"

struct seen {
	int	 n;
	int	 bad;
	int	 last;
	int	 streamed;
};

static int
check(void *arg, const uint8_t *msg, size_t len, bool in_stream)
{
	struct seen *s = arg;
	int v;

	if (len < sizeof(v)) {
		s->bad++;
		return 0;
	}
	memcpy(&v, msg, sizeof(v));
	if (v != s->last + 1 || len != 100 + (size_t)(v % 50))
		s->bad++;
	s->last = v;
	s->n++;
	s->streamed += in_stream;
	return 0;
}

/* Append messages first..last (payload: the number, padded). */
static void
fill(struct txnbuf *t, uint32_t subxid, int first, int last)
{
	uint8_t buf[200] = { 0 };
	int i;

	for (i = first; i <= last; i++) {
		memcpy(buf, &i, sizeof(i));
		txnbuf_append(t, subxid, true, buf, 100 + (size_t)(i % 50), NULL);
	}
}

/*
 * Sizes that cross the spool's 256 KiB buffers: small messages, one
 * of exactly the buffer, and ones larger than it, each byte a function
 * of the message's number and position.
 */
static size_t
size_of(int i)
{
	static const size_t big[] = { 262139, 262144, 300000, 1u << 20 };

	return i % 97 == 0 ? big[(i / 97) % 4] : 1 + (size_t)(i * 37 % 4000);
}

static void
fill_sized(struct txnbuf *t, uint32_t subxid, int first, int last)
{
	uint8_t *buf = malloc(1u << 20);
	size_t k, n;
	int i;

	for (i = first; i <= last; i++) {
		n = size_of(i);
		for (k = 0; k < n; k++)
			buf[k] = (uint8_t)(i * 31 + k);
		txnbuf_append(t, subxid, i % 2, buf, n, NULL);
	}
	free(buf);
}

struct sized {
	int	 next, bad;
};

static int
check_sized(void *arg, const uint8_t *msg, size_t len, bool in_stream)
{
	struct sized *s = arg;
	size_t k;
	int i = s->next++;

	if (len != size_of(i) || in_stream != (i % 2 == 1)) {
		s->bad++;
		return 0;
	}
	for (k = 0; k < len; k++)
		if (msg[k] != (uint8_t)(i * 31 + k)) {
			s->bad++;
			break;
		}
	return 0;
}

int
main(void)
{
	struct txnbuf *t = NULL;
	struct seen s = { 0 };
	char *err = NULL;

	ok(txnbuf_new(10, 1 << 20, NULL, &t, &err) == 0, "small buffer");
	fill(t, 10, 1, 100);
	ok(!txnbuf_spilled(t), "100 messages stay in memory");
	txnbuf_replay(t, check, &s, &err);
	ok(s.n == 100 && s.bad == 0 && s.streamed == 100, "replayed in order");
	txnbuf_free(t);

	ok(txnbuf_new(11, 64 << 10, NULL, &t, &err) == 0, "64 KiB memory limit");
	fill(t, 11, 1, 20000);
	ok(txnbuf_spilled(t), "20,000 messages spill to a file");
	ok(txnbuf_bytes(t) > (1u << 20), "over a megabyte buffered");
	memset(&s, 0, sizeof(s));
	txnbuf_replay(t, check, &s, &err);
	ok(s.n == 20000 && s.bad == 0, "spilled messages replay in order");
	txnbuf_free(t);

	/* subtransaction 21 aborts: its messages and later ones vanish */
	txnbuf_new(20, 8 << 10, NULL, &t, &err);
	fill(t, 20, 1, 50);
	fill(t, 21, 51, 80);
	fill(t, 22, 81, 90);
	ok(txnbuf_abort_sub(t, 21, &err) == 0, "abort subtransaction 21");
	fill(t, 20, 51, 60);
	memset(&s, 0, sizeof(s));
	txnbuf_replay(t, check, &s, &err);
	ok(s.n == 60 && s.bad == 0, "aborted subtransaction's messages are gone (%d)", s.n);
	ok(txnbuf_abort_sub(t, 99, &err) == 0, "aborting an unknown subxact is a no-op");
	txnbuf_free(t);

	/* spilled through the buffers: messages larger than them, and aborts
	 * whose tail is only in the buffer, or partly written out already */
	{
		struct sized z = { 1, 0 };

		txnbuf_new(30, 64 << 10, NULL, &t, &err);
		fill_sized(t, 30, 1, 400);
		ok(txnbuf_spilled(t), "sized messages spill");
		fill_sized(t, 31, 401, 410);	/* small: still in the buffer */
		ok(txnbuf_abort_sub(t, 31, &err) == 0, "abort a tail held in the buffer");
		fill_sized(t, 32, 401, 500);	/* 485 is 1 MiB: written past it */
		fill_sized(t, 30, 501, 600);
		ok(txnbuf_abort_sub(t, 32, &err) == 0, "abort a tail already partly written out");
		fill_sized(t, 30, 401, 700);
		ok(txnbuf_replay(t, check_sized, &z, &err) == 0, "replay");
		ok(z.next == 701 && z.bad == 0, "700 messages of 1 B to 1 MiB replay whole and in order "
		    "(%d, %d bad)", z.next - 1, z.bad);
		fill_sized(t, 30, 701, 720);	/* appending after a replay */
		z.next = 1;
		z.bad = 0;
		txnbuf_replay(t, check_sized, &z, &err);
		ok(z.next == 721 && z.bad == 0, "and again after more appends (%d, %d bad)",
		    z.next - 1, z.bad);
		txnbuf_free(t);
	}
	txnbuf_free(NULL);
	free(err);
	return tap_done();
}
