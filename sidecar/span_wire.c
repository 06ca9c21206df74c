/* span_wire.c - agent Span -> OTLP Span wire bytes (see span_wire.h). */
#include "sidecar/span_wire.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/utf8.h"
#include "sidecar/wire.h"

/* Field numbers of proto/jobq_agent.proto. */
enum { A_TRACE_ID = 1, A_SPAN_ID, A_PARENT, A_NAME, A_KIND, A_START, A_END, A_ATTRS, A_EVENTS,
       A_LINKS, A_STATUS_ERROR, A_STATUS_MSG, A_FLAGS };
enum { KV_NONE = 0, KV_KEY = 1, KV_STR, KV_INT, KV_DBL, KV_BOOL };
/* ... and of the OTLP Span (trace.proto); the other OTLP messages are
 * written with their numbers inline. */
enum { O_TRACE_ID = 1, O_SPAN_ID = 2, O_PARENT = 4, O_NAME = 5, O_KIND = 6, O_START = 7, O_END = 8,
       O_ATTRS = 9, O_EVENTS = 11, O_LINKS = 13, O_DROPPED_LINKS = 14, O_STATUS = 15, O_FLAGS = 16 };

#define LINEAR_KEYS 32 /* beyond this many attributes, duplicate keys are found by hash */

/* A string as it is written: valid UTF-8, cut at its first NUL; in the
 * frame (or a constant) at p, or repaired into the scratch at off. */
struct str {
	const uint8_t *p;
	size_t off, n;
};

/* An agent KeyValue as decoded (last value of each field wins). */
struct kv_in {
	const uint8_t *key, *s;
	size_t keyn, sn;
	int vcase;  /* KV_NONE, KV_STR, KV_INT, KV_DBL, KV_BOOL */
	uint64_t u; /* int value, double bits, or bool */
};

struct keyref {
	struct str s;
	uint64_t head; /* its first 8 bytes, zero-padded: most keys differ there or in length */
	uint64_t h;    /* valid once the hash table is in use */
};

/* Singular fields of an agent Span, its attributes in x->kvs. */
struct span_in {
	const uint8_t *tid, *sid, *pid, *name, *smsg;
	size_t tidn, sidn, pidn, namen, smsgn;
	int32_t kind;
	uint64_t start, end;
	uint32_t flags;
	bool error;
	size_t nkv, nevents, nlinks, nbadlinks;
	long queue, jobid; /* first job.queue / job.id attribute, or -1 */
};

struct emit {
	struct sc_span_ctx *x;
	struct sc_buf *out;
	size_t nkeys;
	uint64_t bloom; /* a bit per (length, first, last byte) of the keys seen */
	bool hashed;
};

void sc_span_ctx_init(struct sc_span_ctx *x)
{
	memset(x, 0, sizeof(*x));
	sc_buf_init(&x->scratch, 0);
}

void sc_span_ctx_free(struct sc_span_ctx *x)
{
	sc_buf_free(&x->scratch);
	free(x->kvs);
	free(x->keys);
	free(x->table);
	memset(x, 0, sizeof(*x));
}

