/*
 * filter_int.h: the filter module's private types and the functions its
 * files share; filter.h is the public side.
 * See logship-filter(5).
 *
 * A hand-written lexer and recursive-descent parser turn the filter file
 * into sections of a table: a where tree (and/or nodes are n-ary, so only
 * parentheses and `not` nest, at most FILTER_MAX_DEPTH deep) and column
 * rules.  filter_validate() types every literal against its column; the
 * evaluation is read-only on the filter and thread-safe.  Comparisons are
 * exact: 64-bit integers, decimal digit strings, instants in microseconds
 * computed with checked arithmetic.  An UNCHANGED value makes a comparison
 * "unknown", which and/or resolve when the other side decides the result.
 */
#ifndef LS_FILTER_INT_H
#define LS_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/filter.h"

/* PostgreSQL type OIDs the filter knows. */
#define OID_BOOL	16
#define OID_CHAR	18
#define OID_NAME	19
#define OID_INT8	20
#define OID_INT2	21
#define OID_INT4	23
#define OID_TEXT	25
#define OID_OID		26
#define OID_FLOAT4	700
#define OID_FLOAT8	701
#define OID_BPCHAR	1042
#define OID_VARCHAR	1043
#define OID_DATE	1082
#define OID_TIMESTAMP	1114
#define OID_TIMESTAMPTZ	1184
#define OID_NUMERIC	1700
#define OID_UUID	2950

/* How values of a type compare. */
enum tclass {
	TC_OTHER, TC_INT, TC_NUM, TC_BOOL, TC_TEXT, TC_BPCHAR, TC_UUID,
	TC_DATE, TC_TS, TC_TSTZ,
};

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

/* Three-valued logic, plus "needs a value that was not sent". */
enum tv { TV_FALSE, TV_TRUE, TV_NULL, TV_UNKNOWN };

/* A decimal: rank orders -Infinity, numbers, Infinity, NaN. */
struct dec {
	int		 rank;		/* 0 -inf, 1 finite, 2 +inf, 3 NaN */
	int		 sign;		/* finite: -1, 0, 1 */
	const char	*d, *e;		/* significant digits ('.' skipped) */
	int64_t		 exp;		/* value = 0.d... * 10^exp */
};

enum lkind { L_STR, L_NUM, L_BOOL, L_NULL };

struct flit {
	enum lkind	 kind;
	char		*text;		/* string contents or number as written */
	size_t		 len;
	bool		 isint;		/* L_NUM without '.' or exponent */
	bool		 b;		/* L_BOOL; typed bool */
	int		 line, col;
	/* typed by filter_validate() */
	int64_t		 i;		/* integers, instants */
	struct dec	 dec;		/* numeric; points into text */
	char		 uuid[32];	/* lowercase hex */
	size_t		 cmplen;	/* bpchar: length without trailing spaces */
};

enum nkind { N_AND, N_OR, N_NOT, N_CMP, N_IN, N_ISNULL, N_BOOLCOL, N_CONST };

struct fnode {
	enum nkind	  kind;
	struct fnode	**kids;		/* and, or (n), not (1) */
	size_t		  nkids;
	char		 *colname;	/* leaves */
	int		  line, col;	/* of the column name or keyword */
	int		  oline, ocol;	/* of the operator */
	enum op		  op;		/* N_CMP */
	bool		  neg;		/* not in, is not null */
	bool		  value;	/* N_CONST */
	struct flit	 *lits;		/* N_CMP (1), N_IN (n) */
	size_t		  nlits;
	/* set by filter_validate() */
	uint32_t	  type_oid;
	enum tclass	  tclass;
};

enum rkind { R_DROP, R_NULL, R_CONST, R_HASH };

struct frule {
	char		*col;
	int		 line, col_no;	/* of the column name */
	int		 kline, kcol;	/* of drop/null/const/hash */
	enum rkind	 kind;
	struct flit	 lit;		/* R_CONST */
	char		*ctext;		/* R_CONST: output text (validated) */
	size_t		 clen;
};

struct filter_table {
	const struct filter	*f;
	char			*schema, *name;
	int			 line, col;
	struct fnode		*where;
	int			 wline;		/* of the where line */
	struct frule		*rules;
	size_t			 nrules, rulecap;
	enum filter_id_mode	 idmode;
	int			 idline;
};

struct fpattern {
	char		*schema, *table;	/* '*' '?' wild, '\' escapes */
	char		*text;			/* as written */
	int		 line, col;
	bool		 exclude;
};

struct filter {
	char			 *filename;
	struct fpattern		 *pats;
	size_t			  npats, patcap;
	bool			  any_include;
	char			 *keyfile;	/* resolved */
	int			  kline;
	struct filter_table	**tables;
	size_t			  ntables, tabcap;
	char			**warnings;
	size_t			  nwarnings;
	bool			  validated;
	uint64_t		  serial;	/* unique in the process */
};


/* A growable byte string. */
struct sbuf {
	char	*b;
	size_t	 len, cap;
};

struct tvalue {
	int64_t	 us;		/* microseconds since 2000-01-01 UTC */
	bool	 has_time, has_zone;
};

/* filter_value.c */
int filter_grow(void *arr, size_t *cap, size_t n, size_t elem);
int filter_sb_putc(struct sbuf *sb, char c);
char *filter_xstrndup(const char *s, size_t n);
char filter_lower(char c);
bool filter_is_ident_start(unsigned char c);
bool filter_is_ident_char(unsigned char c);
bool filter_is_digit(char c);
bool filter_is_space(char c);
bool filter_word_eq(const char *s, size_t len, const char *w);
const char *filter_trim(const char *s, size_t *len);
int filter_parse_int(const char *s, size_t len, int64_t *out);
int filter_parse_dec(const char *s, size_t len, struct dec *d);
int filter_dec_cmp(const struct dec *a, const struct dec *b);
int filter_parse_bool(const char *s, size_t len, bool *b);
int filter_hexval(char c);
int filter_parse_uuid(const char *s, size_t len, char out[32]);
int filter_parse_time(const char *s, size_t len, struct tvalue *tv);

/* filter_parse.c */
struct filter_table *filter_find_section(const struct filter *f,
    const char *schema, const char *name);
const struct frule *filter_find_rule(const struct filter_table *ft,
    const char *col);
void filter_warnings_clear(struct filter *f);

/* filter_check.c */
const char *filter_type_name(uint32_t oid, char buf[24]);

/* filter_eval.c */
int filter_eval_where(const struct filter_table *ft,
    const struct ls_relation *rel, const struct ls_tuple *t,
    const struct ls_tuple *fb, enum tv *out, const char **unknown,
    char **errmsg);

#endif
