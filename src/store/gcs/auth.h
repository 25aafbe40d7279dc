/*
 * gcs_auth.h: OAuth 2.0 access tokens for Google Cloud Storage from a
 * service-account key file (the JSON file GOOGLE_APPLICATION_CREDENTIALS
 * names).
 *
 * A token is obtained by signing a JWT (RS256) with the account's private
 * key and exchanging it at the key's token_uri; it is cached and fetched
 * again 5 minutes before it expires.  One struct gcs_auth may be used from
 * several threads at once.  The private key, the signed assertion and the
 * tokens never appear in error messages.
 */
#ifndef LS_GCS_AUTH_H
#define LS_GCS_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct gcs_auth;

#define GCS_AUTH_SCOPE	"https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_AUTH_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCS_AUTH_LIFETIME 3600		/* seconds an assertion is valid */

/*
 * Read the service-account key file at path (client_email, private_key,
 * token_uri (default GCS_AUTH_TOKEN_URI), private_key_id).  Returns 0,
 * LS_ERR_NOTFOUND/LS_ERR_IO if the file cannot be read, LS_ERR_INVALID if
 * it is not a usable service-account key.  Free with gcs_auth_free.
 */
int gcs_auth_new(const char *path, struct gcs_auth **out, char **errmsg);
void gcs_auth_free(struct gcs_auth *);

/* The account's client_email; valid until gcs_auth_free. */
const char *gcs_auth_email(const struct gcs_auth *);

/*
 * The signed assertion for time now (Unix seconds): base64url header,
 * claims and RS256 signature joined by '.'.  *jwtp is malloc'd (caller
 * frees; it is a credential for GCS_AUTH_LIFETIME seconds).
 */
int gcs_auth_jwt(const struct gcs_auth *, int64_t now, char **jwtp,
    char **errmsg);

/*
 * A valid access token into *tokenp (malloc'd, caller frees): the cached
 * one, or a new one from token_uri, retrying network failures, 5xx, 408
 * and 429 until deadline_us (ls_now_us() clock).  LS_ERR_AUTH when the
 * token endpoint refuses the assertion, LS_ERR_TRANSIENT when it could
 * not be reached in time.
 */
int gcs_auth_token(struct gcs_auth *, int64_t deadline_us, char **tokenp,
    char **errmsg);

/*
 * Forget the cached token if it is still token (the server answered 401
 * to it), so that the next gcs_auth_token fetches a new one.
 */
void gcs_auth_invalidate(struct gcs_auth *, const char *token);

/*
 * 0 when url may carry credentials: https://, or http:// to a loopback
 * host (127.0.0.0/8, localhost, [::1]); LS_ERR_INVALID otherwise.
 */
int gcs_auth_url_ok(const char *url);

/*
 * Parse a token endpoint's 200 answer (len bytes): *tokenp (malloc'd, a
 * credential: the caller frees) and *lifetime_s, its expires_in capped at
 * GCS_TOKEN_LIFE_MAX (a token is only fetched again earlier).  0,
 * LS_ERR_AUTH when it lacks a bearer access_token or a positive
 * expires_in, LS_ERR_NOMEM.
 */
#define GCS_TOKEN_LIFE_MAX	86400
int gcs_token_parse(const char *body, size_t len, char **tokenp,
    int64_t *lifetime_s);

/*
 * One line describing a Google error response body: "reason: message"
 * from the JSON API's {"error":{"errors":[{"reason"}],"message"}} or
 * OAuth's {"error","error_description"}, else the start of the body with
 * control characters replaced.  Never NULL except out of memory; caller
 * frees.
 */
char *gcs_error_detail(const char *body, size_t len);

#endif
