/*
 * blob.h: a byte stream in the common container (container.h) with magic
 * "LSBL": base snapshot chunks (COPY data), schema dumps and manifests.
 * Header map: {"kind": str, "raw_len": uint} + the container's keys.
 */
#ifndef LS_BLOB_H
#define LS_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "format/compression.h"

struct blob_writer;

/*
 * kind names what the blob holds ("copy", "schema", "manifest"); comp NULL
 * means zlib at its default level.
 */
int blob_writer_new(const char *kind, const uint8_t *key, const char *spool_dir,
    const struct compression *comp, struct blob_writer **out, char **errmsg);
int blob_writer_write(struct blob_writer *, const void *buf, size_t len,
    char **errmsg);
uint64_t blob_writer_raw_len(const struct blob_writer *);
/* Write the object to out_fd; sha_out is its trailer. */
int blob_writer_finish(struct blob_writer *, int out_fd, uint8_t sha_out[32],
    char **errmsg);
void blob_writer_free(struct blob_writer *);

/*
 * Stream the content of the blob in fd to fn (fn may be NULL to only
 * verify), checking kind, length, tag and trailer; fn's data is not yet
 * authenticated, so callers that act on it verify first.  fn returns 0 to go
 * on.  sha_out (may be NULL) receives the trailer.
 */
int blob_read_fd(int fd, const char *name, const uint8_t *key, const char *kind,
    int (*fn)(void *arg, const void *buf, size_t len), void *arg,
    uint8_t sha_out[32], char **errmsg);

#endif
