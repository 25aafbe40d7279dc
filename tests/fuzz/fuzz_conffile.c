/*
 * fuzz_conffile.c: libFuzzer target for the "key = value" config file
 * reader (src/common/conffile.c).  The input is the file (through a
 * memfd, since conffile_read takes a path).  Every setting handed out
 * must be a NUL-terminated key without '=' and without surrounding white
 * space; "where" must name the file and a line; the error convention is
 * checked; the callback stops the read at a key named "stop" to check
 * that its own value comes back.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/conffile.h"
#include "common/error.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOPPED	1234

static volatile size_t sink;
static char path[64];

static void
check(bool cond)
{
	if (!cond)
		abort();
}

static int
setting(void *arg, const char *key, const char *value, const char *where)
{
	size_t klen = strlen(key), vlen = strlen(value);

	(void)arg;
	check(klen < 4096 && vlen < 4096);
	check(strchr(key, '=') == NULL);
	check(klen == 0 || (!isspace((unsigned char)key[0]) &&
	    !isspace((unsigned char)key[klen - 1])));
	check(strncmp(where, path, strlen(path)) == 0 &&
	    where[strlen(path)] == ':');
	sink += klen + vlen;
	return strcmp(key, "stop") == 0 ? STOPPED : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *err = NULL;
	int fd, rc;

	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		abort();
	if (ls_write_all(fd, data, size) != 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = conffile_read(path, setting, NULL, &err);
	check(rc == 0 || rc == STOPPED ? err == NULL :
	    rc == LS_ERR_INVALID && err != NULL);
	free(err);
	close(fd);
	return 0;
}
