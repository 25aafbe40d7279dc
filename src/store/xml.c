/* xml.c: libxml2 helpers shared by the S3 and Azure backends (see xml.h). */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "store/http.h"
#include "store/xml.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

/* libxml2's generic errors (encoding and I/O) go nowhere: src never prints. */
static void
xml_silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static void
xml_init(void)
{
	xmlInitParser();
	xmlThrDefSetGenericErrorFunc(NULL, xml_silent);
}

void
xml_global_init(void)
{
	pthread_once(&xml_once, xml_init);
}

xmlDocPtr
xml_parse(const char *body, size_t len)
{
	if (body == NULL)
		return NULL;
	while (len > 0 && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	if (len == 0 || len > INT_MAX)
		return NULL;
	xmlSetGenericErrorFunc(NULL, xml_silent);	/* per thread */
	return xmlReadMemory(body, (int)len, "store.xml", NULL, XML_PARSE_NONET |
	    XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
}

xmlNodePtr
xml_root(xmlDocPtr doc, const char *name)
{
	xmlNodePtr n = doc != NULL ? xmlDocGetRootElement(doc) : NULL;

	return n != NULL && strcmp((const char *)n->name, name) == 0 ? n : NULL;
}

xmlNodePtr
xml_child(xmlNodePtr n, const char *name)
{
	for (n = n != NULL ? n->children : NULL; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)n->name, name) == 0)
			return n;
	return NULL;
}

char *
xml_text(xmlNodePtr n)
{
	xmlChar *t;
	char *out;

	if (n == NULL || (t = xmlNodeGetContent(n)) == NULL)
		return NULL;
	out = strdup((const char *)t);
	xmlFree(t);
	return out;
}

char *
xml_child_text(xmlNodePtr n, const char *name)
{
	return xml_text(xml_child(n, name));
}

void
xml_error(const char *body, size_t len, char **code, char **msg)
{
	xmlDocPtr doc = xml_parse(body, len);
	xmlNodePtr root = xml_root(doc, "Error");

	*code = http_one_line(xml_child_text(root, "Code"));
	*msg = http_one_line(xml_child_text(root, "Message"));
	xmlFreeDoc(doc);
}

void
xml_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else
			fputc(*s, f);
	}
}
