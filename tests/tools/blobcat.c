/*
 * blobcat: verify a blob (base chunk, schema dump, manifest) and write
 * its content to stdout; for tests and debugging (not installed).
 *
 *	blobcat FILE [KEYFILE]
 *
 * The whole blob is checked (trailer, tag, length) before any byte is
 * written.  Exit 1 with a one-line message on any error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "format/blob.h"

static int
out(void *arg, const void *buf, size_t len)
{
	return ls_write_all(STDOUT_FILENO, buf, len) == 0 ? 0 : LS_ERR_IO;
}

int
main(int argc, char **argv)
{
	uint8_t key[32];
	char *err = NULL;
	int fd = -1, r;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: blobcat FILE [KEYFILE]\n");
		return 2;
	}
	if ((r = argc == 3 ? ls_key_load(argv[2], key, &err) : 0) != 0)
		goto done;
	if ((fd = open(argv[1], O_RDONLY | O_CLOEXEC)) < 0) {
		r = ls_errf(&err, LS_ERR_IO, "%s: %s", argv[1], strerror(errno));
		goto done;
	}
	if ((r = blob_read_fd(fd, argv[1], argc == 3 ? key : NULL, NULL, NULL,
	    NULL, NULL, &err)) == 0)
		r = blob_read_fd(fd, argv[1], argc == 3 ? key : NULL, NULL, out,
		    NULL, NULL, &err);
 done:
	if (r != 0)
		fprintf(stderr, "blobcat: %s\n", err ? err : ls_strerror(r));
	if (fd >= 0)
		close(fd);
	free(err);
	return r != 0;
}
