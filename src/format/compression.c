/*
 * compression.c: zlib and zstd behind one streaming interface (see
 * compression.h).  Each codec is a table of functions; the container never
 * asks which one it has.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "common/error.h"
#include "format/compression.h"

#define OUTBUF	65536

struct codec_ops {
	const char	*name;
	int		 def_level, max_level;
	int	(*c_init)(struct compressor *, int level);
	/* One step: consume from *in, fill out; *done when end is reached. */
	int	(*c_step)(struct compressor *, const uint8_t **in, size_t *inlen,
		    bool end, size_t *produced, bool *done);
	void	(*c_free)(struct compressor *);
	int	(*d_init)(struct decompressor *);
	int	(*d_run)(struct decompressor *, const uint8_t **in, size_t *inlen,
		    void *out, size_t cap, size_t *outlen, bool *ended,
		    const char **why);
	void	(*d_free)(struct decompressor *);
};

struct compressor {
	const struct codec_ops	*ops;
	z_stream		 z;
	ZSTD_CCtx		*zc;
	bool			 ready;
	uint8_t			 out[OUTBUF];
};

struct decompressor {
	const struct codec_ops	*ops;
	z_stream		 z;
	ZSTD_DCtx		*zd;
	bool			 ready;
	bool			 started;	/* zstd: the magic was checked */
	bool			 ended;
};

/* ---- zlib ---- */

static int
zlib_c_init(struct compressor *c, int level)
{
	return deflateInit(&c->z, level) == Z_OK ? 0 : -1;
}

static int
zlib_c_step(struct compressor *c, const uint8_t **in, size_t *inlen, bool end,
    size_t *produced, bool *done)
{
	uInt give = *inlen > UINT_MAX ? UINT_MAX : (uInt)*inlen;
	int rc;

	c->z.next_in = (Bytef *)(uintptr_t)*in;
	c->z.avail_in = give;
	c->z.next_out = c->out;
	c->z.avail_out = OUTBUF;
	rc = deflate(&c->z, end && give == *inlen ? Z_FINISH : Z_NO_FLUSH);
	if (rc == Z_STREAM_ERROR)
		return -1;
	*in += give - c->z.avail_in;
	*inlen -= give - c->z.avail_in;
	*produced = OUTBUF - c->z.avail_out;
	*done = rc == Z_STREAM_END;
	return 0;
}

static void
zlib_c_free(struct compressor *c)
{
	deflateEnd(&c->z);
}

static int
zlib_d_init(struct decompressor *d)
{
	return inflateInit(&d->z) == Z_OK ? 0 : -1;
}

static int
zlib_d_run(struct decompressor *d, const uint8_t **in, size_t *inlen,
    void *out, size_t cap, size_t *outlen, bool *ended, const char **why)
{
	uInt give = *inlen > UINT_MAX ? UINT_MAX : (uInt)*inlen;
	int rc;

	d->z.next_in = (Bytef *)(uintptr_t)*in;
	d->z.avail_in = give;
	d->z.next_out = out;
	d->z.avail_out = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
	rc = inflate(&d->z, Z_NO_FLUSH);
	if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
		*why = d->z.msg != NULL ? d->z.msg : "bad data";
		return LS_ERR_CORRUPT;
	}
	*in += give - d->z.avail_in;
	*inlen -= give - d->z.avail_in;
	*outlen = (size_t)((uint8_t *)d->z.next_out - (uint8_t *)out);
	*ended = rc == Z_STREAM_END;
	return 0;
}

static void
zlib_d_free(struct decompressor *d)
{
	inflateEnd(&d->z);
}

/* ---- zstd ---- */

static int
zstd_c_init(struct compressor *c, int level)
{
	if ((c->zc = ZSTD_createCCtx()) == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel,
	    level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 0)))
		return -1;
	return 0;
}

static int
zstd_c_step(struct compressor *c, const uint8_t **in, size_t *inlen, bool end,
    size_t *produced, bool *done)
{
	ZSTD_inBuffer ib = { *in, *inlen, 0 };
	ZSTD_outBuffer ob = { c->out, OUTBUF, 0 };
	size_t left;

	left = ZSTD_compressStream2(c->zc, &ob, &ib, end ? ZSTD_e_end :
	    ZSTD_e_continue);
	if (ZSTD_isError(left))
		return -1;
	*in += ib.pos;
	*inlen -= ib.pos;
	*produced = ob.pos;
	*done = end && left == 0;
	return 0;
}

static void
zstd_c_free(struct compressor *c)
{
	ZSTD_freeCCtx(c->zc);
	c->zc = NULL;
}

static int
zstd_d_init(struct decompressor *d)
{
	if ((d->zd = ZSTD_createDCtx()) == NULL ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax,
	    COMPRESSION_ZSTD_WINDOWLOG_MAX)))
		return -1;
	return 0;
}

static int
zstd_d_run(struct decompressor *d, const uint8_t **in, size_t *inlen,
    void *out, size_t cap, size_t *outlen, bool *ended, const char **why)
{
	static const uint8_t magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	ZSTD_inBuffer ib = { *in, *inlen, 0 };
	ZSTD_outBuffer ob = { out, cap, 0 };
	size_t rc;

	if (!d->started && *inlen > 0) {	/* a Zstandard frame, not a skippable one */
		if (*inlen < sizeof(magic) || memcmp(*in, magic, sizeof(magic)) != 0) {
			*why = "not a zstd frame";
			return LS_ERR_CORRUPT;
		}
		d->started = true;
	}
	rc = ZSTD_decompressStream(d->zd, &ob, &ib);
	if (ZSTD_isError(rc)) {
		*why = ZSTD_getErrorName(rc);
		return LS_ERR_CORRUPT;
	}
	*in += ib.pos;
	*inlen -= ib.pos;
	*outlen = ob.pos;
	*ended = rc == 0;	/* the frame is decoded and flushed */
	return 0;
}

