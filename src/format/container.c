/*
 * container.c: the common object framing (see container.h): spool,
 * compress, encrypt and hash on the way out; pread, hash, decrypt and
 * decompress on the way in, checking tag and trailer at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error.h"
#include "common/util.h"
#include "format/container.h"

void
container_key_id(const uint8_t key[CONTAINER_KEY_LEN],
    uint8_t id[CONTAINER_KEYID_LEN])
{
	uint8_t md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, "logship-key-id", 14);
	EVP_DigestUpdate(ctx, key, CONTAINER_KEY_LEN);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	memcpy(id, md, CONTAINER_KEYID_LEN);
}

uint64_t
container_total_len(size_t hlen, uint64_t body_len, bool encrypted)
{
	return CONTAINER_PREFIX_LEN + (uint64_t)hlen + body_len +
	    (encrypted ? CONTAINER_TAG_LEN : 0) + CONTAINER_TRAILER_LEN;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */
/* ------------------------------------------------------------------ */


int
container_writer_init(struct container_writer *w, const char *spool_dir,
    const struct compression *comp, const uint8_t *key, char **errmsg)
{
	memset(w, 0, sizeof(*w));
	w->spool = -1;
	w->codec = comp != NULL ? comp->codec : COMPRESSION_ZLIB;
	if ((w->has_key = key != NULL))
		memcpy(w->key, key, CONTAINER_KEY_LEN);
	if ((w->spool = ls_temp_fd(spool_dir, errmsg)) < 0) {
		int r = w->spool;
		w->spool = -1;
		return r;
	}
	return compressor_new(comp, &w->comp, errmsg);
}

void
container_writer_cleanup(struct container_writer *w)
{
	compressor_free(w->comp);
	w->comp = NULL;
	if (w->spool >= 0)
		close(w->spool);
	w->spool = -1;
	OPENSSL_cleanse(w->key, sizeof(w->key));
}

/* The compressor's output goes to the spool. */
static int
spool_sink(void *arg, const void *buf, size_t len, char **errmsg)
{
	struct container_writer *w = arg;

	if (ls_write_all(w->spool, buf, len) != 0)
		return ls_errf(errmsg, ls_errno_code(errno), "spool write: %s",
		    strerror(errno));
	w->body_len += len;
	return 0;
}

int
container_writer_write(struct container_writer *w, const void *buf, size_t len,
    char **errmsg)
{
	return compressor_write(w->comp, buf, len, false, spool_sink, w, errmsg);
}

uint64_t
container_writer_bytes(const struct container_writer *w)
{
	return w->body_len;
}

int
container_writer_seal(struct container_writer *w, struct container_crypto *cc,
    char **errmsg)
{
	int r;

	if ((r = compressor_write(w->comp, NULL, 0, true, spool_sink, w,
	    errmsg)) != 0)
		return r;
	memset(cc, 0, sizeof(*cc));
	if (!(cc->encrypted = w->has_key))
		return 0;
	if (RAND_bytes(cc->nonce, CONTAINER_NONCE_LEN) != 1)
		return ls_errf(errmsg, LS_ERR_INTERNAL, "no random nonce");
	container_key_id(w->key, cc->key_id);
	return 0;
}

struct sink {
	int		 fd;
	EVP_MD_CTX	*sha;
};

static int
sink_write(struct sink *s, const void *buf, size_t len)
{
	EVP_DigestUpdate(s->sha, buf, len);
	return ls_write_all(s->fd, buf, len);
}

/* Copy the spool to the sink, encrypting with gcm when not NULL. */
static int
copy_body(struct container_writer *w, struct sink *s, EVP_CIPHER_CTX *gcm)
{
	uint8_t in[CONTAINER_IOBUF], out[CONTAINER_IOBUF];
	uint64_t off = 0;
	ssize_t n;
	int outl;

	while (off < w->body_len) {
		n = ls_pread_all(w->spool, in, sizeof(in), (off_t)off);
		if (n <= 0)
			return -1;
		off += (uint64_t)n;
		if (gcm == NULL) {
			if (sink_write(s, in, (size_t)n) != 0)
				return -1;
			continue;
		}
		if (EVP_EncryptUpdate(gcm, out, &outl, in, (int)n) != 1 ||
		    sink_write(s, out, (size_t)outl) != 0)
			return -1;
	}
	return 0;
}

