/*
 * test_sigv4.c: the SigV4 signer (sigv4.c) against published vectors.
 *
 * Two sets: AWS's Signature Version 4 test suite (aws-sig-v4-test-suite:
 * AKIDEXAMPLE, region us-east-1, service "service", 20150830T123600Z; the
 * path-normalising cases are left out, as S3 does not normalise) and the
 * worked examples of the S3 API reference ("Signature Calculations for the
 * Authorization Header", examplebucket, AKIAIOSFODNN7EXAMPLE,
 * 20130524T000000Z).  Each case checks the canonical request, the string to
 * sign (its last line as published, or else the hash of the expected
 * canonical request) and the signature as published.  Then the one-pass
 * fd hash against the in-memory hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "common/util.h"
#include "store/s3/sigv4.h"
#include "tap.h"

#define EMPTY	\
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HOST	"example.amazonaws.com"
#define S3HOST	"examplebucket.s3.amazonaws.com"
#define TOKEN	\
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
#define UNRES	\
	"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

struct vector {
	const char		*name;
	int			 s3;		/* S3 docs' keys, date... */
	const char		*token;
	const char		*method;
	const char		*path;
	struct sigv4_param	 query[3];
	size_t			 nquery;
	struct sigv4_param	 headers[6];
	size_t			 nheaders;
	const char		*body;
	const char		*creq;
	const char		*sts_hash;	/* NULL: not published */
	const char		*signature;
};