static void
zstd_d_free(struct decompressor *d)
{
	ZSTD_freeDCtx(d->zd);
	d->zd = NULL;
}

static const struct codec_ops codecs[] = {
	[COMPRESSION_ZLIB] = { "zlib", COMPRESSION_ZLIB_DEFAULT, 9,
	    zlib_c_init, zlib_c_step, zlib_c_free,
	    zlib_d_init, zlib_d_run, zlib_d_free },
	[COMPRESSION_ZSTD] = { "zstd", COMPRESSION_ZSTD_DEFAULT,
	    COMPRESSION_ZSTD_MAX, zstd_c_init, zstd_c_step, zstd_c_free,
	    zstd_d_init, zstd_d_run, zstd_d_free },
};
#define NCODECS	(sizeof(codecs) / sizeof(codecs[0]))

/* ---- names and options ---- */

const char *
compression_name(enum compression_codec c)
{
	return (size_t)c < NCODECS ? codecs[c].name : "unknown";
}

int
compression_lookup(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < NCODECS; i++)
		if (strlen(codecs[i].name) == len &&
		    memcmp(codecs[i].name, s, len) == 0)
			return (int)i;
	return -1;
}

void
compression_format(const struct compression *c, char buf[16])
{
	snprintf(buf, 16, "%s:%d", compression_name(c->codec), c->level > 0 ?
	    c->level : codecs[c->codec].def_level);
}

int
compression_parse(const char *text, struct compression *out, char **errmsg)
{
	const char *colon = strchr(text, ':');
	size_t nlen = colon != NULL ? (size_t)(colon - text) : strlen(text);
	char *end;
	long level = 0;
	int codec;

	if ((codec = compression_lookup(text, nlen)) < 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "compression \"%s\": "
		    "expected zlib or zstd, optionally with :LEVEL (zlib:1..9, "
		    "zstd:1..%d)", text, COMPRESSION_ZSTD_MAX);
	if (colon != NULL) {
		errno = 0;
		level = strtol(colon + 1, &end, 10);
		if (colon[1] < '0' || colon[1] > '9' || *end != '\0' ||
		    errno != 0 || level < 1 || level > codecs[codec].max_level)
			return ls_errf(errmsg, LS_ERR_INVALID, "compression "
			    "\"%s\": the level of %s is a whole number from 1 "
			    "to %d", text, codecs[codec].name,
			    codecs[codec].max_level);
	}
	out->codec = (enum compression_codec)codec;
	out->level = (int)level;
	return 0;
}

/* ---- streams ---- */

int
compressor_new(const struct compression *cfg, struct compressor **out,
    char **errmsg)
{
	struct compression dflt = { COMPRESSION_ZLIB, 0 };
	struct compressor *c;
	int level;

	if (cfg == NULL)
		cfg = &dflt;
	if ((size_t)cfg->codec >= NCODECS || cfg->level < 0 ||
	    cfg->level > codecs[cfg->codec].max_level)
		return ls_errf(errmsg, LS_ERR_INVALID, "compression: codec %d "
		    "level %d is not supported", (int)cfg->codec, cfg->level);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	c->ops = &codecs[cfg->codec];
	level = cfg->level > 0 ? cfg->level : c->ops->def_level;
	if (c->ops->c_init(c, level) != 0) {
		c->ready = true;	/* free whatever was set up */
		compressor_free(c);
		return ls_errf(errmsg, LS_ERR_NOMEM, "%s compressor: cannot "
		    "set up level %d", codecs[cfg->codec].name, level);
	}
	c->ready = true;
	*out = c;
	return 0;
}

int
compressor_write(struct compressor *c, const void *buf, size_t len, bool end,
    compression_sink sink, void *arg, char **errmsg)
{
	const uint8_t *in = buf;
	size_t produced;
	bool done = false;
	int r;

	while (len > 0 || (end && !done)) {
		if (c->ops->c_step(c, &in, &len, end, &produced, &done) != 0)
			return ls_errf(errmsg, LS_ERR_INTERNAL, "%s compression "
			    "failed", c->ops->name);
		if (produced > 0 && (r = sink(arg, c->out, produced, errmsg)) != 0)
			return r;
	}
	return 0;
}

void
compressor_free(struct compressor *c)
{
	if (c == NULL)
		return;
	if (c->ready)
		c->ops->c_free(c);
	free(c);
}

int
decompressor_new(enum compression_codec codec, struct decompressor **out,
    char **errmsg)
{
	struct decompressor *d;

	if ((size_t)codec >= NCODECS)
		return ls_errf(errmsg, LS_ERR_INVALID, "unknown codec %d",
		    (int)codec);
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	d->ops = &codecs[codec];
	d->ready = true;
	if (d->ops->d_init(d) != 0) {
		decompressor_free(d);
		return ls_errf(errmsg, LS_ERR_NOMEM, "%s decompressor: out of "
		    "memory", codecs[codec].name);
	}
	*out = d;
	return 0;
}

int
decompressor_run(struct decompressor *d, const uint8_t **in, size_t *inlen,
    void *out, size_t cap, size_t *outlen, bool *ended, const char **why)
{
	int r;

	*outlen = 0;
	if (d->ended || cap == 0) {
		*ended = d->ended;
		return 0;
	}
	r = d->ops->d_run(d, in, inlen, out, cap, outlen, &d->ended, why);
	*ended = d->ended;
	return r;
}

void
decompressor_free(struct decompressor *d)
{
	if (d == NULL)
		return;
	if (d->ready)
		d->ops->d_free(d);
	free(d);
}
