/*
 * sigv4.c: AWS Signature Version 4 (see sigv4.h).
 *
 * Four steps, one function each: the canonical request (method, URI,
 * query, headers, signed header names, payload hash), the string to sign
 * (algorithm, time, scope, hash of the canonical request), the signing key
 * (HMAC chain over date, region, service and "aws4_request", starting from
 * "AWS4" + secret) and the signature.  Text is built with open_memstream;
 * the secret and the keys derived from it are wiped after use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"
#include "common/util.h"
#include "store/http.h"
#include "store/s3/sigv4.h"

#define ALGORITHM	"AWS4-HMAC-SHA256"
#define HASH_BUF	(256 * 1024)

/* A header in canonical form, with its position to keep duplicates in order. */
struct chdr {
	char	*name;		/* lowercased */
	char	*value;		/* trimmed, runs of blanks made one space */
	size_t	 order;
};

/* An encoded query parameter. */
struct qparam {
	char	*name;
	char	*value;
};

/* Trimmed copy of v, each inner run of blanks collapsed to one space. */
static char *
trim_value(const char *v)
{
	char *out, *p;
	int blank = 0;

	if (v == NULL)
		v = "";
	if ((out = malloc(strlen(v) + 1)) == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	for (p = out; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = 1;
			continue;
		}
		if (blank)
			*p++ = ' ';
		blank = 0;
		*p++ = *v;
	}
	*p = '\0';
	return out;
}

static int
chdr_cmp(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void
chdrs_free(struct chdr *h, size_t n)
{
	size_t i;

	for (i = 0; h != NULL && i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

/* Add one header (name lowercased, value trimmed) at h[*n]. */
static int
chdr_add(struct chdr *h, size_t *n, const char *name, const char *value)
{
	char *p;

	h[*n].order = *n;
	h[*n].name = strdup(name);
	h[*n].value = trim_value(value);
	(*n)++;
	if (h[*n - 1].name == NULL || h[*n - 1].value == NULL)
		return LS_ERR_NOMEM;
	for (p = h[*n - 1].name; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

/* The request's headers plus x-amz-date (and the token), sorted. */
static int
collect_headers(const struct sigv4_creds *c, const struct sigv4_request *q,
    struct chdr **outp, size_t *np)
{
	struct chdr *h;
	size_t i, n = 0;
	int r = 0;

	if ((h = calloc(q->nheaders + 2, sizeof(*h))) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; r == 0 && i < q->nheaders; i++)
		r = chdr_add(h, &n, q->headers[i].name, q->headers[i].value);
	if (r == 0)
		r = chdr_add(h, &n, "x-amz-date", q->amz_date);
	if (r == 0 && c->session_token != NULL)
		r = chdr_add(h, &n, "x-amz-security-token", c->session_token);
	if (r != 0) {
		chdrs_free(h, n);
		return r;
	}
	qsort(h, n, sizeof(*h), chdr_cmp);
	*outp = h;
	*np = n;
	return 0;
}

/*
 * Write the canonical headers ("name:value\n", a repeated name once with
 * its values joined by ',') to f and the signed header names to s.
 */
static void
write_headers(FILE *f, FILE *s, const struct chdr *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
			fprintf(f, ",%s", h[i].value);
			continue;
		}
		fprintf(f, "%s%s:%s", i > 0 ? "\n" : "", h[i].name, h[i].value);
		fprintf(s, "%s%s", i > 0 ? ";" : "", h[i].name);
	}
	fputs("\n", f);
}

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

char *
sigv4_canonical_query(const struct sigv4_param *p, size_t n)
{
	struct qparam *e;
	char *out = NULL;
	size_t i, len = 0;
	FILE *f;

	if ((e = calloc(n + 1, sizeof(*e))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		e[i].name = http_uri_encode(p[i].name, false);
		e[i].value = http_uri_encode(p[i].value != NULL ? p[i].value :
		    "", false);
		if (e[i].name == NULL || e[i].value == NULL)
			goto out;
	}
	qsort(e, n, sizeof(*e), qparam_cmp);
	if ((f = open_memstream(&out, &len)) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		fprintf(f, "%s%s=%s", i > 0 ? "&" : "", e[i].name, e[i].value);
	if (fclose(f) != 0) {
		free(out);
		out = NULL;
	}
 out:
	for (i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	return out;
}

char *
sigv4_encode_path(const char *path)
{
	return http_uri_encode(path, true);
}

/* The canonical request, and the signed header names into *signedp. */
static int
canonical_request(const struct sigv4_creds *c, const struct sigv4_request *q,
    char **outp, char **signedp)
{
	struct chdr *h = NULL;
	char *path = NULL, *query = NULL, *out = NULL, *names = NULL;
	size_t n = 0, len, nlen;
	FILE *f = NULL, *s = NULL;
	int r = LS_ERR_NOMEM;

	if ((path = sigv4_encode_path(q->path)) == NULL ||
	    (query = sigv4_canonical_query(q->query, q->nquery)) == NULL ||
	    collect_headers(c, q, &h, &n) != 0 ||
	    (f = open_memstream(&out, &len)) == NULL ||
	    (s = open_memstream(&names, &nlen)) == NULL)
		goto out;
	fprintf(f, "%s\n%s\n%s\n", q->method, path, query);
	write_headers(f, s, h, n);
	r = fclose(s);
	s = NULL;
	if (r != 0) {
		r = LS_ERR_NOMEM;
		goto out;
	}
	fprintf(f, "\n%s\n%s", names, q->payload_hash);
	r = fclose(f) == 0 ? 0 : LS_ERR_NOMEM;
	f = NULL;
	if (r == 0) {
		*outp = out;
		*signedp = names;
		out = names = NULL;
	}
 out:
	if (s != NULL)
		fclose(s);
	if (f != NULL)
		fclose(f);
	free(out);
	free(names);
	chdrs_free(h, n);
	free(path);
	free(query);
	return r;
}

static void
hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	    strlen(msg), out, &len);
}

/*
 * The signing key: HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
 * service), "aws4_request").
 */
static int
signing_key(const char *secret, const char *date8, const char *region,
    const char *service, uint8_t key[32])
{
	size_t klen = strlen(secret) + 4;
	char *k;

	if ((k = malloc(klen + 1)) == NULL)
		return LS_ERR_NOMEM;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, klen - 4);
	hmac(k, klen, date8, key);
	OPENSSL_cleanse(k, klen);
	free(k);
	hmac(key, 32, region, key);
	hmac(key, 32, service, key);
	hmac(key, 32, "aws4_request", key);
	return 0;
}

void
sigv4_sha256_hex(const void *buf, size_t len, char out[65])
{
	uint8_t md[32];

	EVP_Digest(buf, len, md, NULL, EVP_sha256(), NULL);
	ls_hex(md, sizeof(md), out);
}

/* String to sign, signature and Authorization from the canonical request. */
static int
sign_creq(const struct sigv4_creds *c, const struct sigv4_request *q,
    const char *names, struct sigv4_signed *out)
{
	char date8[9], scope[256], hash[65];
	uint8_t key[32], sig[32];

	snprintf(date8, sizeof(date8), "%.8s", q->amz_date);
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date8,
	    q->region, q->service);
	sigv4_sha256_hex(out->canonical_request,
	    strlen(out->canonical_request), hash);
	if (asprintf(&out->string_to_sign, ALGORITHM "\n%s\n%s\n%s",
	    q->amz_date, scope, hash) == -1) {
		out->string_to_sign = NULL;
		return LS_ERR_NOMEM;
	}
	if (signing_key(c->secret_key, date8, q->region, q->service, key) != 0)
		return LS_ERR_NOMEM;
	hmac(key, sizeof(key), out->string_to_sign, sig);
	OPENSSL_cleanse(key, sizeof(key));
	ls_hex(sig, sizeof(sig), out->signature);
	if (asprintf(&out->authorization, ALGORITHM " Credential=%s/%s, "
	    "SignedHeaders=%s, Signature=%s", c->access_key, scope, names,
	    out->signature) == -1) {
		out->authorization = NULL;
		return LS_ERR_NOMEM;
	}
	return 0;
}

int
sigv4_sign(const struct sigv4_creds *c, const struct sigv4_request *q,
    struct sigv4_signed *out)
{
	char *names = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = canonical_request(c, q, &out->canonical_request, &names)) == 0)
		r = sign_creq(c, q, names, out);
	free(names);
	if (r != 0)
		sigv4_signed_free(out);
	return r;
}

