/*
 * azure_sign.h: Azure Storage Shared Key authorization (Blob service).
 *
 * A request is signed with the base64 HMAC-SHA256, under the account key,
 * of its string-to-sign: the verb, eleven standard header values (empty
 * when absent; a Content-Length of 0 is empty too), the x-ms-* headers
 * ("name:value\n", names lowercased and sorted) and the canonicalized
 * resource ("/" account, the encoded URL path, then "\nname:value" for
 * each query parameter, names lowercased and sorted, values decoded).
 * With a path-style endpoint (http://host:port/account) the account is
 * therefore named twice: "/account/account/container/blob".
 */
#ifndef LS_AZURE_SIGN_H
#define LS_AZURE_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct curl_slist;

#define AZURE_SIG_LEN	44	/* base64 of a SHA-256 MAC */
#define AZURE_DATE_LEN	30	/* "Sun, 11 Oct 2009 21:49:13 GMT" + NUL */

/*
 * The string-to-sign of a request to account's blob service.  path is the
 * URL path as sent (percent-encoded, beginning with '/'); query is the
 * query string as sent, without '?' (NULL or "" for none); headers are the
 * request's "Name: value" lines as sent.  Returns 0 with *out malloc'd
 * (caller frees), or LS_ERR_NOMEM.
 */
int azure_string_to_sign(const char *account, const char *method,
    const char *path, const char *query, const struct curl_slist *headers,
    char **out);

/* The signature of sts under key (the decoded account key). */
void azure_signature(const uint8_t *key, size_t keylen, const char *sts,
    char sig[AZURE_SIG_LEN + 1]);

/*
 * Decode a base64 account key (surrounding white space ignored).  Returns
 * 0 with *key malloc'd (caller wipes and frees), or LS_ERR_INVALID when b64
 * is not base64, or LS_ERR_NOMEM.
 */
int azure_key_decode(const char *b64, uint8_t **key, size_t *keylen);

/* t as an x-ms-date value (RFC 1123, GMT; not affected by the locale). */
void azure_date(time_t t, char out[AZURE_DATE_LEN]);

#endif
