/*
 * test_gcs_jwt: the service-account JWT of gcs_auth.c.  A fresh RSA key
 * pair is made here and written into a service-account key file; the JWT
 * gcs_auth builds from it is split, its header and claims are checked,
 * and its RS256 signature is verified with the public half (a tampered
 * payload, or another key, must fail).  Also: key files gcs_auth must
 * refuse (without quoting the key), which URLs may carry credentials,
 * and how Google error bodies become one line.
 */
#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/error.h"
#include "store/gcs/auth.h"
#include "tap.h"

#define EMAIL	"logship-test@demo-project.iam.gserviceaccount.com"
#define TOKURI	"https://oauth2.googleapis.com/token"
#define KEYID	"0123456789abcdef0123456789abcdef01234567"
#define NOW	1763700000

static char dir[] = "/tmp/test_gcs_jwt.XXXXXX";

static EVP_PKEY *
rsa_new(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
	EVP_PKEY *pkey = NULL;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) != 1 ||
	    EVP_PKEY_keygen(ctx, &pkey) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* The PKCS#8 PEM text of pkey's private half (malloc'd). */
static char *
pem_of(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (bio != NULL && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
	    NULL, NULL) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0)
		out = strndup(data, (size_t)n);
	BIO_free(bio);
	return out;
}

/* Write a key file named name in dir; returns its path (malloc'd). */
static char *
write_key(const char *name, json_t *doc)
{
	char *path = NULL;

	if (asprintf(&path, "%s/%s", dir, name) == -1 || doc == NULL ||
	    json_dump_file(doc, path, JSON_INDENT(2)) != 0 ||
	    chmod(path, 0600) != 0) {	/* key files must not be readable */
		free(path);
		path = NULL;
	}
	json_decref(doc);
	return path;
}

/* base64url (no padding) to bytes; *lenp its length; NULL if invalid. */
static unsigned char *
unb64url(const char *s, size_t n, size_t *lenp)
{
	char *t = malloc(n + 4);
	unsigned char *out = malloc(n + 4);
	size_t i, pad = (4 - n % 4) % 4;
	int got;

	for (i = 0; i < n; i++) {
		if (s[i] == '+' || s[i] == '/' || s[i] == '=')
			goto fail;
		t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	}
	memset(t + n, '=', pad);
	got = EVP_DecodeBlock(out, (unsigned char *)t, (int)(n + pad));
	if (got < 0)
		goto fail;
	*lenp = (size_t)got - pad;
	free(t);
	return out;
 fail:
	free(t);
	free(out);
	return NULL;
}

/* base64url of the string s, unpadded, into out. */
static void
b64url_enc(char *out, const char *s)
{
	int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s,
	    (int)strlen(s));

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (; *out != '\0'; out++)
		*out = *out == '+' ? '-' : *out == '/' ? '_' : *out;
}

/* Decode a base64url JSON part. */
static json_t *
part_json(const char *s, size_t n)
{
	size_t len = 0;
	unsigned char *raw = unb64url(s, n, &len);
	json_t *doc = raw ? json_loadb((char *)raw, len, 0, NULL) : NULL;

	free(raw);
	return doc;
}

/* Does sig (base64url) verify as RS256 of msg under pkey? */
static int
rs256_ok(EVP_PKEY *pkey, const char *msg, size_t len, const char *sig)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t slen = 0;
	unsigned char *raw = unb64url(sig, strlen(sig), &slen);
	int ok;

	ok = ctx != NULL && raw != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_DigestVerify(ctx, raw, slen, (const unsigned char *)msg,
	    len) == 1;
	EVP_MD_CTX_free(ctx);
	free(raw);
	return ok;
}

static void
check_header(json_t *h)
{
	ok(h != NULL, "the header is base64url JSON");
	ok(strcmp(json_string_value(json_object_get(h, "alg")) ?: "", "RS256")
	    == 0, "header alg is RS256");
	ok(strcmp(json_string_value(json_object_get(h, "typ")) ?: "", "JWT")
	    == 0, "header typ is JWT");
	ok(strcmp(json_string_value(json_object_get(h, "kid")) ?: "", KEYID)
	    == 0, "header kid is the private_key_id");
}

