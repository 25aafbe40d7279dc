/*
 * container.h: the framing shared by every logship object that is not plain
 * JSON (segments, base chunks, base manifests, schema dumps):
 *
 *	magic[4] version(u16 BE) flags(u16 BE) header_len(u32 BE)
 *	header (msgpack map, written by the object type)
 *	body: a zlib stream or a zstd frame (compression.h), AES-256-GCM
 *	      encrypted when a key is set
 *	GCM tag (16 bytes, encrypted objects only)
 *	SHA-256 of every preceding byte (32 bytes)
 *
 * The body is spooled to an anonymous temp file while it is written and
 * streamed while it is read, so neither side holds it in memory.  Header
 * maps carry the common keys "compression", "body_len" and "encryption"
 * (packed/parsed here); the AAD of the cipher is prefix + header.
 */
#ifndef LS_CONTAINER_H
#define LS_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>
#include <openssl/evp.h>

#include "format/compression.h"
#include "format/mp.h"

#define CONTAINER_VERSION	1
#define CONTAINER_PREFIX_LEN	12
#define CONTAINER_HEADER_MAX	65536
#define CONTAINER_TAG_LEN	16
#define CONTAINER_TRAILER_LEN	32
#define CONTAINER_NONCE_LEN	12
#define CONTAINER_KEY_LEN	32
#define CONTAINER_KEYID_LEN	8
#define CONTAINER_FLAG_ENCRYPTED 0x0001
#define CONTAINER_IOBUF		65536

struct container_crypto {
	bool	encrypted;
	uint8_t	nonce[CONTAINER_NONCE_LEN];
	uint8_t	key_id[CONTAINER_KEYID_LEN];
};

/* Key id: first 8 bytes of SHA-256("logship-key-id" || key). */
void container_key_id(const uint8_t key[CONTAINER_KEY_LEN],
    uint8_t id[CONTAINER_KEYID_LEN]);

/* ---- writing ---- */

struct container_writer {
	int			 spool;
	struct compressor	*comp;
	enum compression_codec	 codec;
	uint64_t		 body_len;
	uint8_t			 key[CONTAINER_KEY_LEN];
	bool			 has_key;
};

/* key: 32 bytes or NULL; comp NULL means zlib at its default level. */
int container_writer_init(struct container_writer *, const char *spool_dir,
    const struct compression *comp, const uint8_t *key, char **errmsg);
void container_writer_cleanup(struct container_writer *);
int container_writer_write(struct container_writer *, const void *buf,
    size_t len, char **errmsg);
/* Compressed bytes so far. */
uint64_t container_writer_bytes(const struct container_writer *);
/* End the compressed stream; fill *cc (random nonce when encrypting). */
int container_writer_seal(struct container_writer *, struct container_crypto *cc,
    char **errmsg);
/* Write prefix, header, body, tag, trailer to out_fd; sha_out = trailer. */
int container_writer_emit(struct container_writer *, int out_fd,
    const char magic[4], const struct container_crypto *cc,
    const void *header, size_t header_len, uint8_t sha_out[32], char **errmsg);

/* Pack the three common header entries (key/value pairs, no map header). */
void container_pack_common(msgpack_packer *, enum compression_codec,
    uint64_t body_len, const struct container_crypto *);

/* ---- reading ---- */

/*
 * Parse a prefix: magic, version, flags, header length.  LS_ERR_END with
 * *need when len is short.  Messages begin with name.
 */
int container_parse_prefix(const uint8_t *buf, size_t len, const char magic[4],
    const char *name, uint32_t *header_len, bool *encrypted, size_t *need,
    char **errmsg);

/*
 * One of the common header keys?  Returns 1 and parses the value, 0 if the
 * key is not common, -1 on a bad value (an unknown codec included).
 */
int container_parse_common(struct mp_cur *, const char *k, uint32_t klen,
    enum compression_codec *codec, uint64_t *body_len,
    struct container_crypto *cc, uint32_t *seen);
#define CONTAINER_COMMON_ALL	7	/* all three common keys seen */

struct container_reader {
	int		 fd;
	char		*name;
	uint8_t		 key[CONTAINER_KEY_LEN];
	bool		 has_key;
	EVP_MD_CTX	*sha;
	EVP_CIPHER_CTX	*gcm;
	enum compression_codec codec;
	struct decompressor *dec;
	const uint8_t	*in;		/* stored body not yet decompressed */
	size_t		 in_left;
	uint64_t	 off;
	uint64_t	 body_left;
	bool		 flag_encrypted;	/* from the prefix */
	int		 failed;
	uint8_t		 raw[CONTAINER_IOBUF];
	uint8_t		 plain[CONTAINER_IOBUF];
};

/*
 * Read the prefix and header of the object in fd; *header (malloc'd, the
 * caller frees) and *header_len.  The caller parses the header, then calls
 * container_reader_start with what it found.
 */
int container_reader_init(struct container_reader *, int fd, const char *name,
    const uint8_t *key, const char magic[4], uint8_t **header,
    size_t *header_len, char **errmsg);
/*
 * Check the object length against the header; set up decryption and the
 * decompressor for codec.
 */
int container_reader_start(struct container_reader *,
    enum compression_codec codec, uint64_t body_len,
    const struct container_crypto *cc, const uint8_t *header,
    size_t header_len, char **errmsg);
/*
 * Decompress up to len bytes into dst; *got is what arrived (less than len only
 * at the end of the stream).  With exact, a short read is an error.
 */
int container_read(struct container_reader *, void *dst, size_t len,
    size_t *got, bool exact, char **errmsg);
/* The stream must end here; then check the tag and the trailer. */
int container_reader_finish(struct container_reader *, uint8_t sha_out[32],
    char **errmsg);
void container_reader_cleanup(struct container_reader *);
/* Record a failure with "name: message"; returns code. */
int container_fail(struct container_reader *, char **errmsg, int code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Total object length for a header of hlen and a body of body_len. */
uint64_t container_total_len(size_t hlen, uint64_t body_len, bool encrypted);

#endif
