/*
 * azure_sign.c: Shared Key string-to-sign and signature (see azure_sign.h).
 *
 * Follows "Authorize with Shared Key" (Blob service, version 2009-09-19 and
 * later): header values are trimmed and inner runs of white space become
 * one space; a query parameter named twice lists its sorted values joined
 * by ','.  The string is built with open_memstream.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"
#include "store/azure/sign.h"

/* The standard headers of the string-to-sign, in order. */
static const char *const std_headers[] = {
	"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
	"Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
	"If-Unmodified-Since", "Range",
};
#define NSTD	(sizeof(std_headers) / sizeof(std_headers[0]))

/* A name/value pair: an x-ms-* header or a query parameter. */
struct pair {
	char	*name;
	char	*value;
};

struct pairs {
	struct pair	*v;
	size_t		 n;
};

static void
pairs_free(struct pairs *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* Append (name, value), taking both; 0 or LS_ERR_NOMEM (both freed). */
static int
pairs_add(struct pairs *p, char *name, char *value)
{
	struct pair *bigger;

	if (name == NULL || value == NULL ||
	    (bigger = realloc(p->v, (p->n + 1) * sizeof(*bigger))) == NULL) {
		free(name);
		free(value);
		return LS_ERR_NOMEM;
	}
	p->v = bigger;
	p->v[p->n].name = name;
	p->v[p->n].value = value;
	p->n++;
	return 0;
}

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* A copy of the len bytes at s, lowercased. */
static char *
lower_dup(const char *s, size_t len)
{
	char *out = strndup(s, len);
	size_t i;

	for (i = 0; out != NULL && out[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return out;
}

/* A copy of v, trimmed, with inner runs of white space made one space. */
static char *
squeeze_dup(const char *v)
{
	char *out = malloc(strlen(v) + 1), *p = out;

	if (out == NULL)
		return NULL;
	while (isspace((unsigned char)*v))
		v++;
	for (; *v != '\0'; v++) {
		if (!isspace((unsigned char)*v))
			*p++ = *v;
		else if (p > out && p[-1] != ' ')
			*p++ = ' ';
	}
	while (p > out && p[-1] == ' ')
		p--;
	*p = '\0';
	return out;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode len bytes of s ('+' is a space, as the service reads it). */
static char *
uri_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *p = out;
	size_t i;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len &&
		    (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)s[i + 2])) >= 0) {
			*p++ = (char)(hi << 4 | lo);
			i += 2;
		} else
			*p++ = s[i] == '+' ? ' ' : s[i];
	}
	*p = '\0';
	return out;
}

/*
 * Sort the request's headers into the standard values (std[], pointing
 * into the list) and the x-ms-* pairs (xms, sorted).
 */
static int
split_headers(const struct curl_slist *h, const char *std[NSTD],
    struct pairs *xms)
{
	const char *colon, *v;
	size_t i, nlen;

	for (; h != NULL; h = h->next) {
		if ((colon = strchr(h->data, ':')) == NULL)
			continue;
		for (nlen = (size_t)(colon - h->data); nlen > 0 &&
		    isspace((unsigned char)h->data[nlen - 1]); nlen--)
			;
		for (v = colon + 1; isspace((unsigned char)*v); v++)
			;
		if (*v == '\0')
			continue;	/* "Name:" removes a header in curl */
		if (nlen > 5 && strncasecmp(h->data, "x-ms-", 5) == 0) {
			if (pairs_add(xms, lower_dup(h->data, nlen),
			    squeeze_dup(v)) != 0)
				return LS_ERR_NOMEM;
			continue;
		}
		for (i = 0; i < NSTD; i++)
			if (strlen(std_headers[i]) == nlen &&
			    strncasecmp(h->data, std_headers[i], nlen) == 0)
				std[i] = v;
	}
	if (xms->n > 1)
		qsort(xms->v, xms->n, sizeof(*xms->v), pair_cmp);
	return 0;
}