static void
check_claims(json_t *c)
{
	json_int_t iat = json_integer_value(json_object_get(c, "iat"));
	json_int_t exp = json_integer_value(json_object_get(c, "exp"));

	ok(c != NULL, "the claims are base64url JSON");
	ok(strcmp(json_string_value(json_object_get(c, "iss")) ?: "", EMAIL)
	    == 0, "iss is the client_email");
	ok(strcmp(json_string_value(json_object_get(c, "scope")) ?: "",
	    "https://www.googleapis.com/auth/devstorage.read_write") == 0,
	    "scope is devstorage.read_write");
	ok(strcmp(json_string_value(json_object_get(c, "aud")) ?: "", TOKURI)
	    == 0, "aud is the token_uri");
	ok(iat == NOW, "iat is the time given");
	ok(exp > iat && exp - iat <= 3600, "exp - iat = %lld (0 < x <= 3600)",
	    (long long)(exp - iat));
}

/* The JWT: shape, header, claims, signature, tampering. */
static void
test_jwt(EVP_PKEY *pkey, EVP_PKEY *other, const char *path)
{
	struct gcs_auth *a = NULL;
	char *jwt = NULL, *err = NULL, *d1, *d2, *forged = NULL, *fake;
	json_t *c;

	ok(gcs_auth_new(path, &a, &err) == 0, "a service-account key file "
	    "loads (%s)", err ? err : "ok");
	if (a == NULL)
		return;
	ok(strcmp(gcs_auth_email(a), EMAIL) == 0, "client_email is kept");
	ok(gcs_auth_jwt(a, NOW, &jwt, &err) == 0 && jwt != NULL,
	    "a JWT is built");
	d1 = jwt ? strchr(jwt, '.') : NULL;
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	ok(d1 && d2 && !strchr(d2 + 1, '.'), "it has three parts");
	if (!d1 || !d2)
		goto out;
	ok(strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_.") == strlen(jwt), "all base64url, no padding");
	c = part_json(jwt, (size_t)(d1 - jwt));
	check_header(c);
	json_decref(c);
	c = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
	check_claims(c);
	ok(rs256_ok(pkey, jwt, (size_t)(d2 - jwt), d2 + 1),
	    "the RS256 signature verifies with the public key");
	ok(!rs256_ok(other, jwt, (size_t)(d2 - jwt), d2 + 1),
	    "and not with another key");
	/* the same signature over claims that say something else */
	json_object_set_new(c, "iss", json_string("attacker@evil.example"));
	fake = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	if (fake != NULL && (forged = malloc((size_t)(d1 - jwt) + 1 +
	    4 * strlen(fake) / 3 + 8)) != NULL) {
		memcpy(forged, jwt, (size_t)(d1 - jwt) + 1);
		b64url_enc(forged + (d1 - jwt) + 1, fake);
		ok(!rs256_ok(pkey, forged, strlen(forged), d2 + 1),
		    "a tampered payload (another iss) fails verification");
	}
	jwt[(d2 - jwt) - 1] ^= 1;	/* one bit of the payload */
	ok(!rs256_ok(pkey, jwt, (size_t)(d2 - jwt), d2 + 1),
	    "a payload with one bit flipped fails verification");
	free(fake);
	free(forged);
 out:
	free(jwt);
	free(err);
	gcs_auth_free(a);
}

/* Key files that must be refused, and never quoted. */
static void
test_bad_keys(const char *pem)
{
	struct gcs_auth *a = NULL;
	char *err = NULL, *p;
	int r;

	r = gcs_auth_new("/nonexistent/key.json", &a, &err);
	ok(r == LS_ERR_NOTFOUND && a == NULL, "a missing key file: notfound "
	    "(%s)", err);
	free(err);
	err = NULL;
	p = write_key("user.json", json_pack("{s:s, s:s, s:s}", "type",
	    "authorized_user", "client_id", "x", "refresh_token", "SECRET-RT"));
	r = gcs_auth_new(p, &a, &err);
	ok(r == LS_ERR_INVALID && err && strstr(err, "service-account") &&
	    !strstr(err, "SECRET"), "an authorized_user file is refused (%s)",
	    err);
	free(p);
	free(err);
	err = NULL;
	p = write_key("garbage.json", json_pack("{s:s, s:s, s:s}", "type",
	    "service_account", "client_email", EMAIL, "private_key",
	    "-----BEGIN PRIVATE KEY-----\nSECRETSECRETSECRET\n"
	    "-----END PRIVATE KEY-----\n"));
	r = gcs_auth_new(p, &a, &err);
	ok(r == LS_ERR_INVALID && err && !strstr(err, "SECRET") &&
	    !strstr(err, "BEGIN"), "a bad private_key is refused without being "
	    "quoted (%s)", err);
	free(p);
	free(err);
	err = NULL;
	p = write_key("plainhttp.json", json_pack("{s:s, s:s, s:s, s:s}",
	    "type", "service_account", "client_email", EMAIL,
	    "private_key", pem,
	    "token_uri", "http://tokens.example.com/token"));
	r = gcs_auth_new(p, &a, &err);
	ok(r == LS_ERR_INVALID && err && strstr(err, "token_uri") &&
	    !strstr(err, "PRIVATE"), "a plain-http remote token_uri is refused "
	    "(%s)", err);
	free(p);
	free(err);
}

/* gcs_error_detail of a NUL-terminated body. */
static char *
detail(const char *body)
{
	return gcs_error_detail(body, strlen(body));
}

static void
test_urls_and_errors(void)
{
	char *d;

	ok(gcs_auth_url_ok("https://storage.googleapis.com") == 0 &&
	    gcs_auth_url_ok("http://127.0.0.1:4443") == 0 &&
	    gcs_auth_url_ok("http://localhost/x") == 0 &&
	    gcs_auth_url_ok("http://[::1]:9/") == 0, "https and loopback http "
	    "may carry credentials");
	ok(gcs_auth_url_ok("http://storage.example.com") != 0 &&
	    gcs_auth_url_ok("http://127.0.0.1.evil.example/") != 0 &&
	    gcs_auth_url_ok("http://localhost.evil.example/") != 0 &&
	    gcs_auth_url_ok("ftp://x") != 0, "other hosts over http may not");
	d = detail("{\"error\":{\"code\":403,\"message\":\"a@b does not "
	    "have storage.objects.create access\",\"errors\":[{\"reason\":"
	    "\"forbidden\"}]}}");
	ok(d && strcmp(d, "forbidden: a@b does not have storage.objects.create "
	    "access") == 0, "JSON API error: reason and message (%s)", d);
	free(d);
	d = detail("{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"Invalid JWT Signature.\"}");
	ok(d && strcmp(d, "invalid_grant: Invalid JWT Signature.") == 0,
	    "OAuth error: error and description (%s)", d);
	free(d);
	d = detail("<html>\nBad\r\nGateway</html>");
	ok(d && !strchr(d, '\n') && !strchr(d, '\r'), "a non-JSON body "
	    "becomes one line (%s)", d);
	free(d);
}

/* The token endpoint's answer; a huge expires_in is capped, not overflowed. */
static void
test_token_parse(void)
{
	static const char good[] = "{\"access_token\":\"ya29.x\","
	    "\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	static const char huge[] = "{\"access_token\":\"ya29.x\","
	    "\"expires_in\":9223372036854775807}";
	static const char mac[] = "{\"access_token\":\"ya29.x\","
	    "\"expires_in\":60,\"token_type\":\"mac\"}";
	char *tok = NULL;
	int64_t life = 0;

	ok(gcs_token_parse(good, strlen(good), &tok, &life) == 0 &&
	    tok != NULL && strcmp(tok, "ya29.x") == 0 && life == 3599,
	    "token answer: access_token and expires_in");
	free(tok);
	ok(gcs_token_parse(huge, strlen(huge), &tok, &life) == 0 &&
	    life == GCS_TOKEN_LIFE_MAX, "token answer: expires_in capped");
	free(tok);
	ok(gcs_token_parse(mac, strlen(mac), &tok, &life) == LS_ERR_AUTH &&
	    tok == NULL, "token answer: not a bearer token refused");
	ok(gcs_token_parse("{}", 2, &tok, &life) == LS_ERR_AUTH && tok == NULL,
	    "token answer: no access_token refused");
}

int
main(void)
{
	EVP_PKEY *pkey = rsa_new(), *other = rsa_new();
	char *pem = pkey ? pem_of(pkey) : NULL, *path = NULL, *cmd = NULL;

	if (pem == NULL || other == NULL || mkdtemp(dir) == NULL) {
		printf("Bail out! cannot make an RSA key or a temp dir\n");
		return 1;
	}
	path = write_key("sa.json", json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
	    "type", "service_account", "project_id", "demo-project",
	    "private_key_id", KEYID, "private_key", pem, "client_email", EMAIL,
	    "token_uri", TOKURI));
	ok(path != NULL, "service-account key file written");
	if (path != NULL)
		test_jwt(pkey, other, path);
	test_bad_keys(pem);
	test_urls_and_errors();
	test_token_parse();
	if (asprintf(&cmd, "rm -rf '%s'", dir) != -1 && system(cmd) != 0)
		diag("could not remove %s", dir);
	free(cmd);
	free(path);
	free(pem);
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(other);
	return tap_done();
}
