/* otlp_json.c - OTLP/JSON encoder over protobuf-c descriptors (see otlp_json.h). */
#include "sidecar/otlp_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

static void put_key(struct sc_buf *o, const char *snake)
{
	char k[128];
	size_t n = 0;
	k[n++] = '"';
	for (const char *p = snake; *p && n < sizeof(k) - 3; p++) {
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
	sc_buf_append(o, k, n);
}

static void put_string(struct sc_buf *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	sc_buf_append(o, "\"", 1);
	const char *run = s;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sc_buf_append(o, run, (size_t)(p - run));
		run = p + 1;
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			sc_buf_append(o, esc, 2);
		} else if (c == '\n') {
			sc_buf_append(o, "\\n", 2);
		} else if (c == '\t') {
			sc_buf_append(o, "\\t", 2);
		} else if (c == '\r') {
			sc_buf_append(o, "\\r", 2);
		} else {
			sc_buf_append(o, esc, 6);
		}
	}
	sc_buf_append(o, run, strlen(run));
	sc_buf_append(o, "\"", 1);
}

static bool is_id_field(const char *name)
{
	return !strcmp(name, "trace_id") || !strcmp(name, "span_id") || !strcmp(name, "parent_span_id");
}

static void put_bytes(struct sc_buf *o, const ProtobufCBinaryData *d, bool hex)
{
	static const char hx[] = "0123456789abcdef";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	sc_buf_append(o, "\"", 1);
	if (hex) {
		for (size_t i = 0; i < d->len; i++) {
			char c[2] = { hx[d->data[i] >> 4], hx[d->data[i] & 15] };
			sc_buf_append(o, c, 2);
		}
	} else {
		for (size_t i = 0; i < d->len; i += 3) {
			uint32_t v = (uint32_t)d->data[i] << 16;
			size_t rem = d->len - i;
			if (rem > 1)
				v |= (uint32_t)d->data[i + 1] << 8;
			if (rem > 2)
				v |= d->data[i + 2];
			char c[4] = { b64[v >> 18], b64[(v >> 12) & 63], rem > 1 ? b64[(v >> 6) & 63] : '=',
				      rem > 2 ? b64[v & 63] : '=' };
			sc_buf_append(o, c, 4);
		}
	}
	sc_buf_append(o, "\"", 1);
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
		sc_buf_printf(o, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		sc_buf_printf(o, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		sc_buf_printf(o, "\"%" PRId64 "\"", *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		sc_buf_printf(o, "\"%" PRIu64 "\"", *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_double(o, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_double(o, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		sc_buf_puts(o, *(const protobuf_c_boolean *)p ? "true" : "false");
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

	sc_buf_append(o, "{", 1);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			if (!n)
				continue;
			if (!first)
				sc_buf_append(o, ",", 1);
			first = false;
			put_key(o, f->name);
			sc_buf_append(o, "[", 1);
			const char *arr = *(char *const *)p;
			for (size_t k = 0; k < n; k++) {
				if (k)
					sc_buf_append(o, ",", 1);
				put_value(o, f, arr + k * elem_size(f->type));
			}
			sc_buf_append(o, "]", 1);
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
			sc_buf_append(o, ",", 1);
		first = false;
		put_key(o, f->name);
		put_value(o, f, p);
	}
	sc_buf_append(o, "}", 1);
	return o->overflow ? -1 : 0;
}

int sc_otlp_json(const ProtobufCMessage *m, struct sc_buf *out)
{
	return encode(m, out);
}
