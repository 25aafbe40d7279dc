/*
 * filter_parse.c: the lexer and recursive-descent parser of filter files, and
 * filter_parse(), filter_load(), filter_free().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"
#include "common/util.h"
#include "filter/filter_int.h"

/*
 * A set of names (one or two strings) by index into an array the caller
 * owns, for duplicate checks in linear time: open addressing, grown at
 * half full; names(ctx, i) gives the strings of index i.
 */
struct nameset {
	size_t		*slot;		/* index + 1; 0 is empty */
	size_t		 cap, n;
	const void	*ctx;
	void		(*names)(const void *, size_t, const char **,
			    const char **);
};

static uint64_t
name_hash(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *a != '\0'; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0x100) * 1099511628211ULL;
	for (; b != NULL && *b != '\0'; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

static size_t *
ns_slot(const struct nameset *s, const char *a, const char *b)
{
	const char *x, *y;
	size_t i = (size_t)name_hash(a, b) & (s->cap - 1);

	for (; s->slot[i] != 0; i = (i + 1) & (s->cap - 1)) {
		s->names(s->ctx, s->slot[i] - 1, &x, &y);
		if (strcmp(x, a) == 0 && (b == NULL || strcmp(y, b) == 0))
			break;
	}
	return &s->slot[i];
}

/* The index stored for (a, b), or SIZE_MAX. */
static size_t
ns_find(const struct nameset *s, const char *a, const char *b)
{
	size_t *p;

	if (s->cap == 0)
		return SIZE_MAX;
	p = ns_slot(s, a, b);
	return *p != 0 ? *p - 1 : SIZE_MAX;
}

static int
ns_add(struct nameset *s, size_t idx)
{
	size_t *old = s->slot, oldcap = s->cap, i;
	const char *a, *b;

	if ((s->n + 1) * 2 > s->cap) {
		s->cap = oldcap != 0 ? oldcap * 2 : 16;
		if ((s->slot = calloc(s->cap, sizeof(*s->slot))) == NULL) {
			s->slot = old;
			s->cap = oldcap;
			return LS_ERR_NOMEM;
		}
		for (i = 0; i < oldcap; i++) {
			if (old[i] == 0)
				continue;
			s->names(s->ctx, old[i] - 1, &a, &b);
			*ns_slot(s, a, b) = old[i];
		}
		free(old);
	}
	s->names(s->ctx, idx, &a, &b);
	*ns_slot(s, a, b) = idx + 1;
	s->n++;
	return 0;
}

static void
ns_clear(struct nameset *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
}

/*
 * The lexer.  Tokens are found lazily, one of lookahead; their text is
 * extracted only when the parser keeps it.  Newlines end a statement
 * except while a parenthesis is open.
 */

enum tkind {
	T_EOF, T_EOL, T_WORD, T_QIDENT, T_STRING, T_NUMBER, T_OP, T_LPAREN,
	T_RPAREN, T_COMMA, T_DOT, T_BAD,
};

struct tok {
	enum tkind	 kind;
	enum op		 op;
	bool		 isint;
	size_t		 start, end;
	int		 line, col;
};

struct parser {
	const char		*s;
	size_t			 len, pos;
	int			 line;
	size_t			 lstart;
	int			 paren;		/* open parentheses */
	int			 depth;		/* nested ( and not */
	struct tok		 tok;
	bool			 have;
	struct filter		*f;
	struct filter_table	*cur;		/* the section being read */
	struct nameset		 sections;	/* of f->tables */
	struct nameset		 rules;		/* of cur->rules */
	char			**errmsg;
};

static int perr(struct parser *, int, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE:COL: message" as LS_ERR_INVALID. */
static int
perr(struct parser *p, int line, int col, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		return LS_ERR_NOMEM;
	ls_errf(p->errmsg, LS_ERR_INVALID, "%s:%d:%d: %s", p->f->filename,
	    line, col, msg);
	free(msg);
	return LS_ERR_INVALID;
}

static void
newline(struct parser *p)
{
	p->pos++;
	p->line++;
	p->lstart = p->pos;
}

/* Spaces and comments; newlines too inside parentheses. */
static void
skip_space(struct parser *p)
{
	char c;

	while (p->pos < p->len) {
		c = p->s[p->pos];
		if (filter_is_space(c))
			p->pos++;
		else if (c == '#') {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (c == '\n' && p->paren > 0)
			newline(p);
		else
			break;
	}
}

/* 'string' or "identifier" with the quote doubled inside; one line. */
static int
lex_quoted(struct parser *p, struct tok *t)
{
	char q = p->s[p->pos++];

	while (p->pos < p->len && p->s[p->pos] != '\n') {
		if (p->s[p->pos++] != q)
			continue;
		if (p->pos < p->len && p->s[p->pos] == q) {
			p->pos++;
			continue;
		}
		t->end = p->pos;
		if (q == '"' && t->end - t->start == 2)
			return perr(p, t->line, t->col,
			    "zero-length quoted identifier");
		return 0;
	}
	return perr(p, t->line, t->col, "unterminated quoted %s",
	    q == '"' ? "identifier" : "string");
}

/* [+-]digits[.digits][e[+-]digits]; glued letters make it T_BAD. */
static void
lex_number(struct parser *p, struct tok *t)
{
	const char *s = p->s;
	size_t n = p->len, i = p->pos;

	t->kind = T_NUMBER;
	t->isint = true;
	if (s[i] == '+' || s[i] == '-')
		i++;
	while (i < n && filter_is_digit(s[i]))
		i++;
	if (i < n && s[i] == '.') {
		t->isint = false;
		for (i++; i < n && filter_is_digit(s[i]); i++)
			;
	}
	if (i + 1 < n && (s[i] == 'e' || s[i] == 'E') && (filter_is_digit(s[i + 1]) ||
	    (i + 2 < n && (s[i + 1] == '+' || s[i + 1] == '-') &&
	    filter_is_digit(s[i + 2])))) {
		t->isint = false;
		for (i += 2; i < n && filter_is_digit(s[i]); i++)
			;
	}
	if (i < n && (filter_is_ident_char((unsigned char)s[i]) || s[i] == '.')) {
		t->kind = T_BAD;
		while (i < n && (filter_is_ident_char((unsigned char)s[i]) ||
		    s[i] == '.'))
			i++;
	}
	p->pos = t->end = i;
}

static bool
number_start(const struct parser *p)
{
	const char *s = p->s + p->pos;
	size_t n = p->len - p->pos;

	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		s++;
		n--;
	}
	return n > 0 && (filter_is_digit(s[0]) || (n > 1 && s[0] == '.' &&
	    filter_is_digit(s[1])));
}

/* = != <> < <= > >= */
static bool
lex_op(struct parser *p, struct tok *t)
{
	const char *s = p->s + p->pos;
	char c2 = p->pos + 1 < p->len ? s[1] : '\0';
	size_t n = 2;

	t->kind = T_OP;
	if (s[0] == '=') {
		t->op = OP_EQ;
		n = 1;
	} else if ((s[0] == '!' && c2 == '=') || (s[0] == '<' && c2 == '>'))
		t->op = OP_NE;
	else if (s[0] == '<' || s[0] == '>') {
		t->op = s[0] == '<' ? (c2 == '=' ? OP_LE : OP_LT) :
		    (c2 == '=' ? OP_GE : OP_GT);
		n = c2 == '=' ? 2 : 1;
	} else
		return false;
	p->pos += n;
	t->end = p->pos;
	return true;
}

static int
lex(struct parser *p, struct tok *t)
{
	const char *punct = "(),.";
	char c;

	skip_space(p);
	memset(t, 0, sizeof(*t));
	t->start = t->end = p->pos;
	t->line = p->line;
	t->col = (int)(p->pos - p->lstart) + 1;
	if (p->pos == p->len)
		return 0;			/* T_EOF */
	c = p->s[p->pos];
	if (c == '\n') {
		t->kind = T_EOL;
		t->end = p->pos + 1;
		newline(p);
	} else if (c == '\'' || c == '"') {
		t->kind = c == '\'' ? T_STRING : T_QIDENT;
		return lex_quoted(p, t);
	} else if (number_start(p))
		lex_number(p, t);
	else if (filter_is_ident_start((unsigned char)c)) {
		t->kind = T_WORD;
		while (p->pos < p->len &&
		    filter_is_ident_char((unsigned char)p->s[p->pos]))
			p->pos++;
		t->end = p->pos;
	} else if (c != '\0' && strchr(punct, c) != NULL) {
		t->kind = (enum tkind)(T_LPAREN + (strchr(punct, c) - punct));
		t->end = ++p->pos;
	} else if (!lex_op(p, t)) {
		t->kind = T_BAD;
		t->end = ++p->pos;
	}
	return 0;
}

static int
peek(struct parser *p, const struct tok **t)
{
	int r = 0;

	if (!p->have)
		r = lex(p, &p->tok);
	p->have = r == 0;
	*t = &p->tok;
	return r;
}

static void
next(struct parser *p)
{
	p->have = false;
}

/* A bare word equal to the lowercase keyword kw. */
static bool
is_kw(const struct parser *p, const struct tok *t, const char *kw)
{
	return t->kind == T_WORD && filter_word_eq(p->s + t->start,
	    t->end - t->start, kw);
}

/* "expected WHAT near 'token'" at the token. */
static int
expected(struct parser *p, const struct tok *t, const char *what)
{
	char near[48];
	size_t i, n = t->end - t->start;

	if (t->kind == T_EOF)
		return perr(p, t->line, t->col, "expected %s near end of file",
		    what);
	if (t->kind == T_EOL)
		return perr(p, t->line, t->col, "expected %s near end of line",
		    what);
	if (n > 32)
		n = 32;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p->s[t->start + i];

		near[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	near[n] = '\0';
	return perr(p, t->line, t->col, "expected %s near '%s'", what, near);
}

/* expected() at the token that starts at the cursor. */
static int
expected_here(struct parser *p, const char *what)
{
	const struct tok *t;
	int r;

	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	return expected(p, t, what);
}

/* The contents of a quoted token, the doubled quote undone. */
static char *
unquote(const struct parser *p, const struct tok *t, size_t *lenp)
{
	const char *s = p->s + t->start;
	size_t n = t->end - t->start - 2, i, j = 0;
	char q = s[0], *out;

	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 1; i <= n; i++) {
		out[j++] = s[i];
		if (s[i] == q)
			i++;
	}
	out[j] = '\0';
	if (lenp != NULL)
		*lenp = j;
	return out;
}

/* An identifier token's name: folded when bare, as written when quoted. */
static char *
ident(const struct parser *p, const struct tok *t)
{
	char *s;
	size_t i;

	if (t->kind == T_QIDENT)
		return unquote(p, t, NULL);
	if ((s = filter_xstrndup(p->s + t->start, t->end - t->start)) != NULL)
		for (i = 0; s[i] != '\0'; i++)
			s[i] = filter_lower(s[i]);
	return s;
}

/*
 * Expressions: or of ands of nots of primaries.  and/or nodes are n-ary.
 */

static void
lit_clear(struct flit *l)
{
	free(l->text);
	l->text = NULL;
}

static void
node_free(struct fnode *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	for (i = 0; i < n->nlits; i++)
		lit_clear(&n->lits[i]);
	free(n->kids);
	free(n->lits);
	free(n->colname);
	free(n);
}

static struct fnode *
node_new(enum nkind kind, const struct tok *t)
{
	struct fnode *n = calloc(1, sizeof(*n));

	if (n != NULL) {
		n->kind = kind;
		n->line = t->line;
		n->col = t->col;
	}
	return n;
}

static bool
is_reserved(const struct parser *p, const struct tok *t)
{
	static const char *const words[] = { "and", "or", "not", "in", "is",
	    "null", "true", "false" };
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (is_kw(p, t, words[i]))
			return true;
	return false;
}

static bool
is_column(const struct parser *p, const struct tok *t)
{
	return t->kind == T_QIDENT || (t->kind == T_WORD && !is_reserved(p, t));
}

/* A literal: 'string', number, true, false or null. */
static int
parse_lit(struct parser *p, struct flit *l)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	memset(l, 0, sizeof(*l));
	l->line = t->line;
	l->col = t->col;
	if (t->kind == T_STRING) {
		l->kind = L_STR;
		l->text = unquote(p, t, &l->len);
	} else if (t->kind == T_NUMBER) {
		l->kind = L_NUM;
		l->isint = t->isint;
		l->len = t->end - t->start;
		l->text = filter_xstrndup(p->s + t->start, l->len);
	} else if (is_kw(p, t, "true") || is_kw(p, t, "false")) {
		l->kind = L_BOOL;
		l->b = is_kw(p, t, "true");
		return next(p), 0;
	} else if (is_kw(p, t, "null")) {
		l->kind = L_NULL;
		return next(p), 0;
	} else if (is_column(p, t))
		return perr(p, t->line, t->col, "comparing two columns is not "
		    "supported; compare the column with a literal");
	else
		return expected(p, t, "a literal");
	next(p);
	return l->text == NULL ? LS_ERR_NOMEM : 0;
}

static int
null_compare(struct parser *p, const struct flit *l)
{
	return perr(p, l->line, l->col, "a comparison with null is never "
	    "true; use 'is null' or 'is not null'");
}

static enum op
flip(enum op op)
{
	switch (op) {
	case OP_LT:	return OP_GT;
	case OP_LE:	return OP_GE;
	case OP_GT:	return OP_LT;
	case OP_GE:	return OP_LE;
	default:	return op;
	}
}

/* COL op LIT, with the column already read into n. */
static int
parse_cmp(struct parser *p, struct fnode *n, const struct tok *op)
{
	int r;

	n->kind = N_CMP;
	n->op = op->op;
	n->oline = op->line;
	n->ocol = op->col;
	next(p);
	if ((n->lits = calloc(1, sizeof(*n->lits))) == NULL)
		return LS_ERR_NOMEM;
	n->nlits = 1;
	if ((r = parse_lit(p, n->lits)) != 0)
		return r;
	return n->lits->kind == L_NULL ? null_compare(p, n->lits) : 0;
}

/* One literal of an in list after the first, of the first's kind. */
static int
parse_in_item(struct parser *p, struct fnode *n, size_t *cap)
{
	struct flit *l;
	int r;

	if (filter_grow(&n->lits, cap, n->nlits + 1, sizeof(*n->lits)) != 0)
		return LS_ERR_NOMEM;
	l = &n->lits[n->nlits];
	if ((r = parse_lit(p, l)) != 0)
		return r;
	n->nlits++;
	if (l->kind == L_NULL)
		return perr(p, l->line, l->col, "null in an 'in' list never "
		    "matches; use 'is null'");
	if (l->kind != n->lits[0].kind)
		return perr(p, l->line, l->col, "an 'in' list mixes literal "
		    "kinds (strings, numbers, booleans)");
	return 0;
}

/* COL [not] in ( LIT [, LIT]... ), "in" being the current token. */
static int
parse_in(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	size_t cap = 0;
	int r;

	n->kind = N_IN;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_LPAREN)
		return expected(p, t, "'('");
	p->paren++;
	next(p);
	do {
		if ((r = parse_in_item(p, n, &cap)) != 0 ||
		    (r = peek(p, &t)) != 0)
			return r;
		if (t->kind != T_COMMA && t->kind != T_RPAREN)
			return expected(p, t, "',' or ')'");
		if (t->kind == T_COMMA)
			next(p);
	} while (t->kind == T_COMMA);
	p->paren--;
	next(p);
	return 0;
}

