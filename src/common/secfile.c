/*
 * secfile.c: refusing secret files and private directories that other
 * users may read (see secfile.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <string.h>

#include "common/error.h"
#include "common/secfile.h"

#define OTHERS	(S_IRWXG | S_IRWXO)

/* The verdict on a file's stat; path and what name it. */
static int
file_verdict(const struct stat *sb, const char *path, const char *what,
    char **errmsg)
{
	mode_t bad = sb->st_uid == 0 ? S_IWGRP | S_IXGRP | S_IRWXO : OTHERS;

	if ((sb->st_mode & bad) == 0)
		return 0;
	return ls_errf(errmsg, LS_ERR_INVALID, "%s %s: mode %04o lets other "
	    "users read it; run: chmod 600 %s", what, path,
	    (unsigned)(sb->st_mode & 07777), path);
}

int
secfile_check_fd(int fd, const char *path, const char *what, char **errmsg)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return ls_errf(errmsg, LS_ERR_IO, "%s %s: %s", what, path,
		    strerror(errno));
	return file_verdict(&sb, path, what, errmsg);
}

int
secfile_check(const char *path, const char *what, char **errmsg)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return ls_errf(errmsg, errno == ENOENT ? LS_ERR_NOTFOUND :
		    LS_ERR_IO, "%s %s: %s", what, path, strerror(errno));
	return file_verdict(&sb, path, what, errmsg);
}

int
secfile_check_dir(const char *path, const char *what, char **errmsg)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return ls_errf(errmsg, errno == ENOENT ? LS_ERR_NOTFOUND :
		    LS_ERR_IO, "%s %s: %s", what, path, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return ls_errf(errmsg, LS_ERR_INVALID, "%s %s: not a "
		    "directory", what, path);
	if ((sb.st_mode & OTHERS) == 0)
		return 0;
	return ls_errf(errmsg, LS_ERR_INVALID, "%s %s: mode %04o lets other "
	    "users in; run: chmod 700 %s", what, path,
	    (unsigned)(sb.st_mode & 07777), path);
}
