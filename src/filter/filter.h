/*
 * filter.h: elision filters: which tables, rows and column values a restore
 * (and the base snapshot load) keeps.  See logship-filter(5).
 *
 * The filter file
 * ---------------
 * A text file of at most FILTER_MAX_FILE bytes, one statement a line.  '#'
 * starts a comment (outside quotes) that runs to the end of the line; blank
 * lines are ignored; indentation is free.  Keywords are case-insensitive.
 * Errors name the place as FILE:LINE:COL, lines and columns counted in
 * bytes from 1.
 *
 *	include PATTERN		tables to keep (any number of lines)
 *	exclude PATTERN		tables to drop; exclude wins over include.
 *				With no include line every table is included.
 *	hash-key-file PATH	the key of `hash` (32 raw bytes or 64 hex
 *				digits, see ls_key_load()); a path or a
 *				'quoted path'; relative to the filter file's
 *				directory.  Required when a column uses hash.
 *	table SCHEMA.NAME	starts the section of one table; the lines
 *				below, up to the next `table`, belong to it.
 *	  where EXPR		row predicate: a row is kept only when EXPR
 *				is true (not false, not null).  One a table.
 *	  column COL drop	the column is left out of the target
 *	  column COL null	the column is set to NULL
 *	  column COL const LIT	the column is set to the literal (NULL
 *				values too)
 *	  column COL hash	lowercase hex HMAC-SHA256(key, text form);
 *				NULL stays NULL.  text, varchar and bpchar
 *				columns only (64 hex digits must fit)
 *	  id-mode remap|preserve  this table's ID mode (design.md "ID modes")
 *
 * `include`, `exclude` and `hash-key-file` are global wherever they appear.
 * A table has at most one section, one where, one id-mode and one rule a
 * column.  An UNCHANGED (unsent TOAST) value keeps its treatment: the
 * target already holds the treated value.
 *
 * Names.  A bare identifier ([A-Za-z_][A-Za-z0-9_$]*, bytes >= 0x80 count
 * as letters) is folded to lower case, as PostgreSQL does; a "double quoted"
 * one is taken as written ("" is a quote).  PATTERN is SCHEMA.TABLE where
 * each part may mix bare text, in which `*` matches any string and `?` any
 * one character, and "quoted" text, matched literally with its case.  Table
 * sections name one table exactly (no wildcards).
 *
 * Expressions.
 *	expr := expr or expr | expr and expr | not expr | ( expr )
 *	      | COL op LIT | LIT op COL | COL [not] in ( LIT [, LIT]... )
 *	      | COL is [not] null | COL (a boolean column) | true | false
 *	op   := = | != | <> | < | <= | > | >=
 *	LIT  := 'string' ('' is a quote) | -12 | 3.25 | 1e-3 | true | false
 * not binds tighter than and, and than or.  An expression may continue on
 * the next lines while a parenthesis is open.  Comparing with null (use
 * `is null`), two columns, or mixed literal kinds in one `in` list is an
 * error.  Nesting is limited to FILTER_MAX_DEPTH levels.
 *
 * Types.  A literal takes the type of its column (a 'string' also works
 * where PostgreSQL would accept it, as in id = '42'), checked by
 * filter_validate():
 *	int2 int4 int8 oid	exact 64-bit integers
 *	numeric float4 float8	exact decimal comparison of the text forms
 *				(NaN above Infinity above every number)
 *	bool			= != in only; true, false, or the strings
 *				PostgreSQL reads ('t', 'yes', 'off', ...)
 *	text varchar name "char" byte-wise comparison of the text form;
 *	bpchar			the same, trailing spaces ignored
 *	uuid			any case written, compared lowercase
 *	date timestamp timestamptz  as instants, in ISO form
 *				'YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][zone][ BC]'
 *				(zone Z, UTC, +hh, +hhmm, +hh:mm[:ss]) or
 *				'[-]infinity'; a timestamptz literal without
 *				a zone is UTC, a timestamp literal must not
 *				have one, a date literal has no time
 *	any other type		= != in with 'string' literals, byte-wise
 * SQL's three-valued logic applies: a comparison with a NULL value is null,
 * and the row passes only if the whole predicate is true.  A comparison
 * with an UNCHANGED value is unknown: an error unless and/or decide
 * without it (`is [not] null` is known: such a value is never NULL).
 * Bare words and, or, not, in, is, null, true, false are keywords: a
 * column with such a name is written "quoted".
 */
#ifndef LS_FILTER_H
#define LS_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/record.h"

