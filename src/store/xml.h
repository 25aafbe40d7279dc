/*
 * xml.h: the libxml2 helpers the S3 and Azure backends share (listings,
 * error bodies, the documents they send).  No network access, no error
 * output: a body that does not parse is simply not a document.
 */
#ifndef LS_XML_H
#define LS_XML_H

#include <stddef.h>
#include <stdio.h>

#include <libxml/tree.h>

/* libxml2's global set-up; idempotent and thread-safe. */
void xml_global_init(void);

/* Parse a response body (leading blanks skipped); NULL if not XML. */
xmlDocPtr xml_parse(const char *body, size_t len);

/* The root element of doc (may be NULL) if it is called name, else NULL. */
xmlNodePtr xml_root(xmlDocPtr doc, const char *name);

/* n's first child element called name, or NULL (n may be NULL). */
xmlNodePtr xml_child(xmlNodePtr n, const char *name);

/* The text of n (may be NULL), malloc'd; NULL if none or out of memory. */
char *xml_text(xmlNodePtr n);

/* The text of n's first child element called name, as xml_text. */
char *xml_child_text(xmlNodePtr n, const char *name);

/*
 * Code and Message of an <Error> document, each malloc'd and made one line
 * (http_one_line), or NULL when body is not one or lacks them.
 */
void xml_error(const char *body, size_t len, char **code, char **msg);

/* Write s to f with &, < and > escaped. */
void xml_escape(FILE *f, const char *s);

#endif
