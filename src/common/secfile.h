/*
 * secfile.h: files that hold secrets, and directories that hold private
 * state, are refused when other users may read them, as ssh refuses a
 * private key that is not 0600.  "Others" is the group and the world: any
 * of the mode's 077 bits.  The owner is not checked (root may run a
 * service with a file it owns).
 */
#ifndef LS_SECFILE_H
#define LS_SECFILE_H

/*
 * The file open on fd (named path, what says what it is: "key file",
 * "GCS key file") must not be readable or writable by group or others.
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
