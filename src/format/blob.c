/* blob.c: byte streams in the common container (see blob.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "format/blob.h"
#include "format/container.h"

#define MAGIC "LSBL"

struct blob_writer {
	struct container_writer	 cw;
	char			 kind[32];
	uint64_t		 raw_len;
};

int
blob_writer_new(const char *kind, const uint8_t *key, const char *spool_dir,
    const struct compression *comp, struct blob_writer **out, char **errmsg)
{
	struct blob_writer *b;
	int r;

	if (strlen(kind) >= sizeof(b->kind))
		return ls_errf(errmsg, LS_ERR_INVALID, "blob kind too long");
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	strcpy(b->kind, kind);
	if ((r = container_writer_init(&b->cw, spool_dir, comp, key,
	    errmsg)) != 0) {
		blob_writer_free(b);
		return r;
	}
	*out = b;
	return 0;
}

void
blob_writer_free(struct blob_writer *b)
{
	if (b == NULL)
		return;
	container_writer_cleanup(&b->cw);
	free(b);
}

int
blob_writer_write(struct blob_writer *b, const void *buf, size_t len,
    char **errmsg)
{
	b->raw_len += len;
	return container_writer_write(&b->cw, buf, len, errmsg);
}

uint64_t
blob_writer_raw_len(const struct blob_writer *b)
{
	return b->raw_len;
}

int
blob_writer_finish(struct blob_writer *b, int out_fd, uint8_t sha_out[32],
    char **errmsg)
{
	struct container_crypto cc;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int r;

	if ((r = container_writer_seal(&b->cw, &cc, errmsg)) != 0)
		return r;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "kind", 4);
	msgpack_pack_str_with_body(&pk, b->kind, strlen(b->kind));
	msgpack_pack_str_with_body(&pk, "raw_len", 7);
	msgpack_pack_uint64(&pk, b->raw_len);
	container_pack_common(&pk, b->cw.codec, container_writer_bytes(&b->cw),
	    &cc);
	r = container_writer_emit(&b->cw, out_fd, MAGIC, &cc, sb.data, sb.size,
	    sha_out, errmsg);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

struct blob_header {
	char			 kind[32];
	uint64_t		 raw_len;
	uint64_t		 body_len;
	enum compression_codec	 codec;
	struct container_crypto	 cc;
};

static int
parse_header(const uint8_t *buf, size_t len, struct blob_header *h)
{
	struct mp_cur c = { buf, buf + len };
	uint32_t n, i, klen, vlen, seen = 0, common = 0;
	const char *k, *v;
	int r;

	memset(h, 0, sizeof(*h));
	if (mp_map(&c, &n) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (mp_str(&c, &k, &klen) != 0)
			return -1;
		r = container_parse_common(&c, k, klen, &h->codec, &h->body_len,
		    &h->cc, &common);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if (klen == 4 && memcmp(k, "kind", 4) == 0) {
			if (mp_str(&c, &v, &vlen) != 0 || vlen >= sizeof(h->kind))
				return -1;
			memcpy(h->kind, v, vlen);
			seen |= 1;
		} else if (klen == 7 && memcmp(k, "raw_len", 7) == 0) {
			if (mp_uint(&c, &h->raw_len) != 0)
				return -1;
			seen |= 2;
		} else if (mp_skip(&c, 8) != 0)
			return -1;
	}
	return seen == 3 && common == CONTAINER_COMMON_ALL && c.p == c.end ? 0 : -1;
}

static int
stream_body(struct container_reader *cr, const struct blob_header *h,
    int (*fn)(void *, const void *, size_t), void *arg, char **errmsg)
{
	uint8_t buf[CONTAINER_IOBUF];
	uint64_t left = h->raw_len;
	size_t got, want;
	int r;

	while (left > 0) {
		want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		if ((r = container_read(cr, buf, want, &got, true, errmsg)) != 0)
			return r;
		if (fn != NULL && (r = fn(arg, buf, got)) != 0)
			return container_fail(cr, errmsg, r, "consumer stopped");
		left -= got;
	}
	return 0;
}

int
blob_read_fd(int fd, const char *name, const uint8_t *key, const char *kind,
    int (*fn)(void *arg, const void *buf, size_t len), void *arg,
    uint8_t sha_out[32], char **errmsg)
{
	struct container_reader cr;
	struct blob_header h;
	uint8_t *hbuf = NULL;
	size_t hlen;
	int r;

	r = container_reader_init(&cr, fd, name, key, MAGIC, &hbuf, &hlen, errmsg);
	if (r == 0 && (parse_header(hbuf, hlen, &h) != 0 ||
	    h.cc.encrypted != cr.flag_encrypted))
		r = container_fail(&cr, errmsg, LS_ERR_CORRUPT, "bad header");
	if (r == 0 && kind != NULL && strcmp(kind, h.kind) != 0)
		r = container_fail(&cr, errmsg, LS_ERR_CORRUPT, "holds %s, "
		    "expected %s", h.kind, kind);
	if (r == 0)
		r = container_reader_start(&cr, h.codec, h.body_len, &h.cc, hbuf,
		    hlen, errmsg);
	if (r == 0)
		r = stream_body(&cr, &h, fn, arg, errmsg);
	if (r == 0)
		r = container_reader_finish(&cr, sha_out, errmsg);
	free(hbuf);
	container_reader_cleanup(&cr);
	return r;
}
