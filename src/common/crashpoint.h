/*
 * crashpoint.h: named places where a test can kill the program.
 *
 * LOGSHIP_CRASHPOINT=name[:n] in the environment makes the n-th call (1 if
 * n is left out) of crashpoint("name") kill the process with SIGKILL, as a
 * power cut or kill -9 would: no atexit handlers, no cleanup, stdio
 * flushed first so a test can read what the program said.  The variable
 * is read once; when it is unset a call costs one load and one branch.
 *
 * The names in use (tests/RELIABILITY.md lists what each one proves):
 *   agent-after-upload          a segment is stored, not yet confirmed
 *   agent-between-parts         a multipart upload has a part stored
 *   agent-base-chunk            a base snapshot chunk is stored
 *   restore-after-target-commit the target committed a batch, LMDB not yet
 *   restore-after-map-commit    LMDB committed id-map entries, the target not
 *   expire-after-delete         expire deleted one object
 *   mirror-after-copy           mirror copied one object
 */
#ifndef LS_CRASHPOINT_H
#define LS_CRASHPOINT_H

/* Die here if LOGSHIP_CRASHPOINT names this point (thread-safe). */
void crashpoint(const char *name);

#endif
