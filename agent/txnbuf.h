/*
 * txnbuf.h: one source transaction's pgoutput messages, held until its
 * commit arrives: in memory up to a limit, then in an anonymous spool file,
 * so memory stays bounded whatever the transaction's size.  Streamed
 * transactions can drop an aborted subtransaction's tail.
 */
#ifndef LS_AGENT_TXNBUF_H
#define LS_AGENT_TXNBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct txnbuf;

int txnbuf_new(uint32_t xid, size_t memlimit, const char *spool_dir,
    struct txnbuf **out, char **errmsg);
void txnbuf_free(struct txnbuf *);
uint32_t txnbuf_xid(const struct txnbuf *);
uint64_t txnbuf_bytes(const struct txnbuf *);
bool txnbuf_spilled(const struct txnbuf *);

/* Append one message; subxid is the (sub)transaction it belongs to. */
int txnbuf_append(struct txnbuf *, uint32_t subxid, bool in_stream,
    const uint8_t *msg, size_t len, char **errmsg);
/* Forget everything subxid (and later subtransactions) appended. */
int txnbuf_abort_sub(struct txnbuf *, uint32_t subxid, char **errmsg);
/*
 * Call fn for every message in order.  The message pointer is valid only
 * during the call.  fn returns 0 to go on; any other value is returned.
 */
int txnbuf_replay(struct txnbuf *,
    int (*fn)(void *arg, const uint8_t *msg, size_t len, bool in_stream),
    void *arg, char **errmsg);

#endif
