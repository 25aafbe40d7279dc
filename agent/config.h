/*
 * config.h: logship-agent's settings.  One table (config.c) defines every
 * key: its type, default and help, the store options coming from the
 * library's table (store/store_opts.h); the same names work as
 * --long-options and as "key = value" lines in --config FILE.  The command
 * line wins.
 */
#ifndef LS_AGENT_CONFIG_H
#define LS_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "format/compression.h"
#include "store/store.h"

struct agent_config {
	char		*source;		/* libpq conninfo */
	char		*store;			/* store URL */
	bool		 init;			/* may create a new store */
	char		*slot;
	char		*publication;
	char		*tables;		/* "s.t,s.t" or NULL: all tables */
	bool		 ddl;			/* install the DDL capture */
	bool		 ddl_uninstall;		/* remove it and exit */
	bool		 drop_slot;		/* drop slot and publication, exit */
	bool		 new_base;		/* take one base now and exit */
	int64_t		 base_interval_us;	/* a base when the newest is older */
	char		*endpos_text;
	uint64_t	 endpos;
	bool		 has_endpos;
	int64_t		 segment_max_txns;
	int64_t		 segment_max_bytes;
	double		 flush_interval;	/* seconds */
	double		 heartbeat_interval;	/* seconds */
	char		*metrics_addr;		/* [HOST:]PORT or NULL */
	char		*metrics_file;		/* textfile or NULL */
	int64_t		 jobs;
	char		*key_file;
	char		*compression_text;	/* zlib|zstd[:level] */
	struct compression comp;		/* parsed from it */
	char		*log_format;
	char		*log_file;
	char		*spool_dir;
	char		*config_file;
	struct store_opts store_opts;		/* strings malloc'd */
	int64_t		 verbose;
	bool		 source_on_argv;
	bool		 source_scrubbed;	/* its password was in argv: warn */
};

/*
 * Parse argv (and the config file it names).  Returns 0, or exits: 0 after
 * --help/--version, 2 on a usage error with one line and a hint.
 */
void config_parse(int argc, char **argv, struct agent_config *c);
void config_free(struct agent_config *c);

#endif