/* COL is [not] null, "is" being the current token. */
static int
parse_is(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	int r;

	n->kind = N_ISNULL;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (is_kw(p, t, "not")) {
		n->neg = true;
		next(p);
		if ((r = peek(p, &t)) != 0)
			return r;
	}
	if (!is_kw(p, t, "null"))
		return expected(p, t, "'null'");
	next(p);
	return 0;
}

/* A primary that starts with a column name. */
static int
parse_colexpr(struct parser *p, struct fnode *n, const struct tok *t)
{
	int r;

	if ((n->colname = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind == T_OP)
		return parse_cmp(p, n, t);
	if (is_kw(p, t, "in"))
		return parse_in(p, n);
	if (is_kw(p, t, "is"))
		return parse_is(p, n);
	if (is_kw(p, t, "not")) {
		n->neg = true;
		next(p);
		if ((r = peek(p, &t)) != 0)
			return r;
		if (!is_kw(p, t, "in"))
			return expected(p, t, "'in'");
		return parse_in(p, n);
	}
	n->kind = N_BOOLCOL;
	return 0;
}

/* LIT op COL (the literal read into n->lits), turned into COL op' LIT. */
static int
parse_litfirst(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_OP)
		return expected(p, t, "a comparison operator");
	n->kind = N_CMP;
	n->op = flip(t->op);
	n->oline = t->line;
	n->ocol = t->col;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (!is_column(p, t))
		return expected(p, t, "a column name");
	n->line = t->line;
	n->col = t->col;
	if ((n->colname = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	return n->lits->kind == L_NULL ? null_compare(p, n->lits) : 0;
}

/* true, false, or a literal before an operator. */
static int
parse_litexpr(struct parser *p, struct fnode *n)
{
	const struct tok *t;
	int r;

	if ((n->lits = calloc(1, sizeof(*n->lits))) == NULL)
		return LS_ERR_NOMEM;
	n->nlits = 1;
	if ((r = parse_lit(p, n->lits)) != 0 || (r = peek(p, &t)) != 0)
		return r;
	if (n->lits->kind == L_BOOL && t->kind != T_OP) {
		n->kind = N_CONST;
		n->value = n->lits->b;
		return 0;
	}
	return parse_litfirst(p, n);
}

static int parse_or(struct parser *, struct fnode **);

static int
enter(struct parser *p, const struct tok *t)
{
	if (++p->depth > FILTER_MAX_DEPTH)
		return perr(p, t->line, t->col, "expression nested deeper "
		    "than %d levels", FILTER_MAX_DEPTH);
	return 0;
}

/* ( expr ) */
static int
parse_paren(struct parser *p, const struct tok *t, struct fnode **out)
{
	int r;

	if ((r = enter(p, t)) != 0)
		return r;
	p->paren++;
	next(p);
	if ((r = parse_or(p, out)) != 0 || (r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_RPAREN)
		return expected(p, t, "')'");
	p->paren--;
	p->depth--;
	next(p);
	return 0;
}

static int
parse_primary(struct parser *p, struct fnode **out)
{
	const struct tok *t;
	struct fnode *n;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind == T_LPAREN)
		return parse_paren(p, t, out);
	if (!is_column(p, t) && t->kind != T_STRING && t->kind != T_NUMBER &&
	    !is_kw(p, t, "true") && !is_kw(p, t, "false") &&
	    !is_kw(p, t, "null"))
		return expected(p, t, "an expression");
	if ((n = node_new(N_CMP, t)) == NULL)
		return LS_ERR_NOMEM;
	*out = n;
	if (is_column(p, t))
		return parse_colexpr(p, n, t);
	return parse_litexpr(p, n);
}

static int
parse_not(struct parser *p, struct fnode **out)
{
	const struct tok *t;
	struct fnode *n;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (!is_kw(p, t, "not"))
		return parse_primary(p, out);
	if ((r = enter(p, t)) != 0)
		return r;
	if ((n = node_new(N_NOT, t)) == NULL ||
	    (n->kids = calloc(1, sizeof(*n->kids))) == NULL) {
		free(n);
		return LS_ERR_NOMEM;
	}
	*out = n;
	n->nkids = 1;
	next(p);
	if ((r = parse_not(p, &n->kids[0])) != 0)
		return r;
	p->depth--;
	return 0;
}

/* One level of and/or: sub (kw sub)*, n-ary when there are several. */
static int
parse_junction(struct parser *p, enum nkind kind, const char *kw,
    int (*sub)(struct parser *, struct fnode **), struct fnode **out)
{
	const struct tok *t;
	struct fnode *n = NULL, *first = NULL;
	size_t cap = 0;
	int r;

	if ((r = sub(p, &first)) != 0 || (r = peek(p, &t)) != 0 ||
	    !is_kw(p, t, kw)) {
		*out = first;
		return r;
	}
	if ((n = node_new(kind, t)) == NULL ||
	    filter_grow(&n->kids, &cap, 2, sizeof(*n->kids)) != 0) {
		node_free(first);
		free(n);
		return LS_ERR_NOMEM;
	}
	*out = n;
	n->kids[n->nkids++] = first;
	while (is_kw(p, t, kw)) {
		next(p);
		if (filter_grow(&n->kids, &cap, n->nkids + 1, sizeof(*n->kids)) != 0)
			return LS_ERR_NOMEM;
		n->kids[n->nkids] = NULL;
		r = sub(p, &n->kids[n->nkids]);
		n->nkids++;
		if (r != 0 || (r = peek(p, &t)) != 0)
			return r;
	}
	return 0;
}

static int
parse_and(struct parser *p, struct fnode **out)
{
	return parse_junction(p, N_AND, "and", parse_not, out);
}

static int
parse_or(struct parser *p, struct fnode **out)
{
	return parse_junction(p, N_OR, "or", parse_and, out);
}

/*
 * Statements.
 */

/* Append a pattern character; wildcards from quoted text are escaped. */
static int
pat_putc(struct sbuf *sb, char c, bool quoted)
{
	if (quoted && (c == '*' || c == '?' || c == '\\') &&
	    filter_sb_putc(sb, '\\') != 0)
		return LS_ERR_NOMEM;
	return filter_sb_putc(sb, quoted ? c : filter_lower(c)) != 0 ? LS_ERR_NOMEM : 0;
}

/* A "quoted" piece of a pattern, appended literally. */
static int
pattern_quoted(struct parser *p, struct sbuf *sb)
{
	struct tok t = { 0 };
	char *s;
	size_t i, n;
	int r = 0;

	t.kind = T_QIDENT;
	t.start = p->pos;
	t.line = p->line;
	t.col = (int)(p->pos - p->lstart) + 1;
	if ((r = lex_quoted(p, &t)) != 0)
		return r;
	if ((s = unquote(p, &t, &n)) == NULL)
		return LS_ERR_NOMEM;
	for (i = 0; i < n && r == 0; i++)
		r = pat_putc(sb, s[i], true);
	free(s);
	return r;
}

/* One side of SCHEMA.TABLE: bare text with * and ?, and "quoted" text. */
static int
pattern_part(struct parser *p, char **out)
{
	struct sbuf sb = { 0 };
	unsigned char c;
	int r = 0;

	while (r == 0 && p->pos < p->len) {
		c = (unsigned char)p->s[p->pos];
		if (c == '"')
			r = pattern_quoted(p, &sb);
		else if (filter_is_ident_char(c) || c == '*' || c == '?') {
			r = pat_putc(&sb, (char)c, false);
			p->pos++;
		} else
			break;
	}
	if (r == 0 && sb.len == 0)
		r = expected_here(p, "a SCHEMA.TABLE pattern");
	if (r != 0) {
		free(sb.b);
		return r;
	}
	*out = sb.b;
	return 0;
}

static int
st_pattern(struct parser *p, bool exclude)
{
	struct filter *f = p->f;
	struct fpattern *pat;
	size_t start;
	int r;

	skip_space(p);
	if (filter_grow(&f->pats, &f->patcap, f->npats + 1, sizeof(*f->pats)) != 0)
		return LS_ERR_NOMEM;
	pat = &f->pats[f->npats++];
	memset(pat, 0, sizeof(*pat));
	pat->exclude = exclude;
	pat->line = p->line;
	pat->col = (int)(p->pos - p->lstart) + 1;
	start = p->pos;
	if ((r = pattern_part(p, &pat->schema)) != 0)
		return r;
	if (p->pos >= p->len || p->s[p->pos] != '.')
		return expected_here(p, "'.' between schema and table");
	p->pos++;
	if ((r = pattern_part(p, &pat->table)) != 0)
		return r;
	if ((pat->text = filter_xstrndup(p->s + start, p->pos - start)) == NULL)
		return LS_ERR_NOMEM;
	f->any_include |= !exclude;
	return 0;
}

static int
st_include(struct parser *p, int line, int col)
{
	return st_pattern(p, false);
}

static int
st_exclude(struct parser *p, int line, int col)
{
	return st_pattern(p, true);
}

/* PATH relative to the filter file's directory. */
static char *
resolve(const char *filename, const char *path)
{
	const char *slash = strrchr(filename, '/');
	char *out;

	if (path[0] == '/' || slash == NULL)
		return strdup(path);
	if (asprintf(&out, "%.*s/%s", (int)(slash - filename), filename,
	    path) < 0)
		return NULL;
	return out;
}

static int
st_keyfile(struct parser *p, int line, int col)
{
	const struct tok *t;
	char *path;
	size_t start;
	int r;

	if (p->f->keyfile != NULL)
		return perr(p, line, col, "hash-key-file given twice (first "
		    "at line %d)", p->f->kline);
	skip_space(p);
	start = p->pos;
	if (p->pos < p->len && p->s[p->pos] == '\'') {
		if ((r = peek(p, &t)) != 0)
			return r;
		path = unquote(p, t, NULL);
		next(p);
	} else {
		while (p->pos < p->len && !filter_is_space(p->s[p->pos]) &&
		    p->s[p->pos] != '#' && p->s[p->pos] != '\n')
			p->pos++;
		if (p->pos == start)
			return expected_here(p, "a path");
		path = filter_xstrndup(p->s + start, p->pos - start);
	}
	if (path == NULL)
		return LS_ERR_NOMEM;
	if (path[0] == '\0') {
		free(path);
		return perr(p, line, col, "hash-key-file: empty path");
	}
	p->f->keyfile = resolve(p->f->filename, path);
	p->f->kline = line;
	free(path);
	return p->f->keyfile == NULL ? LS_ERR_NOMEM : 0;
}

/* SCHEMA.NAME, each a bare or "quoted" identifier. */
static int
parse_qualname(struct parser *p, struct filter_table *ft)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_WORD && t->kind != T_QIDENT)
		return expected(p, t, "SCHEMA.TABLE");
	ft->line = t->line;
	ft->col = t->col;
	if ((ft->schema = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_DOT)
		return expected(p, t, "'.' and a table name");
	next(p);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_WORD && t->kind != T_QIDENT)
		return expected(p, t, "a table name (a table section takes "
		    "no wildcards)");
	if ((ft->name = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	next(p);
	return 0;
}

struct filter_table *
filter_find_section(const struct filter *f, const char *schema, const char *name)
{
	size_t i;

	for (i = 0; i < f->ntables; i++)
		if (f->tables[i]->schema != NULL && f->tables[i]->name != NULL &&
		    strcmp(f->tables[i]->schema, schema) == 0 &&
		    strcmp(f->tables[i]->name, name) == 0)
			return f->tables[i];
	return NULL;
}

static void
section_free(struct filter_table *ft)
{
	size_t i;

	if (ft == NULL)
		return;
	for (i = 0; i < ft->nrules; i++) {
		free(ft->rules[i].col);
		lit_clear(&ft->rules[i].lit);
		free(ft->rules[i].ctext);
	}
	free(ft->rules);
	node_free(ft->where);
	free(ft->schema);
	free(ft->name);
	free(ft);
}

static int
st_table(struct parser *p, int line, int col)
{
	struct filter *f = p->f;
	struct filter_table *ft;
	size_t i;
	int r;

	if ((ft = calloc(1, sizeof(*ft))) == NULL ||
	    filter_grow(&f->tables, &f->tabcap, f->ntables + 1, sizeof(*f->tables)) != 0) {
		free(ft);
		return LS_ERR_NOMEM;
	}
	if ((r = parse_qualname(p, ft)) != 0) {
		section_free(ft);
		return r;
	}
	if ((i = ns_find(&p->sections, ft->schema, ft->name)) != SIZE_MAX) {
		r = perr(p, ft->line, ft->col, "table %s.%s already has a "
		    "section (line %d)", ft->schema, ft->name,
		    f->tables[i]->line);
		section_free(ft);
		return r;
	}
	ft->f = f;
	f->tables[f->ntables++] = ft;
	p->cur = ft;
	ns_clear(&p->rules);
	return ns_add(&p->sections, f->ntables - 1);
}

/* where, column and id-mode belong to a table section. */
static int
need_section(struct parser *p, int line, int col, const char *kw)
{
	if (p->cur != NULL)
		return 0;
	return perr(p, line, col, "'%s' must follow a 'table SCHEMA.NAME' "
	    "line", kw);
}

static int
st_where(struct parser *p, int line, int col)
{
	int r;

	if ((r = need_section(p, line, col, "where")) != 0)
		return r;
	if (p->cur->where != NULL)
		return perr(p, line, col, "table %s.%s already has a where "
		    "line (line %d); combine the conditions with 'and'",
		    p->cur->schema, p->cur->name, p->cur->wline);
	p->cur->wline = line;
	p->depth = 0;
	return parse_or(p, &p->cur->where);
}

/* drop | null | const LIT | hash */
static int
parse_rule_kind(struct parser *p, struct frule *ru)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	ru->kline = t->line;
	ru->kcol = t->col;
	if (is_kw(p, t, "drop"))
		ru->kind = R_DROP;
	else if (is_kw(p, t, "null"))
		ru->kind = R_NULL;
	else if (is_kw(p, t, "hash"))
		ru->kind = R_HASH;
	else if (is_kw(p, t, "const"))
		ru->kind = R_CONST;
	else
		return expected(p, t, "drop, null, const or hash");
	next(p);
	if (ru->kind != R_CONST)
		return 0;
	if ((r = peek(p, &t)) != 0)
		return r;
	if (is_column(p, t))
		return expected(p, t, "a literal");
	if ((r = parse_lit(p, &ru->lit)) != 0)
		return r;
	if (ru->lit.kind == L_NULL)
		return perr(p, ru->lit.line, ru->lit.col, "write 'column %s "
		    "null' to set the column to NULL", ru->col);
	return 0;
}

const struct frule *
filter_find_rule(const struct filter_table *ft, const char *col)
{
	size_t i;

	for (i = 0; i < ft->nrules; i++)
		if (strcmp(ft->rules[i].col, col) == 0)
			return &ft->rules[i];
	return NULL;
}

static int
st_column(struct parser *p, int line, int col)
{
	struct filter_table *ft = p->cur;
	struct frule *ru;
	size_t i;
	const struct tok *t;
	int r;

	if ((r = need_section(p, line, col, "column")) != 0 ||
	    (r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_WORD && t->kind != T_QIDENT)
		return expected(p, t, "a column name");
	if (filter_grow(&ft->rules, &ft->rulecap, ft->nrules + 1, sizeof(*ft->rules)) != 0)
		return LS_ERR_NOMEM;
	ru = &ft->rules[ft->nrules];
	memset(ru, 0, sizeof(*ru));
	ru->line = t->line;
	ru->col_no = t->col;
	if ((ru->col = ident(p, t)) == NULL)
		return LS_ERR_NOMEM;
	if ((i = ns_find(&p->rules, ru->col, NULL)) != SIZE_MAX) {
		r = perr(p, ru->line, ru->col_no, "column %s already has a "
		    "rule (line %d)", ru->col, ft->rules[i].line);
		free(ru->col);
		return r;
	}
	if ((r = ns_add(&p->rules, ft->nrules)) != 0) {
		free(ru->col);
		return r;
	}
	ft->nrules++;
	next(p);
	return parse_rule_kind(p, ru);
}

static int
st_idmode(struct parser *p, int line, int col)
{
	const struct tok *t;
	int r;

	if ((r = need_section(p, line, col, "id-mode")) != 0)
		return r;
	if (p->cur->idmode != FILTER_ID_DEFAULT)
		return perr(p, line, col, "table %s.%s already has an id-mode "
		    "line (line %d)", p->cur->schema, p->cur->name,
		    p->cur->idline);
	if ((r = peek(p, &t)) != 0)
		return r;
	if (is_kw(p, t, "remap"))
		p->cur->idmode = FILTER_ID_REMAP;
	else if (is_kw(p, t, "preserve"))
		p->cur->idmode = FILTER_ID_PRESERVE;
	else
		return expected(p, t, "remap or preserve");
	p->cur->idline = line;
	next(p);
	return 0;
}

static int
parse_statement(struct parser *p)
{
	static const struct {
		const char	*kw;
		int		(*fn)(struct parser *, int, int);
	} st[] = {
		{ "include", st_include }, { "exclude", st_exclude },
		{ "hash-key-file", st_keyfile }, { "table", st_table },
		{ "where", st_where }, { "column", st_column },
		{ "id-mode", st_idmode },
	};
	size_t i, start = p->pos, n;
	int line = p->line, col = (int)(p->pos - p->lstart) + 1;

	while (p->pos < p->len && (filter_is_ident_char((unsigned char)p->s[p->pos])
	    || p->s[p->pos] == '-'))
		p->pos++;
	n = p->pos - start;
	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (filter_word_eq(p->s + start, n, st[i].kw))
			return st[i].fn(p, line, col);
	if (n == 0)
		return expected_here(p, "a statement");
	return perr(p, line, col, "expected include, exclude, hash-key-file, "
	    "table, where, column or id-mode near '%.*s'",
	    (int)(n > 32 ? 32 : n), p->s + start);
}

static int
expect_eol(struct parser *p)
{
	const struct tok *t;
	int r;

	if ((r = peek(p, &t)) != 0)
		return r;
	if (t->kind != T_EOL && t->kind != T_EOF)
		return expected(p, t, "end of line");
	next(p);
	return 0;
}

/* A NUL byte anywhere is refused where it is. */
static int
check_nul(struct parser *p)
{
	const char *z = memchr(p->s, '\0', p->len);
	const char *ls;
	int line = 1;

	if (z == NULL)
		return 0;
	ls = p->s;
	for (const char *q = p->s; q < z; q++)
		if (*q == '\n') {
			line++;
			ls = q + 1;
		}
	return perr(p, line, (int)(z - ls) + 1, "NUL byte in the filter file");
}

/* Every hash needs the key file. */
static int
check_hash_key(struct parser *p)
{
	const struct filter *f = p->f;
	const struct frule *ru;
	size_t i, j;

	if (f->keyfile != NULL)
		return 0;
	for (i = 0; i < f->ntables; i++)
		for (j = 0; j < f->tables[i]->nrules; j++) {
			ru = &f->tables[i]->rules[j];
			if (ru->kind == R_HASH)
				return perr(p, ru->kline, ru->kcol, "column %s "
				    "is hashed but the file has no "
				    "hash-key-file line", ru->col);
		}
	return 0;
}

static int
parse_file(struct parser *p)
{
	int r;

	if ((r = check_nul(p)) != 0)
		return r;
	for (;;) {
		skip_space(p);
		if (p->pos == p->len)
			break;
		if (p->s[p->pos] == '\n') {
			newline(p);
			continue;
		}
		if ((r = parse_statement(p)) != 0 || (r = expect_eol(p)) != 0)
			return r;
	}
	return check_hash_key(p);
}

static void
section_names(const void *ctx, size_t i, const char **a, const char **b)
{
	const struct filter *f = ctx;

	*a = f->tables[i]->schema;
	*b = f->tables[i]->name;
}

static void
rule_names(const void *ctx, size_t i, const char **a, const char **b)
{
	const struct parser *p = ctx;

	*a = p->cur->rules[i].col;
	*b = NULL;
}

/* Serials of filters, never reused, so a scratch can tell its own. */
static atomic_uint_fast64_t filter_serials = 1;

int
filter_parse(const char *text, size_t len, const char *filename,
    struct filter **out, char **errmsg)
{
	struct parser p = { 0 };
	struct filter *f;
	int r;

	*out = NULL;
	if (filename == NULL)
		filename = "<filter>";
	if (len > FILTER_MAX_FILE)
		return ls_errf(errmsg, LS_ERR_TOOBIG, "%s: %zu bytes; a filter "
		    "file holds at most %d", filename, len, FILTER_MAX_FILE);
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->filename = strdup(filename)) == NULL) {
		free(f);
		return ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
	}
	f->serial = atomic_fetch_add(&filter_serials, 1);
	p.s = text;
	p.len = len;
	p.line = 1;
	p.f = f;
	p.errmsg = errmsg;
	p.sections.ctx = f;
	p.sections.names = section_names;
	p.rules.ctx = &p;
	p.rules.names = rule_names;
	r = parse_file(&p);
	ns_clear(&p.sections);
	ns_clear(&p.rules);
	if (r != 0) {
		if (r == LS_ERR_NOMEM)
			ls_errf(errmsg, r, "%s: out of memory", filename);
		filter_free(f);
		return r;
	}
	*out = f;
	return 0;
}