#define FILTER_MAX_FILE		(1024 * 1024)	/* bytes in a filter file */
#define FILTER_MAX_DEPTH	100		/* nested ( and not */
#define FILTER_HASH_KEY_LEN	32

struct filter;
struct filter_table;
struct filter_scratch;

enum filter_id_mode {
	FILTER_ID_DEFAULT,		/* no id-mode line: the global mode */
	FILTER_ID_PRESERVE,
	FILTER_ID_REMAP,
};

/* What the apply should do with one change (filter_change_action). */
enum filter_action {
	FILTER_SKIP,		/* not on the target before or after: drop it */
	FILTER_APPLY,		/* apply the change as it is */
	FILTER_AS_INSERT,	/* update that moves into the predicate */
	FILTER_AS_DELETE,	/* update that moves out: delete by old key */
	FILTER_AS_UPSERT,	/* update passing now, before unknown */
	FILTER_DELETE_IF_PRESENT, /* delete (or update failing now) whose
				   row may not be on the target: delete by
				   key, zero rows is fine */
};

/* A source table as filter_validate() and the COPY functions see it. */
struct filter_column_info {
	const char	*name;
	uint32_t	 type_oid;
};

struct filter_table_info {
	const char			*schema;
	const char			*name;
	size_t				 ncols;
	const struct filter_column_info	*cols;
};

/*
 * Parse a filter file held in text[len] (need not be NUL-terminated);
 * filename is used in messages and to resolve a relative hash-key-file.
 * 0 and *out (free with filter_free), or LS_ERR_INVALID with
 * "FILE:LINE:COL: expected ... near '...'", LS_ERR_TOOBIG (over
 * FILTER_MAX_FILE bytes), LS_ERR_NOMEM.
 */
int filter_parse(const char *text, size_t len, const char *filename,
    struct filter **out, char **errmsg);
/* Read path and filter_parse() it; also LS_ERR_NOTFOUND, LS_ERR_IO. */
int filter_load(const char *path, struct filter **out, char **errmsg);
/* NULL-safe. */
void filter_free(struct filter *);

/*
 * Check the filter against the source's tables and type its literals: a
 * section for a table not in tables, a column not in its table, a literal
 * that is not of its column's type, an ordering comparison on a boolean, a
 * hash on a non-text column, every column dropped: LS_ERR_INVALID with
 * "FILE:LINE:COL: ..." for the first problem in file order.  Must succeed
 * before filter_row_passes() and the other evaluation functions; may be
 * called again (not while other threads use the filter).  Patterns that
 * match no table, and sections for tables that are not included, become
 * warnings (filter_warning).
 */
int filter_validate(struct filter *, const struct filter_table_info *tables,
    size_t ntables, char **errmsg);
/* Warnings of the last filter_validate(); strings live until the next. */
size_t filter_warning_count(const struct filter *);
const char *filter_warning(const struct filter *, size_t i);

/* The hash-key-file path (resolved) or NULL; whether any column hashes. */
const char *filter_hash_key_file(const struct filter *);
bool filter_needs_hash_key(const struct filter *);

/*
 * Whether the table is included (include/exclude lines only; a table
 * section by itself includes nothing).  NULL filter: true.
 */
bool filter_includes(const struct filter *, const char *schema,
    const char *name);
/*
 * The table's section, or NULL when it has none (keep every row and value).
 * Valid until filter_free().  Callers should look it up once per relation.
 * Every function below accepts NULL for "no section".
 */
const struct filter_table *filter_table(const struct filter *,
    const char *schema, const char *name);
enum filter_id_mode filter_id_mode(const struct filter_table *);
/*
 * The line of the section's first mention of column col (a rule or the
 * where clause), or of the section itself when col is NULL; 0: none.
 */
int filter_mentions(const struct filter_table *, const char *col);
/*
 * The sections in file order (for per-table id-mode lists): i below
 * filter_section_count(); *schema and *name live as long as the filter.
 */
size_t filter_section_count(const struct filter *);
const struct filter_table *filter_section(const struct filter *, size_t i,
    const char **schema, const char **name);

/*
 * Evaluate the table's where clause on tuple t of relation rel (columns are
 * found by name).  0 and *pass (true when there is no where clause), or
 * LS_ERR_INVALID: a needed value is UNCHANGED ("predicate on column X needs
 * its value but it was not sent (unchanged TOAST); ...") or binary, or a
 * column has gone or changed type since filter_validate(); LS_ERR_CORRUPT:
 * a value that does not parse as its type.  Thread-safe.
 */
