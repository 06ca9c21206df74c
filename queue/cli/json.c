/* json.c - see json.h. RFC 8259 grammar; strings are decoded in place. */
#include "queue/cli/json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64

struct p {
	char *s, *end, *start;
	char *err;
	size_t errlen;
};

static int fail(struct p *p, const char *why)
{
	snprintf(p->err, p->errlen, "invalid JSON at byte %zu: %s", (size_t)(p->s - p->start), why);
	return -1;
}

static void ws(struct p *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static int hex4(struct p *p, const char *s, uint32_t *v)
{
	*v = 0;
	if (p->end - s < 4)
		return fail(p, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return fail(p, "bad \\u escape");
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Parses a string at p->s ('"'). If decode, writes the decoded bytes in
 * place (the output never outruns the input) and NUL-terminates. */
static int string(struct p *p, int decode, const char **out, size_t *len)
{
	char *o = p->s + 1;
	const char *begin = o;

	p->s++;
	for (;;) {
		unsigned char c;

		if (p->s >= p->end)
			return fail(p, "unterminated string");
		c = (unsigned char)*p->s;
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(p, "control character in string");
		if (c >= 0x80) { /* RFC 8259: JSON text is UTF-8 */
			size_t len = utf8_seq((const unsigned char *)p->s, (size_t)(p->end - p->s));

			if (!len)
				return fail(p, "invalid UTF-8 in string");
			if (decode)
				memmove(o, p->s, len), o += len;
			p->s += len;
			continue;
		}
		if (c != '\\') {
			if (decode)
				*o++ = (char)c;
			p->s++;
			continue;
		}
		if (p->end - p->s < 2)
			return fail(p, "unterminated escape");
		c = (unsigned char)p->s[1];
		p->s += 2;
		if (c == 'u') {
			uint32_t cp, lo;

			if (hex4(p, p->s, &cp))
				return -1;
			p->s += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u' ||
				    hex4(p, p->s + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return fail(p, "unpaired surrogate");
				p->s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return fail(p, "unpaired surrogate");
			}
			if (decode)
				o = put_utf8(o, cp);
			continue;
		}
		{
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *k = strchr(from, (int)c);

			if (!k || !c)
				return fail(p, "bad escape");
			if (decode)
				*o++ = to[k - from];
		}
	}
	if (decode) {
		*len = (size_t)(o - begin);
		*o = '\0'; /* o <= p->s, the closing quote */
		*out = begin;
	}
	p->s++;
	return 0;
}

static int digits(struct p *p)
{
	const char *b = p->s;

	while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
		p->s++;
	return p->s > b ? 0 : fail(p, "digit expected");
}

static int number(struct p *p)
{
	if (*p->s == '-')
		p->s++;
	if (p->s < p->end && *p->s == '0')
		p->s++;
	else if (digits(p))
		return -1;
	if (p->s < p->end && *p->s == '.') {
		p->s++;
		if (digits(p))
			return -1;
	}
	if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
		p->s++;
		if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
			p->s++;
		if (digits(p))
			return -1;
	}
	return 0;
}

static int value(struct p *p, int depth, enum json_type *t);

static int literal(struct p *p, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n))
		return fail(p, "unexpected token");
	p->s += n;
	return 0;
}

static int container(struct p *p, int depth, char close)
{
	enum json_type t;

	if (depth > MAX_DEPTH)
		return fail(p, "nested too deeply");
	p->s++;
	ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		return 0;
	}
	for (;;) {
		ws(p);
		if (close == '}') {
			if (p->s >= p->end || *p->s != '"')
				return fail(p, "object key expected");
			if (string(p, 0, NULL, NULL))
				return -1;
			ws(p);
			if (p->s >= p->end || *p->s != ':')
				return fail(p, "':' expected");
			p->s++;
		}
		if (value(p, depth + 1, &t))
			return -1;
		ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return 0;
		}
		return fail(p, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
	}
}

