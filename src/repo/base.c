/* base.c: base snapshot manifest and verification (see base.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "common/util.h"
#include "format/blob.h"
#include "repo/base.h"
#include "repo/catalog.h"
#include "store/store.h"

#define MANIFEST_MAX	(256u << 20)

static int chunk_from_json(json_t *, struct base_chunk *);

struct base_manifest {
	json_t	*j;
	char	 generation[17];
	char	 name[BASE_NAME_MAX];	/* "base" or "base-<lsn:016x>" */
};

int
base_manifest_new(const char *generation, uint64_t system_id,
    const char *database, const char *snapshot, uint64_t lsn,
    struct base_manifest **out, char **errmsg)
{
	struct base_manifest *m = calloc(1, sizeof(*m));
	char sysid[32], lsnbuf[32];

	if (m == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	snprintf(sysid, sizeof(sysid), "%" PRIu64, system_id);
	ls_lsn_format(lsn, lsnbuf);
	snprintf(m->generation, sizeof(m->generation), "%s", generation);
	snprintf(m->name, sizeof(m->name), "%s", BASE_FIRST);
	m->j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:[]}", "format", 1,
	    "generation", generation, "system_id", sysid, "database", database,
	    "snapshot", snapshot, "consistent_lsn", lsnbuf, "created",
	    (json_int_t)ls_now_us(), "tables");
	if (m->j == NULL) {
		free(m);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	*out = m;
	return 0;
}

void
base_manifest_free(struct base_manifest *m)
{
	if (m == NULL)
		return;
	json_decref(m->j);
	free(m);
}

static json_t *
chunk_json(const char *key, const uint8_t sha[32], uint64_t bytes, uint64_t rows)
{
	char hex[65];

	ls_hex(sha, 32, hex);
	return json_pack("{s:s,s:s,s:I,s:I}", "key", key, "sha256", hex,
	    "bytes", (json_int_t)bytes, "rows", (json_int_t)rows);
}

int
base_manifest_set_section(struct base_manifest *m, const char *section,
    const char *key, const uint8_t sha[32], uint64_t bytes, uint64_t count)
{
	json_t *c = chunk_json(key, sha, bytes, count);

	if (c == NULL || json_object_set_new(m->j, section, c) != 0)
		return LS_ERR_NOMEM;
	return 0;
}

