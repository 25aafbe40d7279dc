/*
 * conffile.h: the "key = value" configuration files of logship-agent and
 * logship-restore (logship.conf(5)): one setting a line, white space
 * around key and value ignored, '#' lines and blank lines skipped, a value
 * in single quotes unquoted, lines up to 4095 bytes.
 */
#ifndef LS_CONFFILE_H
#define LS_CONFFILE_H

/*
 * Call fn for every setting of the file at path, in order, with where
 * naming the line ("FILE:LINE") for messages; fn returns 0 or stops the
 * read with its own nonzero value, which conffile_read returns.  A file
 * that cannot be read, or a line without '=', is LS_ERR_INVALID with
 * *errmsg naming it.
 */
int conffile_read(const char *path,
    int (*fn)(void *arg, const char *key, const char *value,
    const char *where), void *arg, char **errmsg);

#endif