int
filter_load(const char *path, struct filter **out, char **errmsg)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, r;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ls_errf(errmsg, errno == ENOENT ? LS_ERR_NOTFOUND :
		    LS_ERR_IO, "filter file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		r = ls_errf(errmsg, LS_ERR_IO, "filter file %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (st.st_size > FILTER_MAX_FILE) {
		r = ls_errf(errmsg, LS_ERR_TOOBIG, "filter file %s: %lld "
		    "bytes; at most %d", path, (long long)st.st_size,
		    FILTER_MAX_FILE);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = ls_errf(errmsg, LS_ERR_NOMEM, "out of memory");
		goto out;
	}
	n = ls_pread_all(fd, buf, (size_t)st.st_size + 1, 0);
	if (n < 0 || n > st.st_size) {
		r = ls_errf(errmsg, n < 0 ? LS_ERR_IO : LS_ERR_INVALID,
		    "filter file %s: %s", path, n < 0 ? strerror(errno) :
		    "changed while being read");
		goto out;
	}
	r = filter_parse(buf, (size_t)n, path, out, errmsg);
out:
	free(buf);
	close(fd);
	return r;
}

void
filter_warnings_clear(struct filter *f)
{
	size_t i;

	for (i = 0; i < f->nwarnings; i++)
		free(f->warnings[i]);
	free(f->warnings);
	f->warnings = NULL;
	f->nwarnings = 0;
}

void
filter_free(struct filter *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->npats; i++) {
		free(f->pats[i].schema);
		free(f->pats[i].table);
		free(f->pats[i].text);
	}
	for (i = 0; i < f->ntables; i++)
		section_free(f->tables[i]);
	filter_warnings_clear(f);
	free(f->pats);
	free(f->tables);
	free(f->keyfile);
	free(f->filename);
	free(f);
}
