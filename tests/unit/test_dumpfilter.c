/* test_dumpfilter.c: logship's event triggers out of pg_dump's SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "dumpfilter.h"
#include "format/blob.h"
#include "tap.h"

static const char dump[] =
    "--\n"
    "-- Name: logship_ddl_command_end; Type: EVENT TRIGGER; Schema: -\n"
    "--\n"
    "\n"
    "CREATE EVENT TRIGGER logship_ddl_command_end ON ddl_command_end\n"
    "   EXECUTE FUNCTION logship.ddl_event();\n"
    "\n"
    "\n"
    "ALTER EVENT TRIGGER logship_ddl_command_end OWNER TO postgres;\n"
    "COMMENT ON EVENT TRIGGER logship_sql_drop IS 'a;\nb';\n"
    "CREATE EVENT TRIGGER audit ON ddl_command_end\n"
    "   EXECUTE FUNCTION public.audit();\n"
    "CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$ SELECT "
    "'CREATE EVENT TRIGGER logship_x' $$;\n"
    "  CREATE EVENT TRIGGER logship_indented_is_not_a_statement_start;\n"
    "ALTER EVENT TRIGGER logship_sql_drop DISABLE;\n"
    "SELECT 1;";

static const char want[] =
    "--\n"
    "-- Name: logship_ddl_command_end; Type: EVENT TRIGGER; Schema: -\n"
    "--\n"
    "\n"
    "\n"
    "\n"
    "CREATE EVENT TRIGGER audit ON ddl_command_end\n"
    "   EXECUTE FUNCTION public.audit();\n"
    "CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$ SELECT "
    "'CREATE EVENT TRIGGER logship_x' $$;\n"
    "  CREATE EVENT TRIGGER logship_indented_is_not_a_statement_start;\n"
    "SELECT 1;";

struct buf {
	char	 p[sizeof(dump)];
	size_t	 len;
};

static int
collect(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;

	if (b->len + len >= sizeof(b->p))
		return -1;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

/* Filter dump fed in pieces of n bytes; the output in *out. */
static int
filter(size_t n, struct buf *out)
{
	struct blob_writer *b = NULL;
	struct dumpfilter f;
	size_t i, len = strlen(dump);
	uint8_t sha[32];
	int fd = ls_temp_fd(NULL, NULL), r;

	out->len = 0;
	out->p[0] = '\0';
	if (fd < 0 || blob_writer_new("schema", NULL, NULL, NULL, &b, NULL) != 0)
		return -1;
	dumpfilter_init(&f, b);
	for (i = 0, r = 0; r == 0 && i < len; i += n)
		r = dumpfilter_write(&f, dump + i, len - i < n ? len - i : n,
		    NULL);
	if (r == 0 && (r = dumpfilter_finish(&f, NULL)) == 0 &&
	    (r = blob_writer_finish(b, fd, sha, NULL)) == 0 &&
	    lseek(fd, 0, SEEK_SET) == 0)
		r = blob_read_fd(fd, "dump", NULL, "schema", collect, out,
		    NULL, NULL);
	blob_writer_free(b);
	close(fd);
	return r;
}

int
main(void)
{
	static const size_t sizes[] = { 1, 2, 3, 7, 39, 40, 41, 4096 };
	struct buf out;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ok(filter(sizes[i], &out) == 0 && strcmp(out.p, want) == 0,
		    "pieces of %zu bytes: logship's event trigger statements "
		    "dropped, the rest intact", sizes[i]);
		if (strcmp(out.p, want) != 0)
			diag("got:\n%s", out.p);
	}
	return tap_done();
}