static int
write_encrypted(struct container_writer *w, struct sink *s,
    const struct container_crypto *cc, const uint8_t *prefix,
    const void *header, size_t hlen)
{
	EVP_CIPHER_CTX *gcm = EVP_CIPHER_CTX_new();
	uint8_t tag[CONTAINER_TAG_LEN], tmp[32];
	int outl, r = -1;

	if (gcm == NULL ||
	    EVP_EncryptInit_ex(gcm, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_IVLEN, CONTAINER_NONCE_LEN,
	    NULL) != 1 ||
	    EVP_EncryptInit_ex(gcm, NULL, NULL, w->key, cc->nonce) != 1 ||
	    EVP_EncryptUpdate(gcm, NULL, &outl, prefix, CONTAINER_PREFIX_LEN) != 1 ||
	    EVP_EncryptUpdate(gcm, NULL, &outl, header, (int)hlen) != 1)
		goto out;
	if (copy_body(w, s, gcm) != 0 ||
	    EVP_EncryptFinal_ex(gcm, tmp, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_GET_TAG, CONTAINER_TAG_LEN,
	    tag) != 1 || sink_write(s, tag, sizeof(tag)) != 0)
		goto out;
	r = 0;
 out:
	EVP_CIPHER_CTX_free(gcm);
	return r;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

int
container_writer_emit(struct container_writer *w, int out_fd,
    const char magic[4], const struct container_crypto *cc,
    const void *header, size_t hlen, uint8_t sha_out[32], char **errmsg)
{
	struct sink s = { out_fd, NULL };
	uint8_t prefix[CONTAINER_PREFIX_LEN];
	int r = LS_ERR_IO, e;

	if (hlen == 0 || hlen > CONTAINER_HEADER_MAX)
		return ls_errf(errmsg, LS_ERR_INTERNAL, "header of %zu bytes", hlen);
	memcpy(prefix, magic, 4);
	put_be(prefix + 4, CONTAINER_VERSION, 2);
	put_be(prefix + 6, cc->encrypted ? CONTAINER_FLAG_ENCRYPTED : 0, 2);
	put_be(prefix + 8, hlen, 4);
	errno = 0;
	if ((s.sha = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL) != 1 ||
	    sink_write(&s, prefix, sizeof(prefix)) != 0 ||
	    sink_write(&s, header, hlen) != 0)
		goto out;
	if (cc->encrypted ? write_encrypted(w, &s, cc, prefix, header, hlen) != 0 :
	    copy_body(w, &s, NULL) != 0)
		goto out;
	EVP_DigestFinal_ex(s.sha, sha_out, NULL);
	if (ls_write_all(out_fd, sha_out, 32) != 0)
		goto out;
	r = 0;
 out:
	e = errno;
	EVP_MD_CTX_free(s.sha);
	if (r != 0 && e != 0)
		r = ls_errf(errmsg, ls_errno_code(e), "write: %s", strerror(e));
	else if (r != 0)
		ls_errf(errmsg, r, "write: encryption failed");
	return r;
}

static void
pack_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
}

void
container_pack_common(msgpack_packer *pk, enum compression_codec codec,
    uint64_t body_len, const struct container_crypto *cc)
{
	pack_key(pk, "compression");
	pack_key(pk, compression_name(codec));
	pack_key(pk, "body_len");
	msgpack_pack_uint64(pk, body_len);
	pack_key(pk, "encryption");
	if (!cc->encrypted) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, 3);
	pack_key(pk, "alg");
	pack_key(pk, "aes-256-gcm");
	pack_key(pk, "nonce");
	msgpack_pack_bin_with_body(pk, cc->nonce, CONTAINER_NONCE_LEN);
	pack_key(pk, "key_id");
	msgpack_pack_bin_with_body(pk, cc->key_id, CONTAINER_KEYID_LEN);
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */
/* ------------------------------------------------------------------ */

