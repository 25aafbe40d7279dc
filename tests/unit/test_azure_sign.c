/*
 * test_azure_sign: the Shared Key string-to-sign and signature (azure_sign.c).
 *
 * Expected values come from outside this code:
 *  - the example of "Authorize with Shared Key" (GET container metadata);
 *  - requests that Azurite 3.35 accepted, with the string-to-sign it logged
 *    (--debug) and the Authorization it checked;
 *  - a request written by hand from the rules in that document.
 * Every signature uses the well-known development key of devstoreaccount1
 * and was computed with
 *	K=$(echo "$DEVKEY" | base64 -d | xxd -p -c256)
 *	printf "$STS" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$K -binary | base64
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/error.h"
#include "store/azure/sign.h"
#include "tap.h"

#define DEVKEY	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6" \
		"tq/K1SZFPTOtr/KBHBeksoGMGw=="

struct vector {
	const char	*what;
	const char	*account;
	const char	*method;
	const char	*path;
	const char	*query;
	const char	*headers[12];
	const char	*sts;
	const char	*sig;
};

static const struct vector vectors[] = {
	{ "docs example: GET container metadata", "myaccount", "GET",
	    "/mycontainer", "restype=container&comp=metadata&timeout=20",
	    { "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT",
	      "x-ms-version: 2009-09-19", NULL },
	    "GET\n\n\n\n\n\n\n\n\n\n\n\n"
	    "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n"
	    "/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20",
	    "m649E40iEJ3QQyCg9/WI2Fa9zS+RB/2rEBcLJb0CKs0=" },
	{ "Azurite: Put Block, path style (account twice)", "devstoreaccount1",
	    "PUT", "/devstoreaccount1/ctr/p/big",
	    "comp=block&blockid=ec7eff4e2bdda2b000000000",
	    { "x-ms-date: Sat, 21 Nov 2026 06:40:43 GMT",
	      "x-ms-version: 2021-08-06", "Content-Length: 400000", NULL },
	    "PUT\n\n\n400000\n\n\n\n\n\n\n\n\n"
	    "x-ms-date:Sat, 21 Nov 2026 06:40:43 GMT\nx-ms-version:2021-08-06\n"
	    "/devstoreaccount1/devstoreaccount1/ctr/p/big\n"
	    "blockid:ec7eff4e2bdda2b000000000\ncomp:block",
	    "rhvSiIxlvFu0WiCVEZerub8K9gG292ksK+bUyKFHtdA=" },
	{ "Azurite: conditional Put Block List with metadata",
	    "devstoreaccount1", "PUT", "/devstoreaccount1/ctr/p/big2",
	    "comp=blocklist",
	    { "x-ms-date: Sat, 21 Nov 2026 06:40:43 GMT",
	      "x-ms-version: 2021-08-06", "Content-Type: application/xml",
	      "x-ms-meta-logshipupload: 816a03606e6b7d67", "If-None-Match: *",
	      "Content-Length: 389", NULL },
	    "PUT\n\n\n389\n\napplication/xml\n\n\n\n*\n\n\n"
	    "x-ms-date:Sat, 21 Nov 2026 06:40:43 GMT\n"
	    "x-ms-meta-logshipupload:816a03606e6b7d67\nx-ms-version:2021-08-06\n"
	    "/devstoreaccount1/devstoreaccount1/ctr/p/big2\ncomp:blocklist",
	    "QVjD4EFOdtokibgi1VmgtBnFt4r4Rnn7ksCS66iTZWc=" },
	{ "Azurite: List Blobs with an encoded marker and prefix",
	    "devstoreaccount1", "GET", "/devstoreaccount1/ctr",
	    "comp=list&marker=lst%2F0000000000000001%2Fseg%2F0000000000000001"
	    "&maxresults=5000&prefix=lst%2F&restype=container",
	    { "x-ms-date: Sat, 21 Nov 2026 06:41:01 GMT",
	      "x-ms-version: 2021-08-06", NULL },
	    "GET\n\n\n\n\n\n\n\n\n\n\n\n"
	    "x-ms-date:Sat, 21 Nov 2026 06:41:01 GMT\nx-ms-version:2021-08-06\n"
	    "/devstoreaccount1/devstoreaccount1/ctr\ncomp:list\n"
	    "marker:lst/0000000000000001/seg/0000000000000001\nmaxresults:5000\n"
	    "prefix:lst/\nrestype:container",
	    "Q9aBgNDG4Y3JRlm64SMe6w0bu+xMkhUuIkFyrP8Vmwg=" },
	/*
	 * By hand: standard headers in their slots, Content-Length 0 empty,
	 * unsigned headers left out, x-ms-* lowercased, sorted and squeezed,
	 * query names lowercased, values decoded, a repeated name's values
	 * sorted and joined by ','.
	 */
	{ "rules: slots, empty length, squeezing, query decoding", "acct", "PUT",
	    "/acct/ctr/dir/a%20b", "comp=block&BlockId=YWJj%2Bd%3D%3D&x=2&x=1",
	    { "Host: example", "x-ms-version: 2021-08-06",
	      "X-MS-Meta-Name:   two   words  ",
	      "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT",
	      "Content-Type: application/octet-stream",
	      "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
	      "If-Match: \"0x8CB171BA9E94B0B\"", "Range: bytes=0-99",
	      "Content-Length: 0", "Expect:", "Accept: */*", NULL },
	    "PUT\n\n\n\nQ2hlY2sgSW50ZWdyaXR5IQ==\napplication/octet-stream\n\n\n"
	    "\"0x8CB171BA9E94B0B\"\n\n\nbytes=0-99\n"
	    "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-meta-name:two words\n"
	    "x-ms-version:2021-08-06\n/acct/acct/ctr/dir/a%20b\n"
	    "blockid:YWJj+d==\ncomp:block\nx:1,2",
	    "Varqe475Odfd7TsgeypBbSn1T3UPBx+ka/3ENxeJ+AU=" },
};