int filter_row_passes(const struct filter_table *, const struct ls_relation *rel,
    const struct ls_tuple *t, bool *pass, char **errmsg);

/*
 * Decide how to apply change c (insert, update, delete, truncate) of rel.
 * INSERT: the new row.  DELETE: the old tuple; with only the key (old_kind
 * 'K'), exact when the predicate uses key columns only, else
 * FILTER_DELETE_IF_PRESENT; with no old tuple at all, APPLY (the apply
 * reports the missing key).  UPDATE: the new row (UNCHANGED values taken
 * from a FULL old tuple) and the old row when it is known (FULL old tuple,
 * or a predicate on key columns only): before/after in or out give APPLY,
 * AS_DELETE, AS_INSERT, SKIP; an unknown before gives AS_UPSERT or
 * DELETE_IF_PRESENT.  For AS_INSERT and AS_UPSERT the row is c->new with
 * UNCHANGED values filled from c->old; if one cannot be filled this returns
 * LS_ERR_INVALID rather than let a row in without it.  TRUNCATE: APPLY.
 * Errors as filter_row_passes().
 */
int filter_change_action(const struct filter_table *,
    const struct ls_relation *rel, const struct ls_change *c,
    enum filter_action *act, char **errmsg);

/*
 * Per-thread working memory of the functions below: output tuples, hashes,
 * COPY lines and the cache of output relations.  Its memory grows with the
 * number of distinct input relation shapes seen, not with rows.  A scratch
 * serves the one filter f it is made for (NULL: sections of no filter):
 * filter_transform() and filter_copy_line() return LS_ERR_INVALID for a
 * section of any other filter, also one parsed at a freed filter's address.
 * Free it no later than f (only filter_scratch_free() may follow f's
 * filter_free()); after a reload, make a new one.  NULL: out of memory.
 */
struct filter_scratch *filter_scratch_new(const struct filter *f);
void filter_scratch_free(struct filter_scratch *);	/* NULL-safe */

/*
 * Apply the column treatments to tuple in of in_rel (old key tuples too:
 * a hashed key column then still matches).  hash_key: FILTER_HASH_KEY_LEN
 * bytes, may be NULL if the section hashes nothing.  *out_rel is in_rel
 * when no column is dropped, else a relation without the dropped columns
 * (same oid), the same pointer for every call with an equal in_rel and
 * valid until filter_scratch_free().  out->vals and hash values live in s
 * until the next call with s; const values live in the filter.  UNCHANGED
 * stays UNCHANGED; hash keeps NULL.  0, LS_ERR_INVALID (tuple and relation
 * disagree, s not made for ft's filter, in_rel has key columns and all
 * are dropped, a hash without hash_key or of a binary value, filter not
 * validated), LS_ERR_NOMEM, LS_ERR_INTERNAL (OpenSSL).
 */
int filter_transform(const struct filter_table *, const uint8_t *hash_key,
    const struct ls_relation *in_rel, const struct ls_tuple *in,
    struct filter_scratch *s, const struct ls_relation **out_rel,
    struct ls_tuple *out);

/*
 * The base snapshot.  tbl describes the COPY's columns in order.
 * filter_copy_columns() fills names (tbl->ncols entries, pointers into tbl)
 * with the columns that are not dropped, for the target's COPY column list,
 * and returns their number.
 */
size_t filter_copy_columns(const struct filter_table *,
    const struct filter_table_info *tbl, const char **names);
/*
 * One row of COPY text format, with or without its '\n': evaluate the
 * predicate and apply the treatments.  0 and *keep; when kept, *out, *outlen
 * is the row for the target (dropped fields removed, a '\n' iff the input
 * had one), pointing into line or s, valid until the next call with s.
 * LS_ERR_CORRUPT: wrong number of fields, bad escape; else as
 * filter_row_passes() and filter_transform().
 */
int filter_copy_line(const struct filter_table *, const uint8_t *hash_key,
    const struct filter_table_info *tbl, const char *line, size_t len,
    struct filter_scratch *s, bool *keep, const char **out, size_t *outlen,
    char **errmsg);
/*
 * COPY text field escapes.  decode: field[len] (not \N) into out (len + 1
 * bytes, NUL-terminated), 0 or LS_ERR_CORRUPT (a trailing lone backslash).
 * encode: val[len] into out (2 * len + 1 bytes), returns the length.
 */
int filter_copy_decode(const char *field, size_t len, char *out,
    size_t *outlen);
size_t filter_copy_encode(const char *val, size_t len, char *out);

#endif