/* The query's parameters, names lowercased, values decoded, sorted. */
static int
split_query(const char *q, struct pairs *out)
{
	const char *amp, *eq;
	size_t len;

	while (q != NULL && *q != '\0') {
		amp = strchr(q, '&');
		len = amp != NULL ? (size_t)(amp - q) : strlen(q);
		eq = memchr(q, '=', len);
		if (len > 0 && pairs_add(out,
		    lower_dup(q, eq != NULL ? (size_t)(eq - q) : len),
		    eq != NULL ? uri_decode(eq + 1, len - (size_t)(eq + 1 - q)) :
		    strdup("")) != 0)
			return LS_ERR_NOMEM;
		q = amp != NULL ? amp + 1 : NULL;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), pair_cmp);
	return 0;
}

/* "\nname:v1,v2" for each parameter name, in order. */
static void
put_query(FILE *f, const struct pairs *q)
{
	size_t i;

	for (i = 0; i < q->n; i++) {
		if (i > 0 && strcmp(q->v[i].name, q->v[i - 1].name) == 0)
			fprintf(f, ",%s", q->v[i].value);
		else
			fprintf(f, "\n%s:%s", q->v[i].name, q->v[i].value);
	}
}

static void
put_std(FILE *f, const char *std[NSTD])
{
	size_t i;

	for (i = 0; i < NSTD; i++) {
		if (std[i] != NULL && !(strcmp(std_headers[i],
		    "Content-Length") == 0 && strcmp(std[i], "0") == 0))
			fputs(std[i], f);
		fputc('\n', f);
	}
}

int
azure_string_to_sign(const char *account, const char *method,
    const char *path, const char *query, const struct curl_slist *headers,
    char **out)
{
	const char *std[NSTD] = { NULL };
	struct pairs xms = { NULL, 0 }, qp = { NULL, 0 };
	char *buf = NULL;
	size_t len, i;
	FILE *f = NULL;
	int r = LS_ERR_NOMEM;

	if (split_headers(headers, std, &xms) != 0 || split_query(query, &qp) != 0)
		goto out;
	if ((f = open_memstream(&buf, &len)) == NULL)
		goto out;
	fprintf(f, "%s\n", method);
	put_std(f, std);
	for (i = 0; i < xms.n; i++)
		fprintf(f, "%s:%s\n", xms.v[i].name, xms.v[i].value);
	fprintf(f, "/%s%s", account, path);
	put_query(f, &qp);
	if (ferror(f) || fclose(f) != 0)
		goto out;
	f = NULL;
	*out = buf;
	buf = NULL;
	r = 0;
 out:
	if (f != NULL)
		fclose(f);
	free(buf);
	pairs_free(&xms);
	pairs_free(&qp);
	return r;
}

void
azure_signature(const uint8_t *key, size_t keylen, const char *sts,
    char sig[AZURE_SIG_LEN + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)sts,
	    strlen(sts), mac, &maclen);
	EVP_EncodeBlock((unsigned char *)sig, mac, (int)maclen);
	OPENSSL_cleanse(mac, sizeof(mac));
}

int
azure_key_decode(const char *b64, uint8_t **key, size_t *keylen)
{
	const char *e;
	uint8_t *buf;
	size_t len, pad = 0;
	int n;

	while (isspace((unsigned char)*b64))
		b64++;
	for (e = b64 + strlen(b64); e > b64 && isspace((unsigned char)e[-1]); e--)
		;
	len = (size_t)(e - b64);
	if (len == 0 || len % 4 != 0 || len > 4096)
		return LS_ERR_INVALID;
	if (b64[len - 1] == '=')
		pad = b64[len - 2] == '=' ? 2 : 1;
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return LS_ERR_NOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
	if (n < 0 || (size_t)n < pad || memchr(b64, '=', len - pad) != NULL) {
		OPENSSL_cleanse(buf, len / 4 * 3 + 1);
		free(buf);
		return LS_ERR_INVALID;
	}
	*key = buf;
	*keylen = (size_t)n - pad;
	return 0;
}

void
azure_date(time_t t, char out[AZURE_DATE_LEN])
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, AZURE_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
