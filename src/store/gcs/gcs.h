/*
 * gcs.h: the GCS backend's decoder of object listings, exposed for the
 * fuzz target (tests/fuzz/fuzz_cloud.c).  The backend itself is reached
 * through store.h; error bodies are gcs_error_detail's and token answers
 * gcs_token_parse's (auth.h).
 */
#ifndef LS_GCS_H
#define LS_GCS_H

#include <stddef.h>

#include "store/store.h"

/* One listing being taken from objects.list pages. */
struct gcs_listing {
	const char		*strip;		/* the store's prefix: "" or "a/b/" */
	const char		*prefix;	/* full name prefix (strip + ...) */
	const char		*after;		/* names up to it dropped; NULL */
	size_t			 max;		/* out holds at most this many */
	size_t			 cap;		/* out->entries' capacity */
	struct store_list	*out;		/* names with strip cut off */
	char			*token;		/* nextPageToken or NULL */
};

/*
 * Take the page body (len bytes) into l: items under l->prefix and after
 * l->after until l->out holds l->max (then l->out->truncated and no
 * token); l->token (malloc'd, replacing the old one) from nextPageToken.
 * 0, or LS_ERR_CORRUPT (not a listing, an item without name or size),
 * LS_ERR_IO (the same token twice), LS_ERR_NOMEM, with *why a constant
 * description.
 */
int gcs_list_parse(struct gcs_listing *l, const char *body, size_t len,
    const char **why);

#endif