/* Grows *arr to hold n elements of size sz; false on ENOMEM. */
static bool grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	if (n <= *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 16;
	while (c < n)
		c *= 2;
	void *p = realloc(*arr, c * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

static bool id_ok(const uint8_t *p, size_t n, size_t want)
{
	if (n != want)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return true;
	return false; /* all-zero ids are invalid in W3C / OTLP */
}

/* The C string protobuf-c would hand over is cut at the first NUL. */
static bool raw_key_is(const uint8_t *k, size_t n, const char *want)
{
	size_t w = strlen(want);
	return n >= w && !memcmp(k, want, w) && (n == w || k[w] == 0);
}

/* ---- decoding (and validating exactly as protobuf-c would) ---- */

static int parse_kv(const uint8_t *p, size_t n, struct kv_in *kv)
{
	const uint8_t *end = p + n;
	struct sc_pb_field f;
	int r;

	*kv = (struct kv_in){ .key = (const uint8_t *)"" };
	while ((r = sc_pb_next(&p, end, &f)) == 1) {
		switch (f.number) {
		case KV_KEY:
			if (f.wire_type != SC_WT_LEN)
				return -1;
			kv->key = f.data, kv->keyn = f.len;
			break;
		case KV_STR:
			if (f.wire_type != SC_WT_LEN)
				return -1;
			kv->vcase = KV_STR, kv->s = f.data, kv->sn = f.len;
			break;
		case KV_INT:
			if (f.wire_type != SC_WT_VARINT)
				return -1;
			kv->vcase = KV_INT, kv->u = f.varint;
			break;
		case KV_DBL:
			if (f.wire_type != SC_WT_I64)
				return -1;
			kv->vcase = KV_DBL, kv->u = sc_pb_fixed64(f.data);
			break;
		case KV_BOOL: /* protobuf-c takes a bool of any wire type */
			kv->vcase = KV_BOOL, kv->u = (uint64_t)sc_pb_bool(&f);
			break;
		}
	}
	return r;
}

/* SpanEvent: name, time; its attributes are checked here, written later. */
static int parse_event(const uint8_t *p, size_t n, const uint8_t **name, size_t *namen, uint64_t *time)
{
	const uint8_t *end = p + n;
	struct sc_pb_field f;
	struct kv_in kv;
	int r;

	*name = NULL, *namen = 0, *time = 0;
	while ((r = sc_pb_next(&p, end, &f)) == 1) {
		if (f.number == 1) {
			if (f.wire_type != SC_WT_LEN)
				return -1;
			*name = f.data, *namen = f.len;
		} else if (f.number == 2) {
			if (f.wire_type != SC_WT_VARINT)
				return -1;
			*time = f.varint;
		} else if (f.number == 3) {
			if (f.wire_type != SC_WT_LEN || parse_kv(f.data, f.len, &kv))
				return -1;
		}
	}
	return r;
}

/* SpanLink: 1 if its ids are valid, 0 if not, -1 malformed. */
static int parse_link(const uint8_t *p, size_t n, const uint8_t **tid, const uint8_t **sid, uint32_t *flags)
{
	const uint8_t *end = p + n;
	struct sc_pb_field f;
	size_t tn = 0, sn = 0;
	int r;

	*tid = *sid = NULL, *flags = 0;
	while ((r = sc_pb_next(&p, end, &f)) == 1) {
		if (f.number == 1 || f.number == 2) {
			if (f.wire_type != SC_WT_LEN)
				return -1;
			if (f.number == 1)
				*tid = f.data, tn = f.len;
			else
				*sid = f.data, sn = f.len;
		} else if (f.number == 3) {
			if (f.wire_type != SC_WT_VARINT)
				return -1;
			*flags = (uint32_t)f.varint;
		}
	}
	if (r < 0)
		return -1;
	return id_ok(*tid, tn, 16) && id_ok(*sid, sn, 8);
}

/* Pass 1: the whole span is checked (a frame protobuf-c would refuse must
 * be refused), its singular fields kept (the last occurrence wins) and its
 * attributes decoded into x->kvs. *oom: x->kvs could not grow. */
static int scan_span(struct sc_span_ctx *x, const uint8_t *p, size_t n, struct span_in *in, bool *oom)
{
	const uint8_t *end = p + n;
	struct sc_pb_field f;
	int r;

	memset(in, 0, sizeof(*in));
	in->queue = in->jobid = -1;
	while ((r = sc_pb_next(&p, end, &f)) == 1) {
		int want = -1; /* the wire type this field needs; -1: any / unknown */
		switch (f.number) {
		case A_TRACE_ID: case A_SPAN_ID: case A_PARENT: case A_NAME: case A_ATTRS:
		case A_EVENTS: case A_LINKS: case A_STATUS_MSG:
			want = SC_WT_LEN;
			break;
		case A_KIND: case A_START: case A_END: case A_FLAGS:
			want = SC_WT_VARINT;
			break;
		}
		if (want >= 0 && f.wire_type != want)
			return -1;
		switch (f.number) {
		case A_TRACE_ID: in->tid = f.data, in->tidn = f.len; break;
		case A_SPAN_ID: in->sid = f.data, in->sidn = f.len; break;
		case A_PARENT: in->pid = f.data, in->pidn = f.len; break;
		case A_NAME: in->name = f.data, in->namen = f.len; break;
		case A_KIND: in->kind = (int32_t)(uint32_t)f.varint; break;
		case A_START: in->start = f.varint; break;
		case A_END: in->end = f.varint; break;
		case A_STATUS_ERROR: in->error = sc_pb_bool(&f); break; /* any wire type */
		case A_STATUS_MSG: in->smsg = f.data, in->smsgn = f.len; break;
		case A_FLAGS: in->flags = (uint32_t)f.varint; break;
		case A_ATTRS: {
			/* Decoded in place: a copy of a just-written struct stalls. */
			struct kv_in spare, *kv = &spare;
			if (!*oom && !grow(&x->kvs, &x->kvs_cap, in->nkv + 1, sizeof(*kv)))
				*oom = true; /* keep checking; nothing is written */
			if (!*oom)
				kv = (struct kv_in *)x->kvs + in->nkv;
			if (parse_kv(f.data, f.len, kv))
				return -1;
			if (*oom)
				break;
			if (in->queue < 0 && raw_key_is(kv->key, kv->keyn, "job.queue"))
				in->queue = (long)in->nkv;
			if (in->jobid < 0 && raw_key_is(kv->key, kv->keyn, "job.id"))
				in->jobid = (long)in->nkv;
			in->nkv++;
			break;
		}
		case A_EVENTS: {
			const uint8_t *nm;
			size_t nl;
			uint64_t t;
			if (parse_event(f.data, f.len, &nm, &nl, &t))
				return -1;
			in->nevents++;
			break;
		}
		case A_LINKS: {
			const uint8_t *t, *s;
			uint32_t fl;
			int ok = parse_link(f.data, f.len, &t, &s, &fl);
			if (ok < 0)
				return -1;
			in->nlinks++;
			in->nbadlinks += !ok;
			break;
		}
		}
	}
	return r;
}

/* ---- strings ---- */

static inline const uint8_t *str_ptr(const struct sc_span_ctx *x, const struct str *s)
{
	return s->p ? s->p : x->scratch.data + s->off;
}

/* Bytes 0x01..0x7f need neither cutting nor repair: skip them 8 at a
 * time (a zero or high byte makes (v - 0x01..) | v show a high bit). */
static size_t plain_prefix(const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		if (((v - 0x0101010101010101ull) | v) & 0x8080808080808080ull)
			break;
	}
	while (i < n && (uint8_t)(p[i] - 1) < 0x7f)
		i++;
	return i;
}

/* The string protobuf-c's path packed for these bytes: cut at NUL, then
 * repaired if not valid UTF-8. false on ENOMEM. */
static bool clean(struct sc_span_ctx *x, const uint8_t *p, size_t n, struct str *s)
{
	size_t i = plain_prefix(p, n);
	if (i < n) {
		const uint8_t *z = p[i] ? memchr(p + i, 0, n - i) : p + i;
		if (z)
			n = (size_t)(z - p);
	}
	s->p = p, s->n = n, s->off = 0;
	if (i >= n || sc_utf8_valid((const char *)p + i, n - i))
		return true;
	uint8_t *dst = sc_buf_reserve(&x->scratch, SC_UTF8_REPAIR_MAX(n));
	if (!dst)
		return false;
	s->p = NULL;
	s->off = x->scratch.len;
	s->n = sc_utf8_repair((const char *)p, n, (char *)dst);
	x->scratch.len += s->n;
	return true;
}

static struct str cstr(const char *s)
{
	return (struct str){ (const uint8_t *)s, 0, strlen(s) };
}

/* Decimal of v into buf (at least 21 bytes), as "%lld" prints it. */
static struct str decimal(int64_t v, char *buf)
{
	char tmp[24];
	size_t n = 0, k = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[k++] = '-';
	while (n)
		buf[k++] = tmp[--n];
	return (struct str){ (const uint8_t *)buf, 0, k };
}

/* ---- attribute keys seen (the first of equal keys wins) ---- */

static uint64_t hash(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static bool rehash(struct emit *e, size_t want)
{
	struct sc_span_ctx *x = e->x;
	struct keyref *k = x->keys;
	size_t cap = 64;
	while (cap < want * 2)
		cap *= 2;
	if (cap > x->table_cap) {
		uint32_t *t = realloc(x->table, cap * sizeof(*t));
		if (!t)
			return false;
		x->table = t;
		x->table_cap = cap;
	}
	memset(x->table, 0, x->table_cap * sizeof(*x->table));
	for (size_t i = 0; i < e->nkeys; i++) {
		if (!e->hashed)
			k[i].h = hash(str_ptr(x, &k[i].s), k[i].s.n);
		size_t j = (size_t)k[i].h & (x->table_cap - 1);
		while (x->table[j])
			j = (j + 1) & (x->table_cap - 1);
		x->table[j] = (uint32_t)i + 1;
	}
	e->hashed = true;
	return true;
}

static uint64_t key_head(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	if (n >= 8) {
		memcpy(&v, p, 8); /* one load (a variable-size copy stalls the read back) */
		return v;
	}
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t key_bit(const uint8_t *p, size_t n)
{
	return n ? 1ull << ((n * 7 + p[0] * 13u + p[n - 1] * 5u) & 63) : 1;
}

static void forget_keys(struct emit *e)
{
	e->nkeys = 0;
	e->bloom = 0;
	e->hashed = false;
}

/* true if key was seen in this attribute list; else records it. A failed
 * allocation marks the output overflowed (the span cannot be kept). The
 * usual span has a dozen distinct keys: the filter answers most lookups
 * without a comparison, the first 8 bytes and the length most others. */
static bool seen(struct emit *e, const struct str *key)
{
	struct sc_span_ctx *x = e->x;
	const uint8_t *kp = str_ptr(x, key);
	struct keyref *k = x->keys;
	uint64_t h = 0, head = key_head(kp, key->n), bit = key_bit(kp, key->n);

	if (!e->hashed) {
		if (e->bloom & bit)
			for (size_t i = 0; i < e->nkeys; i++)
				if (k[i].head == head && k[i].s.n == key->n &&
				    (key->n <= 8 || !memcmp(str_ptr(x, &k[i].s) + 8, kp + 8, key->n - 8)))
					return true;
	} else {
		h = hash(kp, key->n);
		for (size_t j = (size_t)h & (x->table_cap - 1); x->table[j]; j = (j + 1) & (x->table_cap - 1)) {
			const struct keyref *r = &k[x->table[j] - 1];
			if (r->h == h && r->s.n == key->n && !memcmp(str_ptr(x, &r->s), kp, key->n))
				return true;
		}
	}
	if (e->nkeys >= UINT32_MAX - 1 || !grow(&x->keys, &x->keys_cap, e->nkeys + 1, sizeof(*k))) {
		e->out->overflow = true;
		return true;
	}
	k = x->keys;
	k[e->nkeys] = (struct keyref){ *key, head, h };
	e->nkeys++;
	e->bloom |= bit;
	if (e->hashed ? e->nkeys * 2 > x->table_cap : e->nkeys > LINEAR_KEYS) {
		if (!rehash(e, e->nkeys)) {
			e->out->overflow = true;
			return true;
		}
	} else if (e->hashed) {
		size_t j = (size_t)h & (x->table_cap - 1);
		while (x->table[j])
			j = (j + 1) & (x->table_cap - 1);
		x->table[j] = (uint32_t)e->nkeys;
	}
	return false;
}

/* ---- writing ---- */

/* KeyValue{key, value: AnyValue{one member}} as field `field`. */
static void put_kv(struct emit *e, uint32_t field, const struct str *key, int vcase, const struct str *sval,
		   uint64_t u)
{
	size_t av;
	switch (vcase) {
	case KV_STR: av = 1 + sc_pb_varint_len(sval->n) + sval->n; break;
	case KV_INT: av = 1 + sc_pb_varint_len(u); break;
	case KV_DBL: av = 9; break;
	default: av = 2; break; /* bool */
	}
	size_t kv = (key->n ? 1 + sc_pb_varint_len(key->n) + key->n : 0) + 1 + sc_pb_varint_len(av) + av;
	size_t need = sc_pb_varint_len((uint64_t)field << 3) + sc_pb_varint_len(kv) + kv;
	uint8_t *p = sc_buf_reserve(e->out, need);
	if (!p)
		return;
	p = sc_pb_put_tag(p, field, SC_WT_LEN);
	p = sc_pb_put_varint(p, kv);
	if (key->n) /* proto3: an empty key is left out */
		p = sc_pb_put_bytes(p, 1, str_ptr(e->x, key), key->n);
	p = sc_pb_put_tag(p, 2, SC_WT_LEN);
	p = sc_pb_put_varint(p, av);
	switch (vcase) {
	case KV_STR: /* a set oneof member is written even when empty */
		sc_pb_put_bytes(p, 1, str_ptr(e->x, sval), sval->n);
		break;
	case KV_INT:
		p = sc_pb_put_tag(p, 3, SC_WT_VARINT);
		sc_pb_put_varint(p, u);
		break;
	case KV_DBL:
		p = sc_pb_put_tag(p, 4, SC_WT_I64);
		sc_pb_put_fixed64(p, u);
		break;
	default:
		p = sc_pb_put_tag(p, 2, SC_WT_VARINT);
		*p = u ? 1 : 0;
		break;
	}
	e->out->len += need;
}

static void put_str_kv(struct emit *e, uint32_t field, const struct str *key, const struct str *val)
{
	if (!seen(e, key))
		put_kv(e, field, key, KV_STR, val, 0);
}

/* An agent attribute, converted as kv_from_agent() did. */
static void put_agent_kv(struct emit *e, uint32_t field, const struct kv_in *kv)
{
	struct str key, val = { 0 };
	char num[24];
	int vcase = kv->vcase;
	uint64_t u = kv->u;

	if (!clean(e->x, kv->key, kv->keyn, &key)) {
		e->out->overflow = true;
		return;
	}
	if (vcase == KV_INT && raw_key_is(kv->key, kv->keyn, "messaging.message.id")) {
		vcase = KV_STR; /* semantic conventions: a string */
		val = decimal((int64_t)u, num);
	} else if (vcase == KV_STR) {
		if (!clean(e->x, kv->s, kv->sn, &val)) {
			e->out->overflow = true;
			return;
		}
	} else if (vcase == KV_NONE) {
		vcase = KV_STR; /* no value: an empty string */
	}
	if (!seen(e, &key))
		put_kv(e, field, &key, vcase, &val, u);
}

/* A nested message whose size is found after writing it: one length byte
 * is reserved, and the body moved in the rare case it needs more. */
static size_t open_msg(struct emit *e, uint32_t field)
{
	uint8_t *p = sc_buf_reserve(e->out, 6);
	if (!p)
		return 0;
	e->out->len = (size_t)(sc_pb_put_tag(p, field, SC_WT_LEN) - e->out->data) + 1;
	return e->out->len;
}

static void close_msg(struct emit *e, size_t body)
{
	struct sc_buf *o = e->out;
	if (o->overflow)
		return;
	size_t n = o->len - body, k = sc_pb_varint_len(n);
	if (k > 1) {
		if (!sc_buf_reserve(o, k - 1))
			return;
		memmove(o->data + body + k - 1, o->data + body, n);
		o->len += k - 1;
	}
	sc_pb_put_varint(o->data + body - 1, n);
}

static void put_event(struct emit *e, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n, *nm;
	struct sc_pb_field f;
	struct kv_in kv;
	struct str name;
	size_t nl;
	uint64_t t;

	if (parse_event(p, n, &nm, &nl, &t) || !clean(e->x, nm ? nm : (const uint8_t *)"", nl, &name)) {
		e->out->overflow = true; /* checked already: only ENOMEM gets here */
		return;
	}
	size_t body = open_msg(e, O_EVENTS);
	uint8_t *w = sc_buf_reserve(e->out, 9 + 1 + 5 + name.n);
	if (!w)
		return;
	uint8_t *q = w;
	if (t) {
		q = sc_pb_put_tag(q, 1, SC_WT_I64);
		q = sc_pb_put_fixed64(q, t);
	}
	if (name.n)
		q = sc_pb_put_bytes(q, 2, str_ptr(e->x, &name), name.n);
	e->out->len += (size_t)(q - w);
	forget_keys(e); /* the event's own attribute list */
	while (sc_pb_next(&p, end, &f) == 1)
		if (f.number == 3 && parse_kv(f.data, f.len, &kv) == 0)
			put_agent_kv(e, 3, &kv);
	close_msg(e, body);
}

static void put_link(struct emit *e, const uint8_t *tid, const uint8_t *sid, uint32_t flags)
{
	size_t body = 18 + 10 + (flags ? 5 : 0);
	uint8_t *p = sc_buf_reserve(e->out, 2 + body), *w = p;
	if (!p)
		return;
	p = sc_pb_put_tag(p, O_LINKS, SC_WT_LEN);
	p = sc_pb_put_varint(p, body);
	p = sc_pb_put_bytes(p, 1, tid, 16);
	p = sc_pb_put_bytes(p, 2, sid, 8);
	if (flags) {
		p = sc_pb_put_tag(p, 6, SC_WT_I32);
		p = sc_pb_put_fixed32(p, flags);
	}
	e->out->len += (size_t)(p - w);
}

/* Pass 2: the OTLP Span body, fields in number order. */
static void put_span(struct emit *e, const struct span_in *in, const uint8_t *span, size_t len)
{
	struct sc_span_ctx *x = e->x;
	struct str name, smsg = { 0 };
	const struct kv_in *kvs = x->kvs;

	if (!clean(x, in->name ? in->name : (const uint8_t *)"", in->namen, &name) ||
	    (in->error && !clean(x, in->smsg ? in->smsg : (const uint8_t *)"", in->smsgn, &smsg))) {
		e->out->overflow = true;
		return;
	}
	if (!name.n)
		name = cstr("job");
	int32_t kind = in->kind >= 0 && in->kind <= 5 ? in->kind : 0;
	uint8_t *p = sc_buf_reserve(e->out, 18 + 10 + 10 + 1 + 5 + name.n + 11 + 9 + 9), *w = p;
	if (!p)
		return;
	p = sc_pb_put_bytes(p, O_TRACE_ID, in->tid, 16);
	p = sc_pb_put_bytes(p, O_SPAN_ID, in->sid, 8);
	if (in->pidn)
		p = sc_pb_put_bytes(p, O_PARENT, in->pid, 8);
	p = sc_pb_put_bytes(p, O_NAME, str_ptr(x, &name), name.n);
	if (kind) {
		p = sc_pb_put_tag(p, O_KIND, SC_WT_VARINT);
		p = sc_pb_put_varint(p, (uint64_t)kind);
	}
	if (in->start) {
		p = sc_pb_put_tag(p, O_START, SC_WT_I64);
		p = sc_pb_put_fixed64(p, in->start);
	}
	if (in->end) {
		p = sc_pb_put_tag(p, O_END, SC_WT_I64);
		p = sc_pb_put_fixed64(p, in->end);
	}
	e->out->len += (size_t)(p - w);

	/* Attributes: the agent's, then the messaging conventions it lacks. */
	forget_keys(e);
	for (size_t i = 0; i < in->nkv; i++)
		put_agent_kv(e, O_ATTRS, &kvs[i]);
	struct str k = cstr("messaging.system"), v = cstr("jobq");
	put_str_kv(e, O_ATTRS, &k, &v);
	if (in->kind == 4 || in->kind == 5) { /* PRODUCER, CONSUMER */
		k = cstr("messaging.operation.type");
		v = cstr(in->kind == 4 ? "create" : "process");
		put_str_kv(e, O_ATTRS, &k, &v);
	}
	if (in->queue >= 0 && kvs[in->queue].vcase == KV_STR) {
		k = cstr("messaging.destination.name");
		if (!clean(x, kvs[in->queue].s, kvs[in->queue].sn, &v))
			e->out->overflow = true;
		else
			put_str_kv(e, O_ATTRS, &k, &v);
	}
	if (in->jobid >= 0 && (kvs[in->jobid].vcase == KV_INT || kvs[in->jobid].vcase == KV_STR)) {
		char num[24];
		k = cstr("messaging.message.id");
		if (kvs[in->jobid].vcase == KV_INT)
			v = decimal((int64_t)kvs[in->jobid].u, num);
		else if (!clean(x, kvs[in->jobid].s, kvs[in->jobid].sn, &v))
			e->out->overflow = true;
		if (!e->out->overflow)
			put_str_kv(e, O_ATTRS, &k, &v);
	}

	/* Events and links are walked again from the span's bytes (checked). */
	if (in->nevents || in->nlinks) {
		const uint8_t *q = span, *end = span + len;
		struct sc_pb_field f;
		while (in->nevents && sc_pb_next(&q, end, &f) == 1)
			if (f.number == A_EVENTS)
				put_event(e, f.data, f.len);
		for (q = span; in->nlinks && sc_pb_next(&q, end, &f) == 1;) {
			const uint8_t *t, *s;
			uint32_t fl;
			if (f.number == A_LINKS && parse_link(f.data, f.len, &t, &s, &fl) == 1)
				put_link(e, t, s, fl);
		}
	}

	size_t st = in->error ? (smsg.n ? 1 + sc_pb_varint_len(smsg.n) + smsg.n : 0) + 2 : 0;
	p = sc_buf_reserve(e->out, 11 + 2 + 5 + st + 6), w = p;
	if (!p)
		return;
	if (in->nbadlinks) {
		p = sc_pb_put_tag(p, O_DROPPED_LINKS, SC_WT_VARINT);
		p = sc_pb_put_varint(p, in->nbadlinks);
	}
	p = sc_pb_put_tag(p, O_STATUS, SC_WT_LEN); /* always present, maybe empty */
	p = sc_pb_put_varint(p, st);
	if (in->error) {
		if (smsg.n)
			p = sc_pb_put_bytes(p, 2, str_ptr(x, &smsg), smsg.n);
		p = sc_pb_put_tag(p, 3, SC_WT_VARINT);
		*p++ = 2; /* STATUS_CODE_ERROR */
	}
	if (in->flags) {
		p = sc_pb_put_tag(p, O_FLAGS, SC_WT_I32);
		p = sc_pb_put_fixed32(p, in->flags);
	}
	e->out->len += (size_t)(p - w);
}

int sc_span_transcode(struct sc_span_ctx *x, const uint8_t *span, size_t len, struct sc_buf *out)
{
	struct span_in in;
	bool oom = false;

	sc_buf_reset(&x->scratch);
	if (scan_span(x, span, len, &in, &oom))
		return SC_SPAN_MALFORMED;
	if (!id_ok(in.tid, in.tidn, 16) || !id_ok(in.sid, in.sidn, 8) ||
	    (in.pidn && !id_ok(in.pid, in.pidn, 8)))
		return SC_SPAN_INVALID;
	if (oom)
		out->overflow = true;
	if (!out->overflow) {
		struct emit e = { x, out, 0, 0, false };
		put_span(&e, &in, span, len);
	}
	return SC_SPAN_OK;
}
