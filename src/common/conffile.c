/* conffile.c: "key = value" files (see conffile.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/conffile.h"
#include "common/error.h"

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int
conffile_read(const char *path,
    int (*fn)(void *arg, const char *key, const char *value,
    const char *where), void *arg, char **errmsg)
{
	char line[4096], where[4200], *eq, *k, *v;
	FILE *fp = fopen(path, "r");
	int lineno = 0, r = 0;
	size_t n;

	if (fp == NULL)
		return ls_errf(errmsg, LS_ERR_INVALID, "config file %s: %s", path,
		    strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if ((n = strlen(line)) == sizeof(line) - 1 &&
		    line[n - 1] != '\n' && !feof(fp)) {
			r = ls_errf(errmsg, LS_ERR_INVALID, "%s: line longer "
			    "than %zu bytes", where, sizeof(line) - 1);
			break;
		}
		if (*(k = trim(line)) == '#' || *k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			r = ls_errf(errmsg, LS_ERR_INVALID, "%s: expected key = "
			    "value", where);
			break;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		if (*v == '\'' && (n = strlen(v)) >= 2 && v[n - 1] == '\'') {
			v[n - 1] = '\0';
			v++;
		}
		r = fn(arg, k, v, where);
	}
	fclose(fp);
	return r;
}