/* Print where two strings first differ. */
static void
diag_diff(const char *got, const char *want)
{
	size_t i;

	for (i = 0; got[i] != '\0' && got[i] == want[i]; i++)
		;
	diag("differ at byte %zu: got \"%.40s\" want \"%.40s\"", i, got + i,
	    want + i);
}

static void
test_vector(const struct vector *v, const uint8_t *key, size_t keylen)
{
	struct curl_slist *h = NULL;
	char *sts = NULL, sig[AZURE_SIG_LEN + 1];
	size_t i;

	for (i = 0; v->headers[i] != NULL; i++)
		h = curl_slist_append(h, v->headers[i]);
	ok(azure_string_to_sign(v->account, v->method, v->path, v->query, h,
	    &sts) == 0, "%s: built", v->what);
	if (!ok(sts != NULL && strcmp(sts, v->sts) == 0, "%s: string-to-sign",
	    v->what) && sts != NULL)
		diag_diff(sts, v->sts);
	azure_signature(key, keylen, v->sts, sig);
	ok(strcmp(sig, v->sig) == 0, "%s: signature %s", v->what, sig);
	free(sts);
	curl_slist_free_all(h);
}

static void
test_no_query(void)
{
	struct curl_slist *h = curl_slist_append(NULL, "x-ms-version: 1");
	char *sts = NULL;

	ok(azure_string_to_sign("a", "HEAD", "/a/c/k", NULL, h, &sts) == 0 &&
	    strcmp(sts, "HEAD\n\n\n\n\n\n\n\n\n\n\n\nx-ms-version:1\n/a/a/c/k") == 0,
	    "no query, HEAD");
	free(sts);
	sts = NULL;
	ok(azure_string_to_sign("a", "GET", "/c", "", NULL, &sts) == 0 &&
	    strcmp(sts, "GET\n\n\n\n\n\n\n\n\n\n\n\n/a/c") == 0,
	    "no headers, empty query");
	free(sts);
	curl_slist_free_all(h);
}

static void
test_key(void)
{
	uint8_t *key = NULL;
	size_t len = 0;

	ok(azure_key_decode(" " DEVKEY "\n", &key, &len) == 0 && len == 64 &&
	    key[0] == 0x11 && key[63] == 0x1b, "devstoreaccount1 key: 64 bytes");
	free(key);
	ok(azure_key_decode("YWJj", &key, &len) == 0 && len == 3 &&
	    memcmp(key, "abc", 3) == 0, "no padding");
	free(key);
	ok(azure_key_decode("YQ==", &key, &len) == 0 && len == 1 &&
	    key[0] == 'a', "two padding characters");
	free(key);
	ok(azure_key_decode("YWJ", &key, &len) == LS_ERR_INVALID, "bad length");
	ok(azure_key_decode("YW*j", &key, &len) == LS_ERR_INVALID,
	    "bad character");
	ok(azure_key_decode("Y=Jj", &key, &len) == LS_ERR_INVALID,
	    "padding inside");
	ok(azure_key_decode("  ", &key, &len) == LS_ERR_INVALID, "empty");
}

static void
test_date(void)
{
	char d[AZURE_DATE_LEN];

	azure_date(1255297753, d);	/* date -u -d @1255297753 */
	ok(strcmp(d, "Sun, 11 Oct 2009 21:49:13 GMT") == 0, "date %s", d);
	azure_date(951782400, d);	/* a leap day */
	ok(strcmp(d, "Tue, 29 Feb 2000 00:00:00 GMT") == 0, "date %s", d);
}

int
main(void)
{
	uint8_t *key;
	size_t keylen, i;

	if (azure_key_decode(DEVKEY, &key, &keylen) != 0) {
		printf("Bail out! cannot decode the development key\n");
		return 1;
	}
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		test_vector(&vectors[i], key, keylen);
	free(key);
	test_no_query();
	test_key();
	test_date();
	return tap_done();
}
