/*
 * fuzz_identity.c: libFuzzer target for the store identity file,
 * logship.json (src/repo/catalog.c).  The input, NUL-terminated, is the
 * file.  An identity that parses must have a 16-hex generation and
 * NUL-terminated database and slot; a refusal must carry a message and be
 * LS_ERR_CORRUPT or LS_ERR_VERSION.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "repo/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog_identity id;
	char *text, *err = NULL;
	int rc;

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&id, 0xa5, sizeof(id));
	rc = catalog_identity_parse(text, &id, &err);
	check(rc == 0 ? err == NULL : err != NULL &&
	    (rc == LS_ERR_CORRUPT || rc == LS_ERR_VERSION));
	if (rc == 0) {
		check(id.format == CATALOG_FORMAT);
		check(strlen(id.generation) == 16);
		check(memchr(id.database, '\0', sizeof(id.database)) != NULL);
		check(memchr(id.slot, '\0', sizeof(id.slot)) != NULL);
	}
	free(err);
	free(text);
	return 0;
}
