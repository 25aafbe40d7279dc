/*
 * fuzz_manifest.c: libFuzzer target for the base manifest (src/repo/base.c)
 * and the blob framing it travels in (src/format/blob.c over container.c).
 *
 * The first input byte chooses: even, the rest is the manifest's JSON
 * text; odd, the rest is a blob object, read as a manifest (with a key
 * when bit 1 is set).  A manifest that parses is walked through every
 * accessor the restore uses, each of which must then succeed (the parser
 * checks what they hand out).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "format/blob.h"
#include "repo/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[32] = "0123456789abcdef0123456789abcdef";
static volatile size_t sink;

static void
check(bool cond)
{
	if (!cond)
		abort();
}

static void
walk(const struct base_manifest *m)
{
	static const char *const sections[] = { "pre_data", "post_data",
	    "large_objects" };
	struct base_table t;
	struct base_chunk c;
	const char *name;
	uint32_t type;
	size_t i, k, n = base_manifest_ntables(m);

	sink += base_manifest_lsn(m) + base_manifest_bytes(m) +
	    base_manifest_nchunks(m) + (size_t)base_manifest_created(m) +
	    (size_t)base_manifest_consistent_time(m) + base_manifest_ddl(m);
	if ((name = base_manifest_snapshot(m)) != NULL)
		sink += strlen(name);
	if ((name = base_manifest_publication(m)) != NULL)
		sink += strlen(name);
	for (i = 0; i < n; i++) {
		check(base_manifest_table(m, i, &t) == 0);
		sink += strlen(t.schema) + strlen(t.name);
		for (k = 0; k < t.nchunks; k++) {
			check(base_manifest_chunk(m, i, k, &c) == 0);
			sink += strlen(c.key) + c.sha256[31] + c.bytes + c.rows;
		}
		for (k = 0; k < base_manifest_ncolumns(m, i); k++) {
			check(base_manifest_columns(m, i, k, &name, &type) == 0);
			sink += strlen(name) + type;
		}
	}
	check(base_manifest_table(m, n, &t) == LS_ERR_NOTFOUND);
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (base_manifest_section(m, sections[i], &c) == 0)
			sink += strlen(c.key);
}

static void
parse(const char *text, size_t len)
{
	struct base_manifest *m = NULL;
	char *err = NULL;
	int rc;

	rc = base_manifest_parse(text, len, "fuzz", "0000000000000001",
	    BASE_FIRST, &m, &err);
	check(rc == 0 ? m != NULL && err == NULL :
	    m == NULL && err != NULL && rc == LS_ERR_CORRUPT);
	if (rc == 0)
		walk(m);
	base_manifest_free(m);
	free(err);
}

static int
count(void *arg, const void *buf, size_t len)
{
	(void)buf;
	*(size_t *)arg += len;
	return 0;
}

static void
blob(const uint8_t *data, size_t size, bool keyed)
{
	uint8_t sha[32];
	size_t n = 0;
	char *err = NULL;
	int fd, rc;

	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		abort();
	if (ls_write_all(fd, data, size) != 0)
		abort();
	rc = blob_read_fd(fd, "fuzz", keyed ? fuzz_key : NULL, "manifest",
	    count, &n, sha, &err);
	check(rc == 0 ? err == NULL : rc < 0 && err != NULL);
	free(err);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		blob(data + 1, size - 1, (data[0] & 2) != 0);
	else
		parse((const char *)data + 1, size - 1);
	return 0;
}