int
container_parse_prefix(const uint8_t *buf, size_t len, const char magic[4],
    const char *name, uint32_t *hlen, bool *encrypted, size_t *need,
    char **errmsg)
{
	uint16_t version, flags;

	if (len < CONTAINER_PREFIX_LEN) {
		*need = CONTAINER_PREFIX_LEN;
		return LS_ERR_END;
	}
	if (memcmp(buf, magic, 4) != 0)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: bad magic (not a "
		    "logship %.4s object)", name, magic);
	version = (uint16_t)(buf[4] << 8 | buf[5]);
	flags = (uint16_t)(buf[6] << 8 | buf[7]);
	*hlen = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 |
	    (uint32_t)buf[10] << 8 | buf[11];
	if (version != CONTAINER_VERSION)
		return ls_errf(errmsg, LS_ERR_VERSION, "%s: format version %u; "
		    "this logship reads version %d — upgrade logship", name,
		    version, CONTAINER_VERSION);
	if ((flags & ~CONTAINER_FLAG_ENCRYPTED) != 0)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: unknown flags 0x%04x",
		    name, flags);
	if (*hlen == 0 || *hlen > CONTAINER_HEADER_MAX)
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: header length %u "
		    "out of range (1..%d)", name, *hlen, CONTAINER_HEADER_MAX);
	*encrypted = (flags & CONTAINER_FLAG_ENCRYPTED) != 0;
	*need = CONTAINER_PREFIX_LEN + (size_t)*hlen;
	return len < *need ? LS_ERR_END : 0;
}

static int
fixed_bin(struct mp_cur *c, uint8_t *dst, uint32_t want)
{
	const uint8_t *b;
	uint32_t len;

	if (mp_bin(c, &b, &len) != 0 || len != want)
		return -1;
	memcpy(dst, b, want);
	return 0;
}

static int
is_str(const char *k, uint32_t klen, const char *want)
{
	return strlen(want) == klen && memcmp(k, want, klen) == 0;
}

static int
parse_encryption(struct mp_cur *c, struct container_crypto *cc)
{
	uint32_t n, i, klen, vlen;
	const char *k, *v;
	int seen = 0;

	if (mp_peek(c) == MP_NIL) {
		cc->encrypted = false;
		return mp_nil(c);
	}
	if (mp_map(c, &n) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (mp_str(c, &k, &klen) != 0)
			return -1;
		if (is_str(k, klen, "alg")) {
			if ((seen & 1) || mp_str(c, &v, &vlen) != 0 ||
			    !is_str(v, vlen, "aes-256-gcm"))
				return -1;
			seen |= 1;
		} else if (is_str(k, klen, "nonce")) {
			if ((seen & 2) || fixed_bin(c, cc->nonce,
			    CONTAINER_NONCE_LEN) != 0)
				return -1;
			seen |= 2;
		} else if (is_str(k, klen, "key_id")) {
			if ((seen & 4) || fixed_bin(c, cc->key_id,
			    CONTAINER_KEYID_LEN) != 0)
				return -1;
			seen |= 4;
		} else if (mp_skip(c, 8) != 0)
			return -1;
	}
	cc->encrypted = true;
	return seen == 7 ? 0 : -1;
}

int
container_parse_common(struct mp_cur *c, const char *k, uint32_t klen,
    enum compression_codec *codec, uint64_t *body_len,
    struct container_crypto *cc, uint32_t *seen)
{
	const char *s;
	uint32_t len;
	int bit, r, found;

	if (is_str(k, klen, "compression")) {
		bit = 1;
		r = -1;
		if (mp_str(c, &s, &len) == 0 &&
		    (found = compression_lookup(s, len)) >= 0) {
			*codec = (enum compression_codec)found;
			r = 0;
		}
	} else if (is_str(k, klen, "body_len")) {
		bit = 2;
		r = mp_uint(c, body_len) == 0 && *body_len < ((uint64_t)1 << 48) ?
		    0 : -1;
	} else if (is_str(k, klen, "encryption")) {
		bit = 4;
		r = parse_encryption(c, cc);
	} else
		return 0;
	if (r != 0 || (*seen & (uint32_t)bit))
		return -1;
	*seen |= (uint32_t)bit;
	return 1;
}

int
container_fail(struct container_reader *r, char **errmsg, int code,
    const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	r->failed = code;
	ls_errf(errmsg, code, "%s: %s", r->name, msg != NULL ? msg : "error");
	free(msg);
	return code;
}

/* pread exactly len bytes at r->off, hashing them. */
static int
raw_read(struct container_reader *r, void *buf, size_t len, char **errmsg)
{
	ssize_t n = ls_pread_all(r->fd, buf, len, (off_t)r->off);

	if (n < 0)
		return container_fail(r, errmsg, LS_ERR_IO, "read: %s",
		    strerror(errno));
	if ((size_t)n != len)
		return container_fail(r, errmsg, LS_ERR_CORRUPT, "truncated at "
		    "byte %" PRIu64, r->off + (uint64_t)n);
	EVP_DigestUpdate(r->sha, buf, len);
	r->off += len;
	return 0;
}

