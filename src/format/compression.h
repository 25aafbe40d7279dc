/*
 * compression.h: the codecs of a container body (container.h).  A body is
 * one complete zlib stream (RFC 1950) or one zstd frame (RFC 8878); the
 * header's "compression" key names which.  Both directions stream through
 * fixed buffers: neither holds a whole body.
 */
#ifndef LS_COMPRESSION_H
#define LS_COMPRESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum compression_codec {
	COMPRESSION_ZLIB = 0,		/* the default of a zeroed struct */
	COMPRESSION_ZSTD = 1,
};

#define COMPRESSION_ZLIB_DEFAULT	3	/* levels 1..9 */
#define COMPRESSION_ZSTD_DEFAULT	3	/* levels 1..19 */
#define COMPRESSION_ZSTD_MAX		19
/* Largest zstd window a reader accepts (8 MiB: what levels <= 19 use). */
#define COMPRESSION_ZSTD_WINDOWLOG_MAX	23

struct compression {
	enum compression_codec	codec;
	int			level;	/* 0: the codec's default */
};

/*
 * Parse "zlib", "zstd", "zlib:LEVEL" or "zstd:LEVEL" into *out.  Returns 0,
 * or LS_ERR_INVALID with a message saying what is accepted.
 */
int compression_parse(const char *text, struct compression *out,
    char **errmsg);
/* "zlib" or "zstd": the header value and the option's name. */
const char *compression_name(enum compression_codec);
/* The codec named by the header value s (len bytes); -1 if unknown. */
int compression_lookup(const char *s, size_t len);
/* "zstd:3": the codec and its effective level (buf of 16 bytes). */
void compression_format(const struct compression *, char buf[16]);

/* Receives compressed output; returns 0 or an LS_ERR_* code. */
typedef int (*compression_sink)(void *arg, const void *buf, size_t len,
    char **errmsg);

struct compressor;

/* A compressor for c (NULL: zlib at its default level). */
int compressor_new(const struct compression *c, struct compressor **out,
    char **errmsg);
/*
 * Compress len bytes of buf, handing output to sink as it comes; with end,
 * finish the stream (buf may then be empty).  No call after end.
 */
int compressor_write(struct compressor *, const void *buf, size_t len,
    bool end, compression_sink sink, void *arg, char **errmsg);
void compressor_free(struct compressor *);

struct decompressor;

int decompressor_new(enum compression_codec, struct decompressor **out,
    char **errmsg);
/*
 * Decompress from *in (*inlen bytes; advanced past what was consumed) into
 * out (up to cap bytes; *outlen produced).  *ended becomes true once the
 * stream's end has been decoded and all its output delivered; from then on
 * nothing more is consumed.  Returns 0, or LS_ERR_CORRUPT with *why (a
 * static string).
 */
int decompressor_run(struct decompressor *, const uint8_t **in, size_t *inlen,
    void *out, size_t cap, size_t *outlen, bool *ended, const char **why);
void decompressor_free(struct decompressor *);

#endif
