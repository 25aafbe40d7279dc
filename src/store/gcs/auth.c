/*
 * gcs_auth.c: service-account access tokens for GCS (see gcs_auth.h).
 *
 * The key file is read once; only the parsed private key (an EVP_PKEY)
 * is kept, and every copy of its PEM text is wiped.  A token is fetched
 * under the mutex, so that threads needing one at the same moment wait
 * for a single exchange instead of each starting their own.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/error.h"
#include "common/secfile.h"
#include "common/util.h"
#include "store/gcs/auth.h"
#include "store/http.h"

#define KEYFILE_MAX	(64 * 1024)
#define TOKEN_RESP_MAX	(64 * 1024)
#define REFRESH_EARLY	300		/* seconds before expiry */
#define DETAIL_MAX	300		/* bytes of an error body quoted */
#define GRANT_TYPE	"urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"

struct gcs_auth {
	char		*path;		/* key file, for messages */
	char		*email;
	char		*key_id;	/* NULL if the file has none */
	char		*token_uri;
	EVP_PKEY	*pkey;
	pthread_mutex_t	 lock;		/* protects token, refresh_at */
	char		*token;
	int64_t		 refresh_at;	/* ls_now_us() time to fetch again */
};

/* Read at most KEYFILE_MAX bytes of path into *bufp (NUL-terminated). */
static int
read_small_file(const char *path, char **bufp, size_t *lenp, char **errmsg)
{
	char *buf = NULL;
	ssize_t n;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return ls_errf(errmsg, errno == ENOENT ? LS_ERR_NOTFOUND :
		    LS_ERR_IO, "GCS key file %s: %s", path, strerror(errno));
	if ((r = secfile_check_fd(fd, path, "GCS key file", errmsg)) != 0) {
		close(fd);
		return r;
	}
	if ((buf = malloc(KEYFILE_MAX + 1)) == NULL) {
		close(fd);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	n = ls_pread_all(fd, buf, KEYFILE_MAX + 1, 0);
	r = n < 0 ? ls_errf(errmsg, LS_ERR_IO, "GCS key file %s: %s", path,
	    strerror(errno)) : n > KEYFILE_MAX ? ls_errf(errmsg, LS_ERR_INVALID,
	    "GCS key file %s: larger than %d bytes; is it a service-account "
	    "key?", path, KEYFILE_MAX) : 0;
	close(fd);
	if (r != 0) {
		OPENSSL_clear_free(buf, KEYFILE_MAX + 1);
		return r;
	}
	buf[n] = '\0';
	*bufp = buf;
	*lenp = (size_t)n;
	return 0;
}

/* Parse the PEM private key; the message never quotes it. */
static int
load_pkey(struct gcs_auth *a, const char *pem, char **errmsg)
{
	BIO *bio;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	a->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (a->pkey == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "GCS key file %s: "
		    "private_key is not a PEM private key; download a new JSON "
		    "key for %s", a->path, a->email);
	if (EVP_PKEY_base_id(a->pkey) != EVP_PKEY_RSA)
		return ls_errf(errmsg, LS_ERR_INVALID, "GCS key file %s: "
		    "private_key is not an RSA key (RS256 needs one)", a->path);
	return 0;
}

/* A string member of o, or NULL if absent, empty or not a string. */
static const char *
member(json_t *o, const char *name)
{
	const char *v = json_string_value(json_object_get(o, name));

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Wipe the (jansson-owned) text of a string member. */
static void
wipe_member(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v),
		    json_string_length(v));
}

/* Take client_email, private_key_id, token_uri and the key from doc. */
static int
parse_key(struct gcs_auth *a, json_t *doc, char **errmsg)
{
	const char *type = member(doc, "type"), *pem;

	if (type != NULL && strcmp(type, "service_account") != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "GCS key file %s: type "
		    "\"%s\" is not supported; use a service-account key (type "
		    "\"service_account\")", a->path, type);
	if (member(doc, "client_email") == NULL ||
	    (pem = member(doc, "private_key")) == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "GCS key file %s: "
		    "client_email or private_key missing; is it a "
		    "service-account JSON key?", a->path);
	a->email = strdup(member(doc, "client_email"));
	a->token_uri = strdup(member(doc, "token_uri") != NULL ?
	    member(doc, "token_uri") : GCS_AUTH_TOKEN_URI);
	if (member(doc, "private_key_id") != NULL)
		a->key_id = strdup(member(doc, "private_key_id"));
	if (a->email == NULL || a->token_uri == NULL ||
	    (member(doc, "private_key_id") != NULL && a->key_id == NULL))
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if (gcs_auth_url_ok(a->token_uri) != 0)
		return ls_errf(errmsg, LS_ERR_INVALID, "GCS key file %s: "
		    "token_uri %s is neither https nor a loopback http "
		    "address; refusing to send credentials there", a->path,
		    a->token_uri);
	return load_pkey(a, pem, errmsg);
}

