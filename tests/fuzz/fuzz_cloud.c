/*
 * fuzz_cloud.c: libFuzzer target for the decoders of object-store answers:
 * S3 (ListObjectsV2 pages, InitiateMultipartUploadResult, <Error>), Azure
 * (List Blobs pages, <Error>) and GCS (objects.list pages, error bodies,
 * token endpoint answers).  The first byte chooses the store prefix, the
 * start-after key, the page limit and whether a continuation token is
 * already held; the rest is the body, given to every decoder.  Every key
 * handed out is walked and checked against the prefix, the order and the
 * limit with abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/azure/azure.h"
#include "store/gcs/auth.h"
#include "store/gcs/gcs.h"
#include "store/s3/s3.h"
#include "store/store.h"
#include "store/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void
check(bool cond)
{
	if (!cond)
		abort();
}

/* Keys of a listing: NUL-terminated, after "after", at most max. */
static void
walk(const struct store_list *l, const char *after, size_t max)
{
	size_t i;

	check(l->n <= max);
	for (i = 0; i < l->n; i++) {
		check(l->entries[i].key != NULL);
		if (after != NULL)
			check(strcmp(l->entries[i].key, after) > 0);
		sink += strlen(l->entries[i].key) + l->entries[i].size;
	}
}

static void
s3(const char *body, size_t len, const char *prefix, const char *after,
    size_t max, bool token)
{
	struct store_list out = { 0 };
	struct s3_listing l = { .prefix = prefix, .after = after, .max = max,
	    .out = &out };
	char *id;
	int rc;

	l.token = token ? strdup("t0") : NULL;
	rc = s3_list_parse(&l, body, len);
	check(rc == 0 || rc == LS_ERR_IO);
	walk(&out, after, max);
	check(rc != 0 || l.more || l.token == NULL);
	free(l.token);
	store_list_clear(&out);
	if ((id = s3_upload_id(body, len)) != NULL) {
		check(*id != '\0' && strpbrk(id, "\r\n") == NULL);
		free(id);
	}
}

static void
azure(const char *body, size_t len)
{
	struct store_list out = { 0 };
	char *next = NULL;
	int rc;

	rc = azure_list_parse(body, len, &out, &next);
	check(rc == 0 || (rc == -1 && next == NULL));
	walk(&out, NULL, (size_t)-1);
	check(next == NULL || *next != '\0');
	free(next);
	store_list_clear(&out);
}

static void
gcs(const char *body, size_t len, const char *strip, const char *after,
    size_t max, bool token)
{
	struct store_list out = { 0 };
	struct gcs_listing l = { .strip = strip, .prefix = strip,
	    .after = after, .max = max, .out = &out };
	const char *why = NULL;
	char *tok = NULL, *d;
	int64_t life = 0;
	int rc;

	l.token = token ? strdup("t0") : NULL;
	rc = gcs_list_parse(&l, body, len, &why);
	check(rc == 0 ? why == NULL : why != NULL && (rc == LS_ERR_CORRUPT ||
	    rc == LS_ERR_IO || rc == LS_ERR_NOMEM));
	walk(&out, NULL, max);
	check(l.token == NULL || *l.token != '\0');
	free(l.token);
	store_list_clear(&out);
	rc = gcs_token_parse(body, len, &tok, &life);
	check(rc == 0 ? tok != NULL && life > 0 &&
	    life <= GCS_TOKEN_LIFE_MAX : tok == NULL && rc == LS_ERR_AUTH);
	free(tok);
	d = gcs_error_detail(body, len);
	check(d != NULL);
	for (tok = d; *tok != '\0'; tok++)
		check((unsigned char)*tok >= 0x20 && *tok != 0x7f);
	free(d);
}

static void
xml_errors(const char *body, size_t len)
{
	char *code = NULL, *msg = NULL;

	xml_error(body, len, &code, &msg);
	if (code != NULL)
		check(strchr(code, '\n') == NULL);
	if (msg != NULL)
		check(strchr(msg, '\n') == NULL);
	free(code);
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[] = { "", "p", "a/b", "\xc3\xa9" };
	static const char *const gprefixes[] = { "", "p/", "a/b/", "%2F/" };
	static const char *const afters[] = { NULL, "0000000000000001/seg/",
	    "m", "\xf4\x8f\xbf\xbf" };
	static const size_t maxes[] = { 1, 3, 1000, (size_t)-1 };
	const char *body;
	size_t len;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	body = (const char *)data + 1;
	len = size - 1;
	xml_global_init();
	s3(body, len, prefixes[sel & 3], afters[(sel >> 2) & 3],
	    maxes[(sel >> 4) & 3], (sel & 0x40) != 0);
	azure(body, len);
	gcs(body, len, gprefixes[sel & 3], afters[(sel >> 2) & 3],
	    maxes[(sel >> 4) & 3], (sel & 0x40) != 0);
	xml_errors(body, len);
	return 0;
}
