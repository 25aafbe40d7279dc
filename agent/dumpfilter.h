/*
 * dumpfilter.h: pg_dump's plain SQL output without logship's own event
 * triggers (ddl.h).  pg_dump dumps every event trigger whatever the
 * schemas excluded, and logship's call functions in schema logship, which
 * the base never carries: restored, they would fail on the target.
 *
 * A statement is dropped when a line begins with CREATE, ALTER or
 * COMMENT ON EVENT TRIGGER logship_; it ends with the first line that
 * ends with ';' outside a quoted string.  Everything else passes through
 * unchanged.
 */
#ifndef LS_AGENT_DUMPFILTER_H
#define LS_AGENT_DUMPFILTER_H

#include <stdbool.h>
#include <stddef.h>

struct blob_writer;

struct dumpfilter {
	struct blob_writer *out;
	char		 head[40];	/* the start of the current line */
	size_t		 hlen;
	bool		 judged;	/* head decided this line's fate */
	bool		 skip;		/* inside a dropped statement */
	bool		 quoted;	/* inside a string literal of it */
	char		 last;		/* last byte of the line so far */
};

/* Start filtering into out. */
void dumpfilter_init(struct dumpfilter *, struct blob_writer *out);
/* Filter the next n bytes, split anywhere; 0 or blob_writer_write's error. */
int dumpfilter_write(struct dumpfilter *, const char *buf, size_t n,
    char **errmsg);
/* At the end of the dump: write a last line that had no newline. */
int dumpfilter_finish(struct dumpfilter *, char **errmsg);

#endif