void
sigv4_signed_free(struct sigv4_signed *s)
{
	free(s->canonical_request);
	free(s->string_to_sign);
	free(s->authorization);
	memset(s, 0, sizeof(*s));
}

void
sigv4_amz_date(int64_t us, char out[17])
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Feed len bytes of fd at off to both digests. */
static int
hash_range(int fd, uint64_t off, uint64_t len, EVP_MD_CTX *sha,
    EVP_MD_CTX *md5, char *buf, char **errmsg)
{
	ssize_t got;
	size_t want;

	while (len > 0) {
		want = len < HASH_BUF ? (size_t)len : HASH_BUF;
		if ((got = ls_pread_all(fd, buf, want, (off_t)off)) < 0)
			return ls_errf(errmsg, LS_ERR_IO, "read at offset "
			    "%llu: %s", (unsigned long long)off,
			    strerror(errno));
		if ((size_t)got < want)
			return ls_errf(errmsg, LS_ERR_IO, "the file ended at "
			    "offset %llu, before the %llu bytes expected (did "
			    "it shrink?)", (unsigned long long)(off + got),
			    (unsigned long long)(off + len));
		EVP_DigestUpdate(sha, buf, want);
		if (md5 != NULL)
			EVP_DigestUpdate(md5, buf, want);
		off += want;
		len -= want;
	}
	return 0;
}

int
sigv4_hash_fd(int fd, uint64_t off, uint64_t len, char sha_hex[65],
    uint8_t md5[16], char **errmsg)
{
	EVP_MD_CTX *sc = EVP_MD_CTX_new(), *mc = NULL;
	uint8_t md[32];
	char *buf = malloc(HASH_BUF);
	int r = LS_ERR_NOMEM;

	if (md5 != NULL && (mc = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (sc == NULL || buf == NULL ||
	    EVP_DigestInit_ex(sc, EVP_sha256(), NULL) != 1 ||
	    (mc != NULL && EVP_DigestInit_ex(mc, EVP_md5(), NULL) != 1))
		goto out;
	if ((r = hash_range(fd, off, len, sc, mc, buf, errmsg)) != 0)
		goto out;
	EVP_DigestFinal_ex(sc, md, NULL);
	ls_hex(md, sizeof(md), sha_hex);
	if (mc != NULL)
		EVP_DigestFinal_ex(mc, md5, NULL);
	r = 0;
 out:
	if (r == LS_ERR_NOMEM)
		ls_errf(errmsg, r, "out of memory while hashing");
	EVP_MD_CTX_free(sc);
	EVP_MD_CTX_free(mc);
	free(buf);
	return r;
}