int
gcs_auth_new(const char *path, struct gcs_auth **out, char **errmsg)
{
	struct gcs_auth *a = NULL;
	json_t *doc = NULL;
	json_error_t jerr;
	char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = read_small_file(path, &buf, &len, errmsg)) != 0)
		return r;
	r = LS_ERR_NOMEM;
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->path = strdup(path)) == NULL) {
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&a->lock, NULL);
	if ((doc = json_loadb(buf, len, 0, &jerr)) == NULL ||
	    !json_is_object(doc)) {
		r = ls_errf(errmsg, LS_ERR_INVALID, "GCS key file %s: not a "
		    "JSON object (line %d); is it a service-account key?", path,
		    doc == NULL ? jerr.line : 1);
		goto out;
	}
	if ((r = parse_key(a, doc, errmsg)) != 0)
		goto out;
	*out = a;
	a = NULL;
 out:
	if (doc != NULL)
		wipe_member(doc, "private_key");
	json_decref(doc);
	OPENSSL_clear_free(buf, len + 1);
	gcs_auth_free(a);
	return r;
}

void
gcs_auth_free(struct gcs_auth *a)
{
	if (a == NULL)
		return;
	if (a->token != NULL)
		OPENSSL_clear_free(a->token, strlen(a->token));
	EVP_PKEY_free(a->pkey);
	if (a->path != NULL)
		pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a->email);
	free(a->key_id);
	free(a->token_uri);
	free(a);
}

const char *
gcs_auth_email(const struct gcs_auth *a)
{
	return a->email;
}

/* base64url of len bytes without padding (RFC 7515); malloc'd or NULL. */
static char *
b64url(const unsigned char *buf, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	size_t n, i;

	if (out == NULL)
		return NULL;
	n = (size_t)EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

/* base64url of the compact JSON text of o (a new reference, released). */
static char *
b64url_json(json_t *o)
{
	char *text, *out = NULL;

	if (o != NULL && (text = json_dumps(o, JSON_COMPACT)) != NULL) {
		out = b64url((const unsigned char *)text, strlen(text));
		free(text);
	}
	json_decref(o);
	return out;
}

/* RS256 of the len bytes of msg, base64url; malloc'd or NULL. */
static char *
sign_rs256(EVP_PKEY *pkey, const char *msg, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *out = NULL;

	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)msg,
	    len) != 1 || (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg,
	    len) != 1)
		goto out;
	out = b64url(sig, siglen);
 out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}

int
gcs_auth_jwt(const struct gcs_auth *a, int64_t now, char **jwtp,
    char **errmsg)
{
	json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	char *h, *c = NULL, *signing = NULL, *sig = NULL;
	int r = LS_ERR_NOMEM;

	if (hdr != NULL && a->key_id != NULL)
		json_object_set_new(hdr, "kid", json_string(a->key_id));
	h = b64url_json(hdr);
	c = b64url_json(json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", a->email,
	    "scope", GCS_AUTH_SCOPE, "aud", a->token_uri,
	    "iat", (json_int_t)now,
	    "exp", (json_int_t)(now + GCS_AUTH_LIFETIME)));
	if (h == NULL || c == NULL || asprintf(&signing, "%s.%s", h, c) == -1) {
		signing = NULL;
		goto out;
	}
	if ((sig = sign_rs256(a->pkey, signing, strlen(signing))) == NULL) {
		r = ls_errf(errmsg, LS_ERR_INTERNAL, "GCS key file %s: signing "
		    "the token request failed", a->path);
		goto out;
	}
	if (asprintf(jwtp, "%s.%s", signing, sig) == -1)
		goto out;
	r = 0;
 out:
	if (r == LS_ERR_NOMEM)
		ls_errf(errmsg, r, "out of memory");
	free(h);
	free(c);
	free(signing);
	free(sig);
	return r;
}