static json_t *
find_table(json_t *tables, const char *schema, const char *name)
{
	json_t *t;
	size_t i;

	json_array_foreach(tables, i, t) {
		if (strcmp(json_string_value(json_object_get(t, "schema")), schema) == 0 &&
		    strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
			return t;
	}
	t = json_pack("{s:s,s:s,s:[]}", "schema", schema, "name", name, "chunks");
	if (t == NULL || json_array_append_new(tables, t) != 0)
		return NULL;
	return t;
}

int
base_manifest_add_chunk(struct base_manifest *m, const char *schema,
    const char *name, const struct base_chunk *c)
{
	json_t *t = find_table(json_object_get(m->j, "tables"), schema, name);
	json_t *cj = chunk_json(c->key, c->sha256, c->bytes, c->rows);

	if (t == NULL || cj == NULL ||
	    json_array_append_new(json_object_get(t, "chunks"), cj) != 0)
		return LS_ERR_NOMEM;
	return 0;
}

int
base_manifest_set_columns(struct base_manifest *m, const char *schema,
    const char *name, const char *const *names, const uint32_t *types,
    size_t n)
{
	json_t *t = find_table(json_object_get(m->j, "tables"), schema, name);
	json_t *cols = json_array();
	size_t i;

	if (t == NULL || cols == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < n; i++)
		json_array_append_new(cols, json_pack("{s:s,s:I}", "name", names[i],
		    "type", (json_int_t)types[i]));
	return json_object_set_new(t, "columns", cols) == 0 ? 0 : LS_ERR_NOMEM;
}

size_t
base_manifest_ncolumns(const struct base_manifest *m, size_t table)
{
	json_t *t = json_array_get(json_object_get(m->j, "tables"), table);

	return json_array_size(json_object_get(t, "columns"));
}

int
base_manifest_columns(const struct base_manifest *m, size_t table, size_t i,
    const char **name, uint32_t *type)
{
	json_t *t = json_array_get(json_object_get(m->j, "tables"), table);
	json_t *c = json_array_get(json_object_get(t, "columns"), i);
	json_int_t ty = 0;

	if (c == NULL || json_unpack(c, "{s:s,s:I}", "name", name, "type", &ty) != 0)
		return LS_ERR_NOTFOUND;
	*type = (uint32_t)ty;
	return 0;
}

int
base_manifest_set_name(struct base_manifest *m, const char *name)
{
	if (!base_name_valid(name))
		return LS_ERR_INVALID;
	snprintf(m->name, sizeof(m->name), "%s", name);
	return json_object_set_new(m->j, "base", json_string(name)) == 0 ?
	    0 : LS_ERR_NOMEM;
}

const char *
base_manifest_name(const struct base_manifest *m)
{
	return m->name;
}

int
base_manifest_set_consistent_time(struct base_manifest *m, int64_t us)
{
	return json_object_set_new(m->j, "consistent_time",
	    json_integer((json_int_t)us)) == 0 ? 0 : LS_ERR_NOMEM;
}

int64_t
base_manifest_consistent_time(const struct base_manifest *m)
{
	return (int64_t)json_integer_value(json_object_get(m->j,
	    "consistent_time"));
}

int64_t
base_manifest_created(const struct base_manifest *m)
{
	return (int64_t)json_integer_value(json_object_get(m->j, "created"));
}

bool
base_name_valid(const char *name)
{
	size_t i;

	if (strcmp(name, BASE_FIRST) == 0)
		return true;
	if (strncmp(name, "base-", 5) != 0 || strlen(name) != 5 + 16)
		return false;
	for (i = 5; i < 5 + 16; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		    (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

void
base_name_for_lsn(uint64_t lsn, char out[BASE_NAME_MAX])
{
	snprintf(out, BASE_NAME_MAX, "base-%016" PRIx64, lsn);
}

void
base_chunk_key(const char *generation, const char *base, unsigned table,
    unsigned n, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s/t-%08x-%08x", generation,
	    base != NULL ? base : BASE_FIRST, table, n);
}

void
base_manifest_key(const char *generation, const char *base, char *out,
    size_t outlen)
{
	snprintf(out, outlen, "%s/%s/manifest", generation, base);
}

int
base_manifest_write(struct store *st, const struct base_manifest *m,
    const uint8_t *key, char **errmsg)
{
	struct blob_writer *b = NULL;
	char *text = json_dumps(m->j, JSON_COMPACT | JSON_SORT_KEYS);
	char okey[64];
	uint8_t sha[32];
	int fd = -1, r;

	if (text == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	base_manifest_key(m->generation, m->name, okey, sizeof(okey));
	if ((r = blob_writer_new("manifest", key, NULL, NULL, &b, errmsg)) != 0 ||
	    (r = blob_writer_write(b, text, strlen(text), errmsg)) != 0)
		goto out;
	if ((fd = memfd_create("manifest", MFD_CLOEXEC)) < 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "memfd: %s", strerror(errno));
		goto out;
	}
	if ((r = blob_writer_finish(b, fd, sha, errmsg)) != 0)
		goto out;
	r = store_put_if_absent(st, okey, fd, errmsg);
 out:
	if (fd >= 0)
		close(fd);
	blob_writer_free(b);
	free(text);
	return r;
}

struct membuf {
	char	*p;
	size_t	 len;
};

static int
collect(void *arg, const void *buf, size_t len)
{
	struct membuf *mb = arg;
	char *bigger;

	if (mb->len + len > MANIFEST_MAX ||
	    (bigger = realloc(mb->p, mb->len + len + 1)) == NULL)
		return LS_ERR_TOOBIG;
	memcpy(bigger + mb->len, buf, len);
	mb->p = bigger;
	mb->len += len;
	mb->p[mb->len] = '\0';
	return 0;
}

int
base_manifest_read(struct store *st, const char *generation, const uint8_t *key,
    struct base_manifest **out, char **errmsg)
{
	return base_manifest_read_named(st, generation, BASE_FIRST, key, out,
	    errmsg);
}

/* What is wrong with table t of a manifest, or NULL. */
static const char *
table_problem(json_t *t)
{
	struct base_chunk c;
	json_t *chunks = json_object_get(t, "chunks"), *cols, *col;
	const char *name;
	json_int_t type;
	size_t k;

	if (json_string_value(json_object_get(t, "schema")) == NULL ||
	    json_string_value(json_object_get(t, "name")) == NULL)
		return "a table without schema or name";
	if (chunks != NULL && !json_is_array(chunks))
		return "a table's chunks are not a list";
	for (k = 0; k < json_array_size(chunks); k++)
		if (chunk_from_json(json_array_get(chunks, k), &c) != 0)
			return "a chunk without key, sha256, bytes or rows";
	cols = json_object_get(t, "columns");
	if (cols != NULL && !json_is_array(cols))
		return "a table's columns are not a list";
	json_array_foreach(cols, k, col)
		if (json_unpack(col, "{s:s,s:I}", "name", &name, "type",
		    &type) != 0 || type < 0 || type > (json_int_t)UINT32_MAX)
			return "a column without name or type";
	return NULL;
}

/* What is wrong with a manifest, or NULL. */
static const char *
manifest_problem(json_t *j)
{
	static const char *const sections[] = { "pre_data", "post_data",
	    "large_objects" };
	struct base_chunk c;
	json_t *tables = json_object_get(j, "tables"), *t;
	const char *lsn = json_string_value(json_object_get(j,
	    "consistent_lsn")), *why;
	uint64_t v;
	size_t i;

	if (!json_is_object(j) || !json_is_array(tables) || lsn == NULL)
		return "not a manifest";
	if (ls_lsn_parse(lsn, &v) != 0)
		return "consistent_lsn is not an LSN";
	json_array_foreach(tables, i, t)
		if ((why = table_problem(t)) != NULL)
			return why;
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (json_object_get(j, sections[i]) != NULL &&
		    chunk_from_json(json_object_get(j, sections[i]), &c) != 0)
			return "a section without key, sha256, bytes or rows";
	return NULL;
}

int
base_manifest_parse(const char *text, size_t len, const char *what,
    const char *generation, const char *base, struct base_manifest **out,
    char **errmsg)
{
	struct base_manifest *m;
	json_error_t je;
	const char *why;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	if ((m->j = json_loadb(text != NULL ? text : "", len, 0, &je)) == NULL) {
		base_manifest_free(m);
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: not a valid "
		    "manifest: %s", what, je.text);
	}
	if ((why = manifest_problem(m->j)) != NULL) {
		base_manifest_free(m);
		return ls_errf(errmsg, LS_ERR_CORRUPT, "%s: not a valid "
		    "manifest: %s", what, why);
	}
	snprintf(m->generation, sizeof(m->generation), "%s", generation);
	snprintf(m->name, sizeof(m->name), "%s", base);
	*out = m;
	return 0;
}

int
base_manifest_read_named(struct store *st, const char *generation,
    const char *base, const uint8_t *key, struct base_manifest **out,
    char **errmsg)
{
	struct membuf mb = { NULL, 0 };
	char okey[64];
	int fd = -1, r;

	base_manifest_key(generation, base, okey, sizeof(okey));
	if ((r = catalog_fetch(st, okey, &fd, errmsg)) != 0)
		return r;
	if ((r = blob_read_fd(fd, okey, key, "manifest", collect, &mb, NULL,
	    errmsg)) == 0)
		r = base_manifest_parse(mb.p, mb.len, okey, generation, base,
		    out, errmsg);
	free(mb.p);
	close(fd);
	return r;
}

int
base_manifest_read_newest(struct store *st, const char *generation,
    const uint8_t *key, struct base_manifest **out, char **errmsg)
{
	char (*names)[24] = NULL;
	size_t n, i;
	int r;

	if ((r = catalog_bases(st, generation, &names, &n, errmsg)) != 0)
		return r;
	r = LS_ERR_NOTFOUND;
	for (i = n; i > 0 && r == LS_ERR_NOTFOUND; i--) {
		free(*errmsg);
		*errmsg = NULL;
		r = base_manifest_read_named(st, generation, names[i - 1], key,
		    out, errmsg);
	}
	free(names);
	return r;
}

uint64_t
base_manifest_lsn(const struct base_manifest *m)
{
	uint64_t lsn = 0;

	ls_lsn_parse(json_string_value(json_object_get(m->j, "consistent_lsn")),
	    &lsn);
	return lsn;
}

const char *
base_manifest_snapshot(const struct base_manifest *m)
{
	return json_string_value(json_object_get(m->j, "snapshot"));
}

size_t
base_manifest_ntables(const struct base_manifest *m)
{
	return json_array_size(json_object_get(m->j, "tables"));
}

size_t
base_manifest_nchunks(const struct base_manifest *m)
{
	json_t *t;
	size_t i, n = 0;

	json_array_foreach(json_object_get(m->j, "tables"), i, t)
		n += json_array_size(json_object_get(t, "chunks"));
	return n;
}

static int
chunk_from_json(json_t *c, struct base_chunk *out)
{
	const char *sha = NULL;
	json_int_t bytes = 0, rows = 0;

	if (c == NULL || json_unpack(c, "{s:s,s:s,s:I,s:I}", "key", &out->key,
	    "sha256", &sha, "bytes", &bytes, "rows", &rows) != 0 ||
	    strlen(sha) != 64 || ls_unhex(sha, out->sha256, 32) != 0 ||
	    bytes < 0 || rows < 0)
		return LS_ERR_CORRUPT;
	out->bytes = (uint64_t)bytes;
	out->rows = (uint64_t)rows;
	return 0;
}

uint64_t
base_manifest_bytes(const struct base_manifest *m)
{
	struct base_chunk c;
	json_t *t, *cj;
	size_t i, k;
	uint64_t n = 0;

	json_array_foreach(json_object_get(m->j, "tables"), i, t)
		json_array_foreach(json_object_get(t, "chunks"), k, cj)
			if (chunk_from_json(cj, &c) == 0)
				n += c.bytes;
	return n;
}

int
base_manifest_table(const struct base_manifest *m, size_t i,
    struct base_table *out)
{
	json_t *t = json_array_get(json_object_get(m->j, "tables"), i);

	if (t == NULL)
		return LS_ERR_NOTFOUND;
	out->schema = json_string_value(json_object_get(t, "schema"));
	out->name = json_string_value(json_object_get(t, "name"));
	out->nchunks = json_array_size(json_object_get(t, "chunks"));
	return out->schema != NULL && out->name != NULL ? 0 : LS_ERR_CORRUPT;
}

int
base_manifest_chunk(const struct base_manifest *m, size_t table, size_t i,
    struct base_chunk *out)
{
	json_t *t = json_array_get(json_object_get(m->j, "tables"), table);

	return chunk_from_json(json_array_get(json_object_get(t, "chunks"), i),
	    out);
}

int
base_manifest_set_publication(struct base_manifest *m, const char *name)
{
	return json_object_set_new(m->j, "publication", json_string(name)) == 0 ?
	    0 : LS_ERR_NOMEM;
}

const char *
base_manifest_publication(const struct base_manifest *m)
{
	return json_string_value(json_object_get(m->j, "publication"));
}

int
base_manifest_set_ddl(struct base_manifest *m, bool on)
{
	return json_object_set_new(m->j, "ddl", json_boolean(on)) == 0 ?
	    0 : LS_ERR_NOMEM;
}

bool
base_manifest_ddl(const struct base_manifest *m)
{
	return json_is_true(json_object_get(m->j, "ddl"));
}

int
base_manifest_section(const struct base_manifest *m, const char *section,
    struct base_chunk *out)
{
	json_t *s = json_object_get(m->j, section);

	if (s == NULL)
		return LS_ERR_NOTFOUND;
	return chunk_from_json(s, out);
}

/* Fetch one object and check its blob integrity and its manifest sha. */
static int
verify_object(struct store *st, const struct base_chunk *c, const uint8_t *key,
    char **errmsg)
{
	uint8_t sha[32];
	int fd = -1, r;

	if ((r = catalog_fetch(st, c->key, &fd, errmsg)) != 0)
		return r;
	r = blob_read_fd(fd, c->key, key, NULL, NULL, NULL, sha, errmsg);
	close(fd);
	if (r == 0 && memcmp(sha, c->sha256, 32) != 0)
		r = ls_errf(errmsg, LS_ERR_CORRUPT, "%s: sha256 differs from "
		    "the manifest (replaced or corrupt object)", c->key);
	return r;
}

int
base_verify(struct store *st, const char *generation, const uint8_t *key,
    char **errmsg)
{
	return base_verify_named(st, generation, BASE_FIRST, key, errmsg);
}

int
base_verify_named(struct store *st, const char *generation, const char *base,
    const uint8_t *key, char **errmsg)
{
	struct base_manifest *m = NULL;
	struct base_table t;
	struct base_chunk c;
	size_t i, k;
	int r;

	if ((r = base_manifest_read_named(st, generation, base, key, &m,
	    errmsg)) != 0)
		return r;
	for (i = 0; r == 0 && base_manifest_table(m, i, &t) == 0; i++)
		for (k = 0; r == 0 && k < t.nchunks; k++)
			if ((r = base_manifest_chunk(m, i, k, &c)) == 0)
				r = verify_object(st, &c, key, errmsg);
	if (r == 0 && base_manifest_section(m, "pre_data", &c) == 0)
		r = verify_object(st, &c, key, errmsg);
	if (r == 0 && base_manifest_section(m, "post_data", &c) == 0)
		r = verify_object(st, &c, key, errmsg);
	if (r == 0 && base_manifest_section(m, "large_objects", &c) == 0)
		r = verify_object(st, &c, key, errmsg);
	base_manifest_free(m);
	return r;
}
