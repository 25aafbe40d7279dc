/*
 * s3.h: the S3 backend's decoders of service answers, exposed for the fuzz
 * target (tests/fuzz/fuzz_cloud.c).  The backend itself is reached through
 * store.h; these touch no network and print nothing.
 */
#ifndef LS_S3_H
#define LS_S3_H

#include <stddef.h>

#include "store/store.h"

/* One listing being taken from ListObjectsV2 pages. */
struct s3_listing {
	const char		*prefix;	/* the store's: "" or "a/b" */
	const char		*after;		/* keys up to it dropped; NULL */
	size_t			 max;		/* out holds at most this many */
	size_t			 cap;		/* out->entries' capacity */
	struct store_list	*out;		/* keys relative to prefix */
	char			*token;		/* NextContinuationToken or NULL */
	int			 more;		/* the page said IsTruncated */
};

/*
 * Take the page body (len bytes) into l: its <Contents> keys under
 * l->prefix and after l->after, until l->out holds l->max (then
 * l->out->truncated); l->more and l->token (malloc'd, replacing the old
 * one) from the page.  0, LS_ERR_IO when body is not a ListBucketResult,
 * LS_ERR_NOMEM.
 */
int s3_list_parse(struct s3_listing *l, const char *body, size_t len);

/*
 * The UploadId of an InitiateMultipartUploadResult body, malloc'd; NULL
 * when there is none (or it is empty, or holds a line break).
 */
char *s3_upload_id(const char *body, size_t len);

#endif
