/* mirror.h: logship-restore mirror: a verified copy of a store into another. */
#ifndef LS_MIRROR_H
#define LS_MIRROR_H

#include <stdint.h>

struct store;

struct mirror_opts {
	struct store	*src;		/* --from */
	struct store	*dst;		/* --to */
	const uint8_t	*key;		/* 32 bytes, or NULL: no key file */
	int		 jobs;		/* parallel transfers, >= 1 */
};

/*
 * Copy every object of src that dst lacks, each verified before it is
 * written, in an order that leaves dst, at any moment, in a state src has
 * been in (see mirror.c).  Prints failures (naming each object) to stderr,
 * a progress line when stderr is a terminal, and a summary to stdout.
 * Returns the process exit status: 0 everything is there, 1 a failure.
 */
int mirror_main(const struct mirror_opts *);

#endif