static const struct vector vectors[] = {
	{ "get-vanilla", 0, NULL, "GET", "/", { { NULL, NULL } }, 0,
	  { { "Host", HOST } }, 1, "",
	  "GET\n/\n\nhost:" HOST "\nx-amz-date:20150830T123600Z\n\n"
	  "host;x-amz-date\n" EMPTY,
	  "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-vanilla-query-order-key-case", 0, NULL, "GET", "/",
	  { { "Param2", "value2" }, { "Param1", "value1" } }, 2,
	  { { "Host", HOST } }, 1, "",
	  "GET\n/\nParam1=value1&Param2=value2\nhost:" HOST "\n"
	  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
	  "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
	  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
	{ "get-header-value-trim", 0, NULL, "GET", "/", { { NULL, NULL } }, 0,
	  { { "Host", HOST }, { "My-Header1", " value1" },
	    { "My-Header2", " \"a   b   c\"" } }, 3, "",
	  "GET\n/\n\nhost:" HOST "\nmy-header1:value1\nmy-header2:\"a b c\"\n"
	  "x-amz-date:20150830T123600Z\n\n"
	  "host;my-header1;my-header2;x-amz-date\n" EMPTY,
	  "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
	  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
	{ "get-header-key-duplicate", 0, NULL, "GET", "/", { { NULL, NULL } },
	  0,
	  { { "Host", HOST }, { "My-Header1", "value2" },
	    { "My-Header1", "value2" }, { "My-Header1", "value1" } }, 4, "",
	  "GET\n/\n\nhost:" HOST "\nmy-header1:value2,value2,value1\n"
	  "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY,
	  "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
	  "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
	{ "get-utf8", 0, NULL, "GET", "/\xe1\x88\xb4", { { NULL, NULL } }, 0,
	  { { "Host", HOST } }, 1, "",
	  "GET\n/%E1%88%B4\n\nhost:" HOST "\nx-amz-date:20150830T123600Z\n\n"
	  "host;x-amz-date\n" EMPTY,
	  "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
	  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
	{ "get-unreserved", 0, NULL, "GET", "/" UNRES, { { NULL, NULL } }, 0,
	  { { "Host", HOST } }, 1, "",
	  "GET\n/" UNRES "\n\nhost:" HOST "\nx-amz-date:20150830T123600Z\n\n"
	  "host;x-amz-date\n" EMPTY, NULL,
	  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
	{ "get-vanilla-query-unreserved", 0, NULL, "GET", "/",
	  { { UNRES, UNRES } }, 1, { { "Host", HOST } }, 1, "",
	  "GET\n/\n" UNRES "=" UNRES "\nhost:" HOST "\n"
	  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY, NULL,
	  "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
	{ "get-vanilla-utf8-query", 0, NULL, "GET", "/",
	  { { "\xe1\x88\xb4", "bar" } }, 1, { { "Host", HOST } }, 1, "",
	  "GET\n/\n%E1%88%B4=bar\nhost:" HOST "\n"
	  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY, NULL,
	  "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
	{ "get-vanilla-with-session-token", 0, TOKEN, "GET", "/",
	  { { NULL, NULL } }, 0, { { "Host", HOST } }, 1, "",
	  "GET\n/\n\nhost:" HOST "\nx-amz-date:20150830T123600Z\n"
	  "x-amz-security-token:" TOKEN "\n\n"
	  "host;x-amz-date;x-amz-security-token\n" EMPTY, NULL,
	  "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8" },
	{ "post-vanilla-query", 0, NULL, "POST", "/",
	  { { "Param1", "value1" } }, 1, { { "Host", HOST } }, 1, "",
	  "POST\n/\nParam1=value1\nhost:" HOST "\n"
	  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY, NULL,
	  "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
	{ "post-x-www-form-urlencoded", 0, NULL, "POST", "/",
	  { { NULL, NULL } }, 0,
	  { { "Content-Type", "application/x-www-form-urlencoded" },
	    { "Host", HOST } }, 2, "Param1=value1",
	  "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
	  "host:" HOST "\nx-amz-date:20150830T123600Z\n\n"
	  "content-type;host;x-amz-date\n"
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	  "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
	  "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
	{ "s3 GET Object with Range", 1, NULL, "GET", "/test.txt",
	  { { NULL, NULL } }, 0, { { "Host", S3HOST }, { "Range", "bytes=0-9" },
	    { "x-amz-content-sha256", EMPTY } }, 3, "",
	  "GET\n/test.txt\n\nhost:" S3HOST "\nrange:bytes=0-9\n"
	  "x-amz-content-sha256:" EMPTY "\nx-amz-date:20130524T000000Z\n\n"
	  "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
	  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
	  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41" },
	{ "s3 PUT Object", 1, NULL, "PUT", "/test$file.text",
	  { { NULL, NULL } }, 0,
	  { { "Date", "Fri, 24 May 2013 00:00:00 GMT" }, { "Host", S3HOST },
	    { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	    { "x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b"
	    "4b4e99e42034a8b803f8b072" } }, 4, "Welcome to Amazon S3.",
	  "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
	  "host:" S3HOST "\nx-amz-content-sha256:44ce7dd67c959e0d3524ffac1771df"
	  "bba87d2b6b4b4e99e42034a8b803f8b072\nx-amz-date:20130524T000000Z\n"
	  "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
	  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	  "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
	  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" },
	{ "s3 GET Bucket Lifecycle", 1, NULL, "GET", "/",
	  { { "lifecycle", NULL } }, 1, { { "Host", S3HOST },
	    { "x-amz-content-sha256", EMPTY } }, 2, "",
	  "GET\n/\nlifecycle=\nhost:" S3HOST "\n"
	  "x-amz-content-sha256:" EMPTY "\nx-amz-date:20130524T000000Z\n\n"
	  "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
	  "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
	  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },
	{ "s3 GET Bucket (List Objects)", 1, NULL, "GET", "/",
	  { { "prefix", "J" }, { "max-keys", "2" } }, 2, { { "Host", S3HOST },
	    { "x-amz-content-sha256", EMPTY } }, 2, "",
	  "GET\n/\nmax-keys=2&prefix=J\nhost:" S3HOST "\n"
	  "x-amz-content-sha256:" EMPTY "\nx-amz-date:20130524T000000Z\n\n"
	  "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
	  "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
	  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },
};

/* Print got and want as diagnostics, one line each. */
static void
show(const char *what, const char *got, const char *want)
{
	diag("%s got:\n%s", what, got != NULL ? got : "(null)");
	diag("%s want:\n%s", what, want);
}

static void
check_vector(const struct vector *v)
{
	struct sigv4_creds c = { v->s3 ? "AKIAIOSFODNN7EXAMPLE" : "AKIDEXAMPLE",
	    v->s3 ? "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" :
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", v->token };
	struct sigv4_request q = { v->method, v->path, v->query, v->nquery,
	    v->headers, v->nheaders, NULL,
	    v->s3 ? "20130524T000000Z" : "20150830T123600Z", "us-east-1",
	    v->s3 ? "s3" : "service" };
	struct sigv4_signed out;
	char hash[65], creq_hash[65], *sts;

	sigv4_sha256_hex(v->body, strlen(v->body), hash);
	q.payload_hash = hash;
	sigv4_sha256_hex(v->creq, strlen(v->creq), creq_hash);
	if (asprintf(&sts, "AWS4-HMAC-SHA256\n%s\n%.8s/us-east-1/%s/"
	    "aws4_request\n%s", q.amz_date, q.amz_date, q.service,
	    v->sts_hash != NULL ? v->sts_hash : creq_hash) == -1)
		abort();
	if (!ok(sigv4_sign(&c, &q, &out) == 0, "%s: signed", v->name))
		return;
	if (!ok(strcmp(out.canonical_request, v->creq) == 0,
	    "%s: canonical request", v->name))
		show("canonical request", out.canonical_request, v->creq);
	if (!ok(strcmp(out.string_to_sign, sts) == 0, "%s: string to sign",
	    v->name))
		show("string to sign", out.string_to_sign, sts);
	if (!ok(strcmp(out.signature, v->signature) == 0, "%s: signature",
	    v->name))
		show("signature", out.signature, v->signature);
	sigv4_signed_free(&out);
	free(sts);
}

/* The Authorization header's exact form, on the first suite case. */
static void
check_authorization(void)
{
	const struct vector *v = &vectors[0];
	struct sigv4_creds c = { "AKIDEXAMPLE",
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL };
	struct sigv4_request q = { "GET", "/", NULL, 0, v->headers, 1, EMPTY,
	    "20150830T123600Z", "us-east-1", "service" };
	struct sigv4_signed out;
	const char *want = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
	    "us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
	    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b"
	    "8aae1d763fbf31";

	if (sigv4_sign(&c, &q, &out) != 0)
		abort();
	if (!ok(strcmp(out.authorization, want) == 0, "Authorization header "
	    "as get-vanilla.authz"))
		show("authorization", out.authorization, want);
	ok(strstr(out.authorization, c.secret_key) == NULL &&
	    strstr(out.canonical_request, c.secret_key) == NULL &&
	    strstr(out.string_to_sign, c.secret_key) == NULL,
	    "the secret appears in none of the outputs");
	sigv4_signed_free(&out);
}

static void
check_helpers(void)
{
	struct sigv4_param p[] = { { "uploadId", "a/b+c" },
	    { "partNumber", "2" }, { "list-type", "2" }, { "prefix", "p q/" } };
	char d[17], *s;

	sigv4_amz_date(1440938160LL * 1000000 + 999999, d);
	ok(strcmp(d, "20150830T123600Z") == 0, "amz date: %s", d);
	s = sigv4_canonical_query(p, 4);
	ok(s != NULL && strcmp(s, "list-type=2&partNumber=2&prefix=p%20q%2F&"
	    "uploadId=a%2Fb%2Bc") == 0, "canonical query: %s", s);
	free(s);
	s = sigv4_canonical_query(NULL, 0);
	ok(s != NULL && *s == '\0', "no parameters: empty query");
	free(s);
	s = sigv4_encode_path("/bkt/p/0001/seg/a b+c~");
	ok(s != NULL && strcmp(s, "/bkt/p/0001/seg/a%20b%2Bc~") == 0,
	    "path: %s", s);
	free(s);
}

/* A temp file of n pseudo-random bytes; its fd, content in *bufp. */
static int
temp_file(size_t n, unsigned char **bufp)
{
	char path[] = "/tmp/test_sigv4.XXXXXX";
	unsigned char *buf = malloc(n);
	size_t i;
	int fd = mkstemp(path);

	if (fd == -1 || buf == NULL)
		abort();
	unlink(path);
	for (i = 0; i < n; i++)
		buf[i] = (unsigned char)((i * 2654435761u) >> 13);
	if (ls_write_all(fd, buf, n) != 0)
		abort();
	*bufp = buf;
	return fd;
}

static void
check_hash_fd(void)
{
	size_t n = 700 * 1024 + 13;
	unsigned char *buf, md5[16], want_md5[16];
	char got[65], want[65], *err = NULL;
	int r, fd = temp_file(n, &buf);

	sigv4_sha256_hex(buf + 5, n - 5, want);
	EVP_Digest(buf + 5, n - 5, want_md5, NULL, EVP_md5(), NULL);
	ok(sigv4_hash_fd(fd, 5, n - 5, got, md5, &err) == 0 &&
	    strcmp(got, want) == 0 && memcmp(md5, want_md5, 16) == 0,
	    "hash of an fd range (3 buffers) equals the in-memory SHA-256 "
	    "and MD5");
	sigv4_sha256_hex(buf + 1000, 1, want);
	ok(sigv4_hash_fd(fd, 1000, 1, got, NULL, &err) == 0 &&
	    strcmp(got, want) == 0, "a one-byte range");
	ok(sigv4_hash_fd(fd, 0, 0, got, NULL, &err) == 0 &&
	    strcmp(got, EMPTY) == 0, "an empty range");
	r = sigv4_hash_fd(fd, n - 10, 11, got, NULL, &err);
	ok(r == LS_ERR_IO && err != NULL && strstr(err, "ended") != NULL,
	    "a range past EOF: LS_ERR_IO (%s)", err != NULL ? err : "");
	free(err);
	close(fd);
	free(buf);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		check_vector(&vectors[i]);
	check_authorization();
	check_helpers();
	check_hash_fd();
	return tap_done();
}