int
container_reader_init(struct container_reader *r, int fd, const char *name,
    const uint8_t *key, const char magic[4], uint8_t **header,
    size_t *header_len, char **errmsg)
{
	uint8_t prefix[CONTAINER_PREFIX_LEN], *h = NULL;
	uint32_t hlen;
	size_t need;
	bool enc;
	int rc;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	if ((r->name = strdup(name)) == NULL || (r->sha = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1)
		return ls_errf(errmsg, LS_ERR_NOMEM, "%s: out of memory", name);
	if ((r->has_key = key != NULL))
		memcpy(r->key, key, CONTAINER_KEY_LEN);
	if ((rc = raw_read(r, prefix, sizeof(prefix), errmsg)) != 0)
		return rc;
	rc = container_parse_prefix(prefix, sizeof(prefix), magic, name, &hlen,
	    &enc, &need, errmsg);
	if (rc != 0 && rc != LS_ERR_END)
		return r->failed = rc;
	r->flag_encrypted = enc;
	if ((h = malloc(hlen)) == NULL)
		return container_fail(r, errmsg, LS_ERR_NOMEM, "out of memory");
	if ((rc = raw_read(r, h, hlen, errmsg)) != 0) {
		free(h);
		return rc;
	}
	*header = h;
	*header_len = hlen;
	return 0;
}

static int
setup_gcm(struct container_reader *r, const struct container_crypto *cc,
    const uint8_t *header, size_t hlen, char **errmsg)
{
	uint8_t id[CONTAINER_KEYID_LEN], prefix[CONTAINER_PREFIX_LEN];
	char want[17], have[17];
	int outl;

	if (!r->has_key)
		return container_fail(r, errmsg, LS_ERR_AUTH, "encrypted; pass "
		    "its key with --key-file");
	container_key_id(r->key, id);
	if (memcmp(id, cc->key_id, sizeof(id)) != 0) {
		ls_hex(cc->key_id, sizeof(id), want);
		ls_hex(id, sizeof(id), have);
		return container_fail(r, errmsg, LS_ERR_AUTH, "encrypted with "
		    "another key (key id %s; the key file given has id %s): "
		    "wrong --key-file", want, have);
	}
	if (ls_pread_all(r->fd, prefix, sizeof(prefix), 0) != sizeof(prefix))
		return container_fail(r, errmsg, LS_ERR_IO, "reread prefix");
	if ((r->gcm = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(r->gcm, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->gcm, EVP_CTRL_GCM_SET_IVLEN,
	    CONTAINER_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(r->gcm, NULL, NULL, r->key, cc->nonce) != 1 ||
	    EVP_DecryptUpdate(r->gcm, NULL, &outl, prefix, sizeof(prefix)) != 1 ||
	    EVP_DecryptUpdate(r->gcm, NULL, &outl, header, (int)hlen) != 1)
		return container_fail(r, errmsg, LS_ERR_INTERNAL, "cipher setup");
	return 0;
}

int
container_reader_start(struct container_reader *r, enum compression_codec codec,
    uint64_t body_len, const struct container_crypto *cc,
    const uint8_t *header, size_t hlen, char **errmsg)
{
	uint64_t total = container_total_len(hlen, body_len, cc->encrypted);
	uint8_t prefix[CONTAINER_PREFIX_LEN];
	struct stat st;

	if (fstat(r->fd, &st) != 0)
		return container_fail(r, errmsg, LS_ERR_IO, "stat: %s",
		    strerror(errno));
	if ((uint64_t)st.st_size != total)
		return container_fail(r, errmsg, LS_ERR_CORRUPT, "object is %jd "
		    "bytes but its header describes %" PRIu64 " (truncated or "
		    "extended)", (intmax_t)st.st_size, total);
	if (ls_pread_all(r->fd, prefix, sizeof(prefix), 0) != sizeof(prefix) ||
	    ((prefix[7] & CONTAINER_FLAG_ENCRYPTED) != 0) != cc->encrypted)
		return container_fail(r, errmsg, LS_ERR_CORRUPT, "encryption "
		    "flag and header disagree");
	r->body_left = body_len;
	r->codec = codec;
	if (decompressor_new(codec, &r->dec, NULL) != 0)
		return container_fail(r, errmsg, LS_ERR_NOMEM, "cannot set up "
		    "the %s decompressor", compression_name(codec));
	if (cc->encrypted)
		return setup_gcm(r, cc, header, hlen, errmsg);
	if (r->has_key)
		return container_fail(r, errmsg, LS_ERR_AUTH, "not encrypted "
		    "but a key was given: refusing a possible downgrade");
	return 0;
}

/* Feed the decompressor the next chunk of stored body. */
static int
refill(struct container_reader *r, char **errmsg)
{
	size_t n = r->body_left < CONTAINER_IOBUF ? (size_t)r->body_left :
	    CONTAINER_IOBUF;
	int outl, rc;

	if ((rc = raw_read(r, r->raw, n, errmsg)) != 0)
		return rc;
	r->body_left -= n;
	r->in = r->raw;
	if (r->gcm != NULL) {
		if (EVP_DecryptUpdate(r->gcm, r->plain, &outl, r->raw, (int)n) != 1)
			return container_fail(r, errmsg, LS_ERR_AUTH,
			    "decryption failed");
		r->in = r->plain;
	}
	r->in_left = n;
	return 0;
}

int
container_read(struct container_reader *r, void *dst, size_t len, size_t *got,
    bool exact, char **errmsg)
{
	const char *why = NULL;
	bool ended = false;
	size_t n, before;
	int rc;

	if (r->failed)
		return container_fail(r, errmsg, r->failed, "read after failure");
	if (r->dec == NULL)
		return container_fail(r, errmsg, LS_ERR_INTERNAL, "read before "
		    "start");
	*got = 0;
	while (*got < len && !ended) {
		if (r->in_left == 0 && r->body_left > 0 &&
		    (rc = refill(r, errmsg)) != 0)
			return rc;
		before = r->in_left;
		if (decompressor_run(r->dec, &r->in, &r->in_left,
		    (uint8_t *)dst + *got, len - *got, &n, &ended, &why) != 0)
			return container_fail(r, errmsg, LS_ERR_CORRUPT, "%s: %s",
			    compression_name(r->codec), why);
		*got += n;
		if (n == 0 && r->in_left == before && !ended) {
			if (r->in_left == 0 && r->body_left == 0)
				break;	/* input exhausted, nothing pending */
			if (r->in_left != 0)
				return container_fail(r, errmsg, LS_ERR_CORRUPT,
				    "%s: no progress", compression_name(r->codec));
		}
	}
	if (exact && *got != len)
		return container_fail(r, errmsg, LS_ERR_CORRUPT, "body ends "
		    "early (%zu of %zu bytes)", *got, len);
	return 0;
}

int
container_reader_finish(struct container_reader *r, uint8_t sha_out[32],
    char **errmsg)
{
	uint8_t extra, tag[CONTAINER_TAG_LEN], want[32], got[32];
	const char *why;
	bool ended;
	size_t n;
	int outl, rc;

	if ((rc = container_read(r, &extra, 1, &n, false, errmsg)) != 0)
		return rc;
	if (n != 0 || r->in_left != 0 || r->body_left != 0 ||
	    decompressor_run(r->dec, &r->in, &r->in_left, &extra, 1, &n,
	    &ended, &why) != 0 || !ended)
		return container_fail(r, errmsg, LS_ERR_CORRUPT, "body does not "
		    "end where its content does");
	if (r->gcm != NULL && (rc = raw_read(r, tag, sizeof(tag), errmsg)) != 0)
		return rc;
	EVP_DigestFinal_ex(r->sha, got, NULL);
	if (ls_pread_all(r->fd, want, 32, (off_t)r->off) != 32 ||
	    memcmp(want, got, 32) != 0)
		return container_fail(r, errmsg, LS_ERR_CORRUPT, "checksum "
		    "mismatch: the object is corrupt");
	if (r->gcm != NULL && (EVP_CIPHER_CTX_ctrl(r->gcm, EVP_CTRL_GCM_SET_TAG,
	    CONTAINER_TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(r->gcm, r->plain, &outl) != 1))
		return container_fail(r, errmsg, LS_ERR_AUTH, "authentication "
		    "failed: the object was tampered with");
	if (sha_out != NULL)
		memcpy(sha_out, got, 32);
	return 0;
}

void
container_reader_cleanup(struct container_reader *r)
{
	decompressor_free(r->dec);
	r->dec = NULL;
	EVP_MD_CTX_free(r->sha);
	EVP_CIPHER_CTX_free(r->gcm);
	r->sha = NULL;
	r->gcm = NULL;
	OPENSSL_cleanse(r->key, sizeof(r->key));
	free(r->name);
	r->name = NULL;
}
