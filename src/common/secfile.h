/*
 * secfile.h: files that hold secrets, and directories that hold private
 * state, are refused when other users may read them, as ssh refuses a
 * private key that is not 0600.  A file may give its group and the world
 * nothing (0600 or less), except that a file owned by root may also be
 * read by its group (0640 or less: root:logship 0640 is how a service's
 * secrets are often handed over), as libpq allows for its sslkey.  A
 * directory must be 0700 or less.
 */
#ifndef LS_SECFILE_H
#define LS_SECFILE_H

/*
 * The file open on fd (named path, what says what it is: "key file",
 * "GCS key file") must give others no access (see above).
 * Returns 0, or LS_ERR_INVALID with *errmsg
 *	"key file /k: mode 0644 lets other users read it; run: chmod 600 /k"
 * or LS_ERR_IO if fstat failed.
 */
int secfile_check_fd(int fd, const char *path, const char *what,
    char **errmsg);

/* The same for a path (stat(2), following symbolic links). */
int secfile_check(const char *path, const char *what, char **errmsg);

/*
 * The directory at path must give group and others no access.  Returns 0,
 * LS_ERR_NOTFOUND if it does not exist (the caller may create it with
 * mode 0700), LS_ERR_INVALID if it is not a directory or is open to
 * others (*errmsg: "... mode 0755 lets other users in; run: chmod 700
 * DIR"), or LS_ERR_IO.
 */
int secfile_check_dir(const char *path, const char *what, char **errmsg);

#endif
