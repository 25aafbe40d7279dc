/*
 * azure.h: the Azure backend's decoder of List Blobs answers, exposed for
 * the fuzz target (tests/fuzz/fuzz_cloud.c).  The backend itself is
 * reached through store.h; error bodies are xml_error's (xml.h).
 */
#ifndef LS_AZURE_H
#define LS_AZURE_H

#include <stddef.h>

#include "store/store.h"

/*
 * Parse a List Blobs body (len bytes) into *list (full blob names,
 * percent-decoded where marked Encoded; the caller clears it with
 * store_list_clear, also on failure) and *next (its NextMarker, malloc'd,
 * NULL when none; the caller frees).  0, or -1 when the body is not an
 * EnumerationResults or a blob lacks a name or a decimal size.
 */
int azure_list_parse(const char *body, size_t len, struct store_list *list,
    char **next);

#endif
