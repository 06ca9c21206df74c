/* otlp_json.c - OTLP/JSON encoder over protobuf-c descriptors (see otlp_json.h). */
#include "sidecar/otlp_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Appends without a call for the common case (the encoder writes a few
 * bytes at a time); sc_buf_append() handles growth and the limit. */
static inline void put_raw(struct sc_buf *o, const void *p, size_t n)
{
	if (!n)
		return;
	if (!o->overflow && o->cap - o->len >= n) {
		memcpy(o->data + o->len, p, n);
		o->len += n;
	} else {
		sc_buf_append(o, p, n);
	}
}

static inline void put_ch(struct sc_buf *o, char c)
{
	put_raw(o, &c, 1);
}

/* Decimal without printf ("%" PRIu64 / PRId64), optionally quoted. */
static void put_u64(struct sc_buf *o, uint64_t v, bool neg, bool quoted)
{
	char buf[24];
	size_t i = sizeof(buf);
	if (quoted)
		buf[--i] = '"';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		buf[--i] = '-';
	if (quoted)
		buf[--i] = '"';
	put_raw(o, buf + i, sizeof(buf) - i);
}

static void put_i64(struct sc_buf *o, int64_t v, bool quoted)
{
	put_u64(o, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0, quoted);
}

/* "lowerCamelCase": of a proto field name, in out (>= 128 bytes). */
static size_t json_key(const char *snake, char *k)
{
	size_t n = 0;
	k[n++] = '"';
	for (const char *p = snake; *p && n < 128 - 3; p++) {
		if (*p == '_' && p[1] && p[1] != '_') {
			char c = p[1];
			k[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
			p++;
		} else if (*p != '_') {
			k[n++] = *p;
		}
	}
	k[n++] = '"';
	k[n++] = ':';
	return n;
}

/* The keys of the few dozen OTLP fields, converted once: descriptors are
 * static, so their address identifies them. Event loop only (as every
 * caller of sc_otlp_json); a full table just converts each time. */
#define KEYS 512
static struct {
	const ProtobufCFieldDescriptor *f;
	uint8_t n;
	char k[63];
} keys[KEYS];

static void put_key(struct sc_buf *o, const ProtobufCFieldDescriptor *f)
{
	size_t h = ((uintptr_t)f >> 4) % KEYS, i;
	for (i = 0; i < 8 && keys[h].f; i++, h = (h + 1) % KEYS) {
		if (keys[h].f == f) {
			put_raw(o, keys[h].k, keys[h].n);
			return;
		}
	}
	char k[128];
	size_t n = json_key(f->name, k);
	if (i < 8 && n <= sizeof(keys[h].k)) { /* keys[h] is free */
		memcpy(keys[h].k, k, n);
		keys[h].n = (uint8_t)n;
		keys[h].f = f;
	}
	put_raw(o, k, n);
}

static void put_string(struct sc_buf *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put_raw(o, "\"", 1);
	const char *run = s, *p;
	for (p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put_raw(o, run, (size_t)(p - run));
		run = p + 1;
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put_raw(o, esc, 2);
		} else if (c == '\n') {
			put_raw(o, "\\n", 2);
		} else if (c == '\t') {
			put_raw(o, "\\t", 2);
		} else if (c == '\r') {
			put_raw(o, "\\r", 2);
		} else {
			put_raw(o, esc, 6);
		}
	}
	put_raw(o, run, (size_t)(p - run));
	put_raw(o, "\"", 1);
}

static bool is_id_field(const char *name)
{
	return !strcmp(name, "trace_id") || !strcmp(name, "span_id") || !strcmp(name, "parent_span_id");
}

static void put_bytes(struct sc_buf *o, const ProtobufCBinaryData *d, bool hex)
{
	static const char hx[] = "0123456789abcdef";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = hex ? 2 * d->len : (d->len + 2) / 3 * 4;
	uint8_t *w = sc_buf_reserve(o, n + 2);
	if (!w)
		return;
	*w++ = '"';
	if (hex) {
		for (size_t i = 0; i < d->len; i++) {
			*w++ = (uint8_t)hx[d->data[i] >> 4];
			*w++ = (uint8_t)hx[d->data[i] & 15];
		}
	} else {
		for (size_t i = 0; i < d->len; i += 3) {
			uint32_t v = (uint32_t)d->data[i] << 16;
			size_t rem = d->len - i;
			if (rem > 1)
				v |= (uint32_t)d->data[i + 1] << 8;
			if (rem > 2)
				v |= d->data[i + 2];
			*w++ = (uint8_t)b64[v >> 18];
			*w++ = (uint8_t)b64[(v >> 12) & 63];
			*w++ = (uint8_t)(rem > 1 ? b64[(v >> 6) & 63] : '=');
			*w++ = (uint8_t)(rem > 2 ? b64[v & 63] : '=');
		}
	}
	*w = '"';
	o->len += n + 2;
}

static void put_double(struct sc_buf *o, double v)
{
	if (isnan(v))
		sc_buf_puts(o, "\"NaN\"");
	else if (isinf(v))
		sc_buf_puts(o, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
		sc_buf_printf(o, "%.17g", v);
}

static int encode(const ProtobufCMessage *m, struct sc_buf *o);

/* One value of field f stored at p. */
static void put_value(struct sc_buf *o, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM: /* OTLP JSON: enums as integers */
		put_i64(o, *(const int32_t *)p, false);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		put_u64(o, *(const uint32_t *)p, false, false);
		break;
	case PROTOBUF_C_TYPE_INT64: /* 64-bit integers are strings in OTLP JSON */
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		put_i64(o, *(const int64_t *)p, true);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		put_u64(o, *(const uint64_t *)p, false, true);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_double(o, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_double(o, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (*(const protobuf_c_boolean *)p)
			put_raw(o, "true", 4);
		else
			put_raw(o, "false", 5);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		put_string(o, s ? s : "");
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		put_bytes(o, p, is_id_field(f->name));
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		if (sub)
			encode(sub, o);
		else
			sc_buf_puts(o, "{}");
		break;
	}
	}
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	default:
		return 4;
	}
}

/* proto3 default value: left out of the JSON. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p == NULL;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0 && !signbit(*(const double *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0;
	default: {
		size_t n = elem_size(f->type);
		static const unsigned char zero[8];
		return !memcmp(p, zero, n);
	}
	}
}

static int encode(const ProtobufCMessage *m, struct sc_buf *o)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	bool first = true;

	put_ch(o, '{');
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			if (!n)
				continue;
			if (!first)
				put_ch(o, ',');
			first = false;
			put_key(o, f);
			put_ch(o, '[');
			const char *arr = *(char *const *)p;
			for (size_t k = 0; k < n; k++) {
				if (k)
					put_ch(o, ',');
				put_value(o, f, arr + k * elem_size(f->type));
			}
			put_ch(o, ']');
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
			   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
			   f->type != PROTOBUF_C_TYPE_BYTES) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
		} else if (is_default(f, p)) {
			continue;
		}
		if (!first)
			put_ch(o, ',');
		first = false;
		put_key(o, f);
		put_value(o, f, p);
	}
	put_ch(o, '}');
	return o->overflow ? -1 : 0;
}

int sc_otlp_json(const ProtobufCMessage *m, struct sc_buf *out)
{
	return encode(m, out);
}
