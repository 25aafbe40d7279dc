/* dumpfilter.c: logship's event triggers out of pg_dump's SQL (see .h). */
#include <string.h>

#include "dumpfilter.h"
#include "format/blob.h"

static const char *const dropped[] = {
	"CREATE EVENT TRIGGER logship_",
	"ALTER EVENT TRIGGER logship_",
	"COMMENT ON EVENT TRIGGER logship_",
};

void
dumpfilter_init(struct dumpfilter *f, struct blob_writer *out)
{
	memset(f, 0, sizeof(*f));
	f->out = out;
}

/* Bytes of a dropped statement: follow its quotes, to find its end. */
static void
scan(struct dumpfilter *f, const char *p, size_t n)
{
	for (; n > 0; p++, n--)
		if (*p == '\'')
			f->quoted = !f->quoted;
}

/* The head is complete (or the line ended): does the line start a drop? */
static int
judge(struct dumpfilter *f, char **errmsg)
{
	size_t i, n;

	f->judged = true;
	for (i = 0; !f->skip && i < sizeof(dropped) / sizeof(dropped[0]); i++) {
		n = strlen(dropped[i]);
		f->skip = f->hlen >= n && memcmp(f->head, dropped[i], n) == 0;
	}
	if (f->skip)
		scan(f, f->head, f->hlen);
	if (f->skip || f->hlen == 0)
		return 0;
	return blob_writer_write(f->out, f->head, f->hlen, errmsg);
}

int
dumpfilter_write(struct dumpfilter *f, const char *buf, size_t n,
    char **errmsg)
{
	const char *nl;
	size_t i = 0, len;
	int r;

	while (i < n) {
		while (!f->judged && i < n && buf[i] != '\n' &&
		    f->hlen < sizeof(f->head))
			f->last = f->head[f->hlen++] = buf[i++];
		if (!f->judged && i == n && f->hlen < sizeof(f->head))
			return 0;	/* the head continues in the next piece */
		if (!f->judged && (r = judge(f, errmsg)) != 0)
			return r;
		nl = memchr(buf + i, '\n', n - i);
		len = nl != NULL ? (size_t)(nl - (buf + i)) + 1 : n - i;
		if (len > (nl != NULL ? 1u : 0u))
			f->last = buf[i + len - (nl != NULL ? 2 : 1)];
		if (f->skip)
			scan(f, buf + i, len);
		else if (len > 0 && (r = blob_writer_write(f->out, buf + i, len,
		    errmsg)) != 0)
			return r;
		i += len;
		if (nl == NULL)
			break;
		if (f->skip && f->last == ';' && !f->quoted)
			f->skip = false;	/* the statement ends here */
		f->judged = false;
		f->hlen = 0;
		f->last = '\0';
	}
	return 0;
}

int
dumpfilter_finish(struct dumpfilter *f, char **errmsg)
{
	if (f->judged)
		return 0;
	return judge(f, errmsg);
}
