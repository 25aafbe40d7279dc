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
	txnbuf_free(NULL);
	free(err);
	return tap_done();
}
