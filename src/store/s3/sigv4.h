/*
 * sigv4.h: AWS Signature Version 4 (AWS4-HMAC-SHA256), as S3 wants it.
 *
 * The caller describes one request: method, unencoded path, unencoded
 * query parameters, the headers to sign (host among them) and the hex
 * SHA-256 of the payload (always the real hash; UNSIGNED-PAYLOAD is never
 * used).  sigv4_sign returns the canonical request, the string to sign, the
 * signature and the value of the Authorization header.
 *
 * S3's rules: the path is percent-encoded once, segment by segment ('/'
 * kept), and never normalised ("." and ".." are names like any other).
 * The request's URL must carry the same encoding: build it with
 * sigv4_encode_path and sigv4_canonical_query.
 */
#ifndef LS_SIGV4_H
#define LS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

/* A query parameter or a header; a NULL value is the empty string. */
struct sigv4_param {
	const char	*name;
	const char	*value;
};

/* The caller's keys; they are only read, never copied or kept. */
struct sigv4_creds {
	const char	*access_key;
	const char	*secret_key;
	const char	*session_token;	/* NULL: long-term keys */
};

struct sigv4_request {
	const char			*method;	/* "GET", "PUT", ... */
	const char			*path;		/* unencoded, "/..." */
	const struct sigv4_param	*query;		/* unencoded */
	size_t				 nquery;
	/*
	 * Headers to sign (and send), names in any case, values untrimmed;
	 * a name given twice is signed as one header, values joined by ','.
	 * x-amz-date (amz_date) and, with a session token,
	 * x-amz-security-token are added here: the caller sends both but does
	 * not list them.
	 */
	const struct sigv4_param	*headers;
	size_t				 nheaders;
	const char			*payload_hash;	/* 64 lowercase hex */
	const char			*amz_date;	/* "20150830T123600Z" */
	const char			*region;	/* "us-east-1" */
	const char			*service;	/* "s3" */
};

/* What sigv4_sign produces; free with sigv4_signed_free. */
struct sigv4_signed {
	char	*canonical_request;
	char	*string_to_sign;
	char	*authorization;		/* the Authorization header's value */
	char	 signature[65];		/* lowercase hex */
};

/* Sign req.  0, or LS_ERR_NOMEM (out is then empty). */
int sigv4_sign(const struct sigv4_creds *, const struct sigv4_request *,
    struct sigv4_signed *out);
/* Free what sigv4_sign allocated; safe on a zeroed struct. */
void sigv4_signed_free(struct sigv4_signed *);

/*
 * The canonical query string: names and values percent-encoded (only
 * RFC 3986 unreserved characters kept), sorted by name then value, joined
 * with '&' (a parameter without a value is "name=").  Usable as a URL's
 * query.  malloc'd; NULL when out of memory.
 */
char *sigv4_canonical_query(const struct sigv4_param *, size_t n);

/* path percent-encoded with '/' kept (the canonical URI).  malloc'd or NULL. */
char *sigv4_encode_path(const char *path);

/* "YYYYMMDDTHHMMSSZ" for us microseconds since the epoch (UTC). */
void sigv4_amz_date(int64_t us, char out[17]);

/* Lowercase hex SHA-256 of buf. */
void sigv4_sha256_hex(const void *buf, size_t len, char out[65]);

/*
 * Hash len bytes of fd from offset off (pread; fd's offset is untouched)
 * in one pass: hex SHA-256 into sha_hex and, when md5 is not NULL, the raw
 * MD5 (for Content-MD5).  0, or LS_ERR_IO (read error, or EOF before len
 * bytes) / LS_ERR_NOMEM with *errmsg set.
 */
int sigv4_hash_fd(int fd, uint64_t off, uint64_t len, char sha_hex[65],
    uint8_t md5[16], char **errmsg);

#endif
