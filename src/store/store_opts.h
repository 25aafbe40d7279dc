/*
 * store_opts.h: the settings of struct store_opts (store.h) that people
 * give, by name.  This one table makes every program's store options:
 * logship-agent's long options and config file keys, and the long options
 * of each logship-restore command that opens a store.  Only the strings
 * are options: the sizes and the deadline are for tests to set.
 */
#ifndef LS_STORE_OPTS_H
#define LS_STORE_OPTS_H

#include <stddef.h>

#include "store/store.h"

struct store_opts_key {
	const char	*name;	/* long option and config key: "s3-ca-file" */
	const char	*arg;	/* its value in a usage line: "F", "URL" */
	const char	*help;	/* one line, under 60 columns */
	size_t		 off;	/* of its const char * in struct store_opts */
};

#define STORE_OPTS_N	9
extern const struct store_opts_key store_opts_keys[STORE_OPTS_N];

/*
 * Set the field of *o that k names to v.  Nothing is copied: v must stay
 * valid as long as *o is used.
 */
void store_opts_set(struct store_opts *o, const struct store_opts_key *k,
    const char *v);

#endif
