/*
 * fuzz_segment.c: libFuzzer target for the segment reader.  The input is
 * the object; the first byte chooses whether a key is offered.  Every
 * record returned is walked so that a bad pointer is touched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "format/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[32] = "0123456789abcdef0123456789abcdef";

static size_t
touch_tuple(const struct ls_tuple *t)
{
	size_t n = 0;
	uint16_t i;

	for (i = 0; i < t->ncols; i++)
		if (t->vals[i].data != NULL && t->vals[i].len > 0)
			n += (uint8_t)t->vals[i].data[t->vals[i].len - 1];
	return n;
}

static size_t
touch(const struct ls_record *r)
{
	size_t n = 0;
	uint16_t i;

	switch (r->kind) {
	case LS_REC_RELATION:
		n += strlen(r->u.rel.schema) + strlen(r->u.rel.name);
		for (i = 0; i < r->u.rel.ncols; i++)
			n += strlen(r->u.rel.cols[i].name);
		break;
	case LS_REC_CHANGE:
		if (r->u.change.kind == LS_CHANGE_TRUNCATE)
			n += r->u.change.relids[r->u.change.nrelids - 1];
		else
			n += touch_tuple(&r->u.change.new) +
			    touch_tuple(&r->u.change.old);
		break;
	case LS_REC_MESSAGE:
		n += strlen(r->u.msg.prefix);
		if (r->u.msg.len > 0)
			n += (uint8_t)r->u.msg.content[r->u.msg.len - 1];
		break;
	case LS_REC_SEQUENCE:
		n += strlen(r->u.seq.schema) + strlen(r->u.seq.name);
		break;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct segment_reader *r = NULL;
	struct segment_header h;
	struct ls_record rec;
	char *err = NULL;
	size_t need, sink = 0;
	int fd;

	if (size < 1)
		return 0;
	(void)segment_parse_header(data + 1, size - 1, "fuzz", &h, &need, &err);
	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		abort();
	if (ls_write_all(fd, data + 1, size - 1) != 0)
		abort();
	if (segment_reader_open(fd, "fuzz", (data[0] & 1) ? fuzz_key : NULL, &r,
	    &err) == 0) {
		while (segment_reader_next(r, &rec, &err) == 1)
			sink += touch(&rec);
	}
	segment_reader_free(r);
	close(fd);
	free(err);
	return sink == (size_t)-1;
}