static int value(struct p *p, int depth, enum json_type *t)
{
	ws(p);
	if (p->s >= p->end)
		return fail(p, "value expected");
	switch (*p->s) {
	case '{': *t = JSON_OBJECT; return container(p, depth, '}');
	case '[': *t = JSON_ARRAY; return container(p, depth, ']');
	case '"': *t = JSON_STRING; return string(p, 0, NULL, NULL);
	case 't': *t = JSON_TRUE; return literal(p, "true");
	case 'f': *t = JSON_FALSE; return literal(p, "false");
	case 'n': *t = JSON_NULL; return literal(p, "null");
	default:
		if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9')) {
			*t = JSON_NUMBER;
			return number(p);
		}
		return fail(p, "unexpected character");
	}
}

int json_parse_object(char *buf, size_t n, struct json_field *f, size_t max, char *err,
		      size_t errlen)
{
	struct p p = { buf, buf + n, buf, err, errlen };
	size_t nf = 0;

	ws(&p);
	if (p.s >= p.end || *p.s != '{')
		return fail(&p, "object expected");
	p.s++;
	ws(&p);
	if (p.s < p.end && *p.s == '}') {
		p.s++;
		goto tail;
	}
	for (;;) {
		struct json_field x = { 0 };
		size_t klen;

		ws(&p);
		if (p.s >= p.end || *p.s != '"')
			return fail(&p, "object key expected");
		if (string(&p, 1, &x.key, &klen))
			return -1;
		if (strlen(x.key) != klen)
			return fail(&p, "NUL in key");
		ws(&p);
		if (p.s >= p.end || *p.s != ':')
			return fail(&p, "':' expected");
		p.s++;
		ws(&p);
		x.raw = p.s;
		if (p.s < p.end && *p.s == '"') {
			x.type = JSON_STRING;
			if (string(&p, 1, &x.str, &x.str_len))
				return -1;
		} else if (value(&p, 1, &x.type)) {
			return -1;
		}
		x.raw_len = (size_t)(p.s - x.raw);
		if (json_get(f, nf, x.key)) {
			snprintf(err, errlen, "duplicate key \"%.64s\"", x.key);
			return -1;
		}
		if (nf == max)
			return fail(&p, "too many fields");
		f[nf++] = x;
		ws(&p);
		if (p.s < p.end && *p.s == ',') {
			p.s++;
			continue;
		}
		if (p.s < p.end && *p.s == '}') {
			p.s++;
			break;
		}
		return fail(&p, "',' or '}' expected");
	}
tail:
	ws(&p);
	if (p.s != p.end)
		return fail(&p, "trailing characters after the object");
	return (int)nf;
}

const struct json_field *json_get(const struct json_field *f, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(f[i].key, key))
			return &f[i];
	return NULL;
}

/* Output of json_quote: pieces are written whole or not at all, and
 * nothing after the first that does not fit (no escape is ever cut). */
struct out {
	char *buf;
	size_t cap, w, need;
	int full;
};

static void put(struct out *b, const char *piece, size_t len)
{
	if (!b->full && b->w + len < b->cap) {
		memcpy(b->buf + b->w, piece, len);
		b->w += len;
	} else {
		b->full = 1;
	}
	b->need += len;
}

size_t json_quote(const char *str, int quotes, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)str;
	struct out b = { out, cap, 0, 0, 0 };
	size_t n = strlen(str), i = 0;

	if (quotes)
		put(&b, "\"", 1);
	while (i < n) {
		char esc[8];
		size_t len = utf8_seq(s + i, n - i);

		if (len == 0) {
			put(&b, "\\ufffd", 6);
			i++;
			continue;
		}
		if (len > 1) {
			put(&b, (const char *)s + i, len);
		} else if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\', esc[1] = (char)s[i];
			put(&b, esc, 2);
		} else if (s[i] < 0x20) {
			const char *e = s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : s[i] == '\t' ? "\\t"
					: s[i] == '\b' ? "\\b" : s[i] == '\f' ? "\\f" : NULL;

			if (e) {
				put(&b, e, 2);
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
				put(&b, esc, 6);
			}
		} else {
			put(&b, (const char *)s + i, 1);
		}
		i += len;
	}
	if (quotes)
		put(&b, "\"", 1);
	if (cap)
		out[b.w] = '\0';
	return b.need;
}
