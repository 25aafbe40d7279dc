/*
 * cmd.h: logship-restore's subcommands.  Each cmd_*.c owns its options and
 * its part of the usage; main.c dispatches on the first argument and holds
 * what the subcommands share.
 */
#ifndef LS_RESTORE_CMD_H
#define LS_RESTORE_CMD_H

#include <stdint.h>
#include <stdio.h>

struct option;
struct store;
struct store_opts;

struct cmd_entry {
	const char	*name;		/* first argument; NULL: the restore */
	const char	*synopsis;	/* after "logship-restore " */
	const char	*help;		/* its options' lines, or NULL */
	int		(*exec)(int argc, char **argv);	/* argv[0]: name */
};

extern const struct cmd_entry cmd_restore_entry;	/* cmd_restore.c */
extern const struct cmd_entry cmd_idmap_entry;		/* cmd_idmap.c */
extern const struct cmd_entry cmd_ls_entry;		/* cmd_inspect.c */
extern const struct cmd_entry cmd_verify_entry;
extern const struct cmd_entry cmd_cat_entry;
extern const struct cmd_entry cmd_mirror_entry;		/* cmd_mirror.c */
extern const struct cmd_entry cmd_expire_entry;		/* cmd_expire.c */
extern const struct cmd_entry cmd_status_entry;		/* cmd_status.c */

/* main.c */

/* The whole usage: every synopsis, then every option. */
void cmd_usage(FILE *);

/*
 * Print "logship-restore: <message>" and the --help hint; LS_EXIT_USAGE.
 * While cmd_where is set (a config file's "FILE:LINE"), it comes first.
 */
extern const char *cmd_where;
int cmd_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A decimal from lo to hi into *out: 0, or cmd_usage_error naming opt. */
int cmd_int_arg(const char *opt, const char *v, int lo, int hi, int *out);

/*
 * getopt_long(3) over longopts (at most CMD_MAXOPTS) and every store option
 * (store/store_opts.h): those set their field of *so to point into argv and
 * are not returned.
 */
#define CMD_MAXOPTS	24
int cmd_getopt(int argc, char **argv, const char *shortopts,
    const struct option *longopts, struct store_opts *so);

/*
 * Load the key file at path into key (nothing when path is NULL), or open
 * the store url into *out (store_free() it): 0, or a message on stderr and
 * LS_EXIT_USAGE.
 */
int cmd_key_load(const char *path, uint8_t key[32]);
int cmd_store_open(const char *url, const struct store_opts *so,
    struct store **out);

#endif
