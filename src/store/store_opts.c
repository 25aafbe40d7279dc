/* store_opts.c: the table of store options (see store_opts.h). */
#include <stddef.h>
#include <string.h>

#include "store/store_opts.h"

#define F(m) offsetof(struct store_opts, m)
/* The size is declared in store_opts.h: a mismatch does not compile. */
const struct store_opts_key store_opts_keys[] = {
	{ "s3-endpoint", "URL",
	    "S3-compatible endpoint URL (MinIO, Swift, R2, GCS interop)",
	    F(s3_endpoint) },
	{ "s3-region", "R", "S3 region (default $AWS_REGION, else us-east-1)",
	    F(s3_region) },
	{ "s3-uri-style", "path|host",
	    "bucket in the S3 URL's path or host name (default host)",
	    F(s3_uri_style) },
	{ "s3-ca-file", "F", "CA bundle for the S3 endpoint", F(s3_ca_file) },
	{ "s3-credentials-file", "F",
	    "file with S3 credentials instead of AWS_* variables",
	    F(s3_credentials_file) },
	{ "azure-endpoint", "URL",
	    "Azure Blob endpoint (Azurite, sovereign clouds)",
	    F(azure_endpoint) },
	{ "azure-ca-file", "F", "CA bundle for the Azure endpoint",
	    F(azure_ca_file) },
	{ "gcs-endpoint", "URL", "GCS JSON API endpoint", F(gcs_endpoint) },
	{ "gcs-ca-file", "F", "CA bundle for the GCS endpoint",
	    F(gcs_ca_file) },
};

void
store_opts_set(struct store_opts *o, const struct store_opts_key *k,
    const char *v)
{
	memcpy((char *)o + k->off, &v, sizeof(v));
}
