/* replay.h: logship-restore's main job: base + segments into a target. */
#ifndef LS_RESTORE_REPLAY_H
#define LS_RESTORE_REPLAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct replay_opts {
	const char	*store_url;
	const char	*target;
	const char	*state_dir;
	const char	*key_file;
	const char	*log_format;
	const char	*log_file;
	bool		 follow;
	bool		 truncate;
	bool		 has_until_lsn;
	uint64_t	 until_lsn;
	bool		 has_until_time;
	int64_t		 until_time;
	int		 jobs;
	int		 batch_txns;
	int		 apply_workers;	/* --apply-workers: parallel.h */
	int		 verbose;
	const struct store_opts *store_opts;
	bool		 remap;		/* --id-mode remap */
	const char	*filter_path;	/* --filter FILE */
	int		 on_missing;	/* enum missing_ref */
	const uint64_t	*skip_ddl;	/* --skip-ddl LSNs: DDL not replayed */
	size_t		 nskip_ddl;
	const char	*metrics_addr;	/* --metrics-addr [HOST:]PORT */
	const char	*metrics_file;	/* --metrics-file FILE */
};

extern volatile sig_atomic_t restore_stop;

/* Returns the exit status: 0 done, 1 failure, 2 bad input before anything. */
int replay_main(const struct replay_opts *);

#endif