/* Copy s to a new string with control characters made spaces, at most max. */
static char *
one_line(const char *s, size_t len, size_t max)
{
	char *out = strndup(s, len < max ? len : max), *p;

	for (p = out; p != NULL && *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

/* "reason: message" from a JSON API or OAuth error document, or NULL. */
static char *
json_error_detail(json_t *doc)
{
	json_t *e = json_object_get(doc, "error");
	const char *reason, *msg;
	char *out = NULL;

	if (json_is_string(e)) {
		reason = json_string_value(e);
		msg = member(doc, "error_description");
	} else if (json_is_object(e)) {
		reason = member(json_array_get(json_object_get(e, "errors"), 0),
		    "reason");
		if (reason == NULL)
			reason = member(e, "status");
		msg = member(e, "message");
	} else
		return NULL;
	if (asprintf(&out, "%s%s%s", reason ? reason : "", reason && msg ?
	    ": " : "", msg ? msg : "") == -1)
		return NULL;
	return out;
}

char *
gcs_error_detail(const char *body, size_t len)
{
	json_t *doc;
	char *d = NULL, *out;

	if (body == NULL || len == 0)
		return strdup("(no details)");
	if ((doc = json_loadb(body, len, 0, NULL)) != NULL) {
		d = json_error_detail(doc);
		json_decref(doc);
	}
	if (d != NULL && *d != '\0') {
		out = one_line(d, strlen(d), DETAIL_MAX);
		free(d);
		return out;
	}
	free(d);
	return one_line(body, len, DETAIL_MAX);
}

int
gcs_token_parse(const char *body, size_t len, char **tokenp,
    int64_t *lifetime_s)
{
	json_t *doc = json_loadb(body ? body : "", len, 0, NULL);
	const char *tok = member(doc, "access_token"), *type;
	json_int_t life = json_integer_value(json_object_get(doc,
	    "expires_in"));
	int r = 0;

	type = member(doc, "token_type");
	*tokenp = NULL;
	if (tok == NULL || life <= 0 || (type != NULL &&
	    strcasecmp(type, "Bearer") != 0))
		r = LS_ERR_AUTH;
	else if ((*tokenp = strdup(tok)) == NULL)
		r = LS_ERR_NOMEM;
	else
		*lifetime_s = life < GCS_TOKEN_LIFE_MAX ? life :
		    GCS_TOKEN_LIFE_MAX;
	if (doc != NULL)
		wipe_member(doc, "access_token");
	json_decref(doc);
	return r;
}

/* Store the token of a 200 response; LS_ERR_AUTH if it has none. */
static int
take_token(struct gcs_auth *a, const struct http_resp *resp, char **errmsg)
{
	int64_t life = 0;
	int r = gcs_token_parse(resp->body, resp->body_len, &a->token, &life);

	if (r == LS_ERR_AUTH)
		return ls_errf(errmsg, LS_ERR_AUTH, "token endpoint %s answered "
		    "without a bearer access_token and expires_in",
		    a->token_uri);
	if (r != 0)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	a->refresh_at = ls_now_us() + (life > 2 * REFRESH_EARLY ?
	    life - REFRESH_EARLY : life / 2) * 1000000;
	return 0;
}

/* The message for a refused token request (body never holds a secret). */
static int
token_refused(struct gcs_auth *a, const struct http_resp *resp, char **errmsg)
{
	char *d = gcs_error_detail(resp->body, resp->body_len);

	ls_errf(errmsg, LS_ERR_AUTH, "token endpoint %s refused service "
	    "account %s (key file %s): HTTP %ld %s; check that the key is "
	    "current and not deleted", a->token_uri, a->email, a->path,
	    resp->status, d ? d : "");
	free(d);
	return LS_ERR_AUTH;
}

/* One POST of a fresh assertion to token_uri. */
static int
token_post(struct gcs_auth *a, struct http_resp *resp, char **errmsg)
{
	struct curl_slist *h = NULL, *h2;
	struct http_req q = { .method = "POST", .url = a->token_uri,
	    .body_fd = -1, .resp_fd = -1, .resp_max = TOKEN_RESP_MAX,
	    .timeout_s = 60 };
	char *jwt = NULL, *body = NULL;
	int r;

	memset(resp, 0, sizeof(*resp));
	if ((r = gcs_auth_jwt(a, ls_now_us() / 1000000, &jwt, errmsg)) != 0)
		return r;
	if (asprintf(&body, "grant_type=%s&assertion=%s", GRANT_TYPE,
	    jwt) == -1)
		body = NULL;
	h = curl_slist_append(NULL, "Content-Type: "
	    "application/x-www-form-urlencoded");
	if (h != NULL && (h2 = curl_slist_append(h, "Expect:")) != NULL)
		h = h2;
	if (body == NULL || h == NULL)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	else {
		q.headers = h;
		q.body = body;
		q.body_len = strlen(body);
		if ((r = http_do(&q, resp, errmsg)) != 0)
			ls_errprefix(errmsg, r, "token endpoint %s",
			    a->token_uri);
	}
	curl_slist_free_all(h);
	if (body != NULL)
		OPENSSL_clear_free(body, strlen(body));
	OPENSSL_clear_free(jwt, strlen(jwt));
	return r;
}

/*
 * Fetch a new token into a->token (lock held), retrying until deadline.
 * Messages of failed attempts stay in m; only the last one, of a call
 * that fails, reaches *errmsg.
 */
static int
token_fetch(struct gcs_auth *a, int64_t deadline_us, char **errmsg)
{
	struct http_resp resp;
	char *m = NULL;
	int attempt, r;

	for (attempt = 0;; attempt++) {
		r = token_post(a, &resp, &m);
		if (r == 0 && resp.status == 200)
			r = take_token(a, &resp, &m);
		else if (r == 0 && !http_retryable(resp.status))
			r = token_refused(a, &resp, &m);
		else if (r == 0 || r == LS_ERR_TRANSIENT) {
			if (r == 0)
				ls_errf(&m, LS_ERR_TRANSIENT, "token endpoint "
				    "%s: HTTP %ld", a->token_uri, resp.status);
			r = LS_ERR_TRANSIENT;
			if (http_backoff(attempt, deadline_us) == 0) {
				http_resp_free(&resp);
				continue;
			}
		}
		http_resp_free(&resp);
		if (r != 0)
			ls_errf(errmsg, r, "%s", m ? m : ls_strerror(r));
		free(m);
		return r;
	}
}

int
gcs_auth_token(struct gcs_auth *a, int64_t deadline_us, char **tokenp,
    char **errmsg)
{
	int r = 0;

	*tokenp = NULL;
	pthread_mutex_lock(&a->lock);
	if (a->token != NULL && ls_now_us() >= a->refresh_at) {
		OPENSSL_clear_free(a->token, strlen(a->token));
		a->token = NULL;
	}
	if (a->token == NULL)
		r = token_fetch(a, deadline_us, errmsg);
	if (r == 0 && (*tokenp = strdup(a->token)) == NULL)
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	pthread_mutex_unlock(&a->lock);
	return r;
}

void
gcs_auth_invalidate(struct gcs_auth *a, const char *token)
{
	pthread_mutex_lock(&a->lock);
	if (a->token != NULL && strcmp(a->token, token) == 0) {
		OPENSSL_clear_free(a->token, strlen(a->token));
		a->token = NULL;
	}
	pthread_mutex_unlock(&a->lock);
}

int
gcs_auth_url_ok(const char *url)
{
	const char *host, *end;
	size_t len;

	if (strncasecmp(url, "https://", 8) == 0)
		return 0;
	if (strncasecmp(url, "http://", 7) != 0)
		return LS_ERR_INVALID;
	host = url + 7;
	if (*host == '[')
		return strncmp(host, "[::1]", 5) == 0 && (host[5] == '\0' ||
		    host[5] == ':' || host[5] == '/') ? 0 : LS_ERR_INVALID;
	end = host + strcspn(host, ":/?#");
	len = (size_t)(end - host);
	if ((len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	    (len >= 4 && strncmp(host, "127.", 4) == 0 &&
	    strspn(host, "0123456789.") == len))
		return 0;
	return LS_ERR_INVALID;
}
