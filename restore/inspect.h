/* inspect.h: logship-restore ls, verify and cat. */
#ifndef LS_INSPECT_H
#define LS_INSPECT_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct inspect_opts {
	struct store	*store;
	const uint8_t	*key;		/* NULL: no key file */
	const char	*generation;	/* NULL: every (ls, verify) / last (cat) */
	uint64_t	*segnos;	/* cat: chosen segments, or none */
	size_t		 nsegnos;
};

/* Each returns the process exit status: 0 ok, 1 failure. */
int inspect_ls(const struct inspect_opts *);
int inspect_verify(const struct inspect_opts *);
int inspect_cat(const struct inspect_opts *);

#endif
