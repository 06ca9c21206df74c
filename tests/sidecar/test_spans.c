/* test_spans - the direct span encoder (sidecar/span_wire.c, spans.c)
 * against the protobuf-c path it replaced (tests/sidecar/traces_pbc.c):
 * the same SpanBatch bytes, decoded by protobuf-c and converted/packed the
 * old way, or transcoded directly, must give the same request bytes, the
 * same JSON, the same counts, and be refused by both or neither.
 *
 * The batches are written here at the wire level with a seeded generator,
 * so they hold what an agent could send and protobuf-c's struct API could
 * not: fields in any order and repeated (the last wins), unknown fields,
 * strings with NUL bytes or invalid UTF-8, empty keys and values, bools of
 * every wire type, 10-byte varints, kinds out of range, bad and all-zero
 * ids, long strings (2- and 3-byte lengths), many duplicate attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/otlp_json.h"
#include "sidecar/spans.h"
#include "sidecar/starvation.h"
#include "tests/sidecar/traces_pbc.h"

static struct sc_config cfg;
static struct sc_identity id;

static const char *noenv(void *c, const char *n)
{
	(void)c;
	(void)n;
	return NULL;
}

static int setup(void **st)
{
	(void)st;
	sc_config_load(&cfg, noenv, NULL, NULL, NULL);
	cfg.nresource = 1;
	snprintf(cfg.resource_keys[0], sizeof(cfg.resource_keys[0]), "deployment.environment");
	snprintf(cfg.resource_values[0], sizeof(cfg.resource_values[0]), "test");
	id.cfg = &cfg;
	snprintf(id.host_name, sizeof(id.host_name), "box");
	id.pid = 7;
	return 0;
}

/* Agents in slots 0..2; slot 3 stays unused (a gone agent). */
static struct sc_store *store3(void)
{
	struct sc_store *s = sc_store_new(100);
	const char *ids[3] = { "agent-a", "agent-b", "agent-\xff" };
	for (int i = 0; i < 3; i++) {
		Jobq__Agent__Hello h = JOBQ__AGENT__HELLO__INIT;
		h.agent_id = (char *)ids[i];
		h.host_name = "worker";
		h.target = "pid:9";
		h.agent_version = "v";
		h.agent_pid = (uint32_t)(10 + i);
		h.agent_start_unix_ns = 111;
		assert_int_equal(sc_store_hello(s, &h), i);
	}
	return s;
}

/* ---- a seeded generator of agent wire bytes ---- */

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static int one_in(int n)
{
	return below((size_t)n) == 0;
}

struct w {
	uint8_t *p;
	size_t n, cap;
};

static void w_raw(struct w *w, const void *d, size_t n)
{
	if (w->n + n > w->cap) {
		w->cap = (w->n + n) * 2 + 64;
		w->p = realloc(w->p, w->cap);
		assert_non_null(w->p);
	}
	if (n)
		memcpy(w->p + w->n, d, n);
	w->n += n;
}

static void w_varint(struct w *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	w_raw(w, b, n);
}

static void w_tag(struct w *w, uint32_t f, int wt)
{
	w_varint(w, (uint64_t)f << 3 | (uint64_t)wt);
}

static void w_len(struct w *w, uint32_t f, const void *d, size_t n)
{
	w_tag(w, f, 2);
	w_varint(w, n);
	w_raw(w, d, n);
}

static void w_sub(struct w *w, uint32_t f, struct w *sub)
{
	w_len(w, f, sub->p, sub->n);
	free(sub->p);
	*sub = (struct w){ 0 };
}

static void w_fixed(struct w *w, uint32_t f, uint64_t v, int bytes)
{
	uint8_t b[8];
	w_tag(w, f, bytes == 8 ? 1 : 5);
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_raw(w, b, (size_t)bytes);
}

/* An unknown field of any wire type (some with a multi-byte tag). */
static void w_unknown(struct w *w)
{
	uint32_t f = one_in(4) ? 1000 + (uint32_t)below(100000) : 14 + (uint32_t)below(50);
	switch (below(4)) {
	case 0: w_tag(w, f, 0); w_varint(w, rnd()); break;
	case 1: w_fixed(w, f, rnd(), 8); break;
	case 2: w_len(w, f, "\xff\x00zz", 4); break;
	default: w_fixed(w, f, rnd(), 4); break;
	}
}

/* A bool the way protobuf-c reads it: any wire type. */
static void w_bool(struct w *w, uint32_t f)
{
	static const uint8_t zero_long[] = { 0x80, 0x80, 0x00 }; /* a 3-byte zero */
	switch (below(6)) {
	case 0: w_tag(w, f, 0); w_varint(w, 0); break;
	case 1: w_tag(w, f, 0); w_varint(w, 1); break;
	case 2: w_tag(w, f, 0); w_raw(w, zero_long, sizeof(zero_long)); break;
	case 3: w_fixed(w, f, below(2), 8); break;
	case 4: w_fixed(w, f, 0, 4); break;
	default: w_len(w, f, "", 0); break; /* its length prefix is read as the value */
	}
}

static const char *const words[] = {
	"tenant.id", "job.type", "job.id", "job.queue", "job.priority", "messaging.system",
	"messaging.operation.type", "messaging.destination.name", "messaging.message.id",
	"job.status", "exception.message", "acme", "default", "caf\xc3\xa9", "\xf0\x9d\x84\x9e",
};

/* A string of every kind the agent (or a broken one) could send. */
static size_t gen_str(char *buf, size_t cap)
{
	size_t n = 0;
	switch (below(12)) {
	case 0: return 0;
	case 1: /* raw bytes: NULs, invalid sequences, anything */
		n = below(24);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(one_in(3) ? 0x80 + below(0x80) : below(0x80));
		return n;
	case 2: { /* a word with a NUL inside: C code sees the part before it */
		const char *a = words[below(sizeof(words) / sizeof(*words))];
		n = strlen(a);
		memcpy(buf, a, n);
		buf[n++] = 0;
		memcpy(buf + n, "tail", 4);
		return n + 4;
	}
	case 3: /* truncated multi-byte sequences and surrogates */
		memcpy(buf, "x\xe2\x82\xed\xa0\x80\xf4\x90\x80\x80y\xc0\xaf", 14);
		return 1 + below(13);
	case 4: /* long: 2- or 3-byte lengths downstream */
		n = one_in(8) ? 17000 + below(100) : 120 + below(200);
		if (n > cap)
			n = cap;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(one_in(50) ? 0xff : 'a' + (char)(i % 26));
		return n;
	default: {
		const char *a = words[below(sizeof(words) / sizeof(*words))];
		n = strlen(a);
		memcpy(buf, a, n);
		return n;
	}
	}
}

static void w_str(struct w *w, uint32_t f)
{
	static char buf[20000];
	w_len(w, f, buf, gen_str(buf, sizeof(buf)));
}

/* KeyValue: key 1, string 2, int 3, double 4, bool 5. */
static void gen_kv(struct w *out, uint32_t field, int dupes)
{
	struct w kv = { 0 };
	static const char *const keys[] = { "job.id", "job.queue", "messaging.message.id", "messaging.system",
					    "messaging.operation.type", "messaging.destination.name", "tenant.id",
					    "", "k\xff", "k\xfe", "job.id\0x", "job.queue\0" };
	static const size_t klen[] = { 6, 9, 20, 16, 24, 26, 9, 0, 2, 2, 8, 10 };
	int nkeys = one_in(10) ? 0 : one_in(10) ? 2 : 1;
	for (int i = 0; i < nkeys; i++) {
		if (dupes && one_in(2)) {
			char k[8];
			int l = snprintf(k, sizeof(k), "d%d", (int)below((size_t)dupes));
			w_len(&kv, 1, k, (size_t)l);
		} else if (one_in(4)) {
			w_str(&kv, 1);
		} else {
			size_t j = below(sizeof(keys) / sizeof(*keys));
			w_len(&kv, 1, keys[j], klen[j]);
		}
	}
	int nvals = one_in(10) ? 0 : one_in(8) ? 2 : 1;
	for (int i = 0; i < nvals; i++) {
		switch (below(5)) {
		case 0: case 1: w_str(&kv, 2); break;
		case 2: /* int: small, negative (10-byte varint), huge */
			w_tag(&kv, 3, 0);
			w_varint(&kv, one_in(3) ? (uint64_t)-(int64_t)below(1000000) : one_in(2) ? below(100000) : rnd());
			break;
		case 3: w_fixed(&kv, 4, one_in(4) ? 0x8000000000000000ull : rnd(), 8); break; /* -0.0 too */
		default: w_bool(&kv, 5); break;
		}
	}
	if (one_in(8))
		w_unknown(&kv);
	w_sub(out, field, &kv);
}

static void w_id(struct w *w, uint32_t f, size_t len)
{
	uint8_t id[17] = { 0 };
	int kind = (int)below(24); /* 0-3: missing, short, long, all zero */
	size_t n = kind == 0 ? 0 : kind == 1 ? len - 1 : kind == 2 ? len + 1 : len;
	if (kind != 3) /* 3: all zero */
		for (size_t i = 0; i < n; i++)
			id[i] = (uint8_t)rnd();
	w_len(w, f, id, n);
}

static void gen_event(struct w *out)
{
	struct w ev = { 0 };
	int n = (int)below(4);
	for (int i = 0; i < n; i++)
		gen_kv(&ev, 3, 0);
	if (!one_in(4))
		w_str(&ev, 1);
	if (!one_in(4)) {
		w_tag(&ev, 2, 0);
		w_varint(&ev, one_in(5) ? 0 : rnd());
	}
	if (one_in(6))
		w_str(&ev, 1); /* a second name: the last wins */
	w_sub(out, 9, &ev);
}

static void gen_link(struct w *out)
{
	struct w l = { 0 };
	w_id(&l, 1, 16);
	w_id(&l, 2, 8);
	if (!one_in(3)) {
		w_tag(&l, 3, 0);
		w_varint(&l, one_in(4) ? rnd() : below(3));
	}
	if (one_in(8))
		w_unknown(&l);
	w_sub(out, 10, &l);
}

/* One agent Span, its fields in a random order, some twice. */
static void gen_span(struct w *batch)
{
	struct w sp = { 0 };
	int many = one_in(20); /* enough attributes for the hashed duplicate check */
	int nattrs = many ? 40 + (int)below(80) : (int)below(12);
	int order[32], n = 0;
	for (int f = 1; f <= 13; f++) {
		order[n++] = f;
		if (one_in(12))
			order[n++] = f; /* repeated singular field */
	}
	for (int i = n - 1; i > 0; i--) {
		int j = (int)below((size_t)i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int i = 0; i < n; i++) {
		switch (order[i]) {
		case 1: if (!one_in(30)) w_id(&sp, 1, 16); break;
		case 2: if (!one_in(30)) w_id(&sp, 2, 8); break;
		case 3: if (one_in(3)) w_id(&sp, 3, 8); break;
		case 4: if (!one_in(10)) {
			if (one_in(3))
				w_str(&sp, 4);
			else
				w_len(&sp, 4, one_in(2) ? "job.enqueue" : "job.process", 11);
		} break;
		case 5: {
			static const uint64_t kinds[] = { 0, 1, 2, 3, 4, 5, 4, 5, 6, (uint64_t)-1, (1ull << 32) + 4 };
			w_tag(&sp, 5, 0);
			w_varint(&sp, kinds[below(sizeof(kinds) / sizeof(*kinds))]);
			break;
		}
		case 6: case 7:
			if (!one_in(8)) {
				w_tag(&sp, (uint32_t)order[i], 0);
				w_varint(&sp, one_in(6) ? 0 : rnd() >> below(40));
			}
			break;
		case 8:
			for (int k = 0; k < nattrs; k++)
				gen_kv(&sp, 8, many ? 30 : one_in(3) ? 3 : 0);
			break;
		case 9: if (one_in(4)) for (int k = (int)below(3) + 1; k > 0; k--) gen_event(&sp); break;
		case 10: if (one_in(2)) for (int k = (int)below(3) + 1; k > 0; k--) gen_link(&sp); break;
		case 11: if (one_in(3)) w_bool(&sp, 11); break;
		case 12: if (one_in(3)) w_str(&sp, 12); break;
		case 13:
			if (!one_in(3)) {
				w_tag(&sp, 13, 0);
				w_varint(&sp, one_in(3) ? rnd() : 1);
			}
			break;
		}
		if (one_in(40))
			w_unknown(&sp);
	}
	w_sub(batch, 1, &sp);
}

static void gen_batch(struct w *b, int nspans)
{
	for (int i = 0; i < nspans; i++) {
		gen_span(b);
		if (one_in(30)) {
			w_tag(b, 2, 0);
			w_varint(b, below(1000)); /* dropped_spans, anywhere */
		}
		if (one_in(30))
			w_unknown(b);
	}
}

/* ---- the comparison ---- */

static void dump_diff(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t i = 0;
	while (i < an && i < bn && a[i] == b[i])
		i++;
	fprintf(stderr, "first difference at byte %zu (lengths %zu / %zu)\n", i, an, bn);
	for (size_t k = i > 16 ? i - 16 : 0; k < i + 16; k++)
		fprintf(stderr, "  %5zu: %02x %02x\n", k, k < an ? a[k] : 0, k < bn ? b[k] : 0);
}

struct batch_bytes {
	int slot;
	uint8_t *p;
	size_t n;
};

/* Both paths over the same batches (and extra spans); everything must
 * match. Returns the number of spans exported. */
static size_t compare(struct sc_store *s, struct batch_bytes *bb, size_t nb, sc_otlp_span **extra,
		      size_t nextra, size_t limit)
{
	/* Reference: protobuf-c decode, tree, pack. */
	struct sc_arena a;
	sc_arena_init(&a, 0);
	ProtobufCAllocator alloc;
	sc_arena_pb_allocator(&a, &alloc);
	struct sc_pbc_batch *pb = calloc(nb ? nb : 1, sizeof(*pb));
	size_t npb = 0, pending = 0, refused_ref = 0;
	assert_non_null(pb);
	for (size_t i = 0; i < nb; i++) {
		Jobq__Agent__SpanBatch *d = jobq__agent__span_batch__unpack(&alloc, bb[i].n, bb[i].p);
		assert_non_null(d);
		/* The old buffer's rule: a batch past the limit is refused whole. */
		if (pending + d->n_spans > limit) {
			refused_ref += d->n_spans;
			continue;
		}
		pending += d->n_spans;
		pb[npb++] = (struct sc_pbc_batch){ bb[i].slot, d };
	}
	size_t ref_spans, ref_invalid;
	sc_traces_req *req = sc_traces_pbc(&a, pb, npb, s, &id, extra, nextra, &ref_spans, &ref_invalid);
	assert_non_null(req);
	size_t ref_len = protobuf_c_message_get_packed_size(&req->base);
	uint8_t *ref = malloc(ref_len + 1);
	assert_non_null(ref);
	protobuf_c_message_pack(&req->base, ref);

	/* Direct path. */
	struct sc_spanbuf sb;
	size_t refused_new = 0;
	sc_spanbuf_init(&sb, limit, 512);
	for (size_t i = 0; i < nb; i++) {
		size_t refused;
		uint64_t dropped;
		assert_int_equal(sc_spanbuf_add(&sb, bb[i].slot, bb[i].p, bb[i].n, &refused, &dropped), 0);
		refused_new += refused;
	}
	uint8_t *got;
	size_t got_len;
	assert_int_equal(sc_spanbuf_encode(&sb, &a, s, &id, extra, nextra, &got, &got_len), 0);
	if (got_len != ref_len || memcmp(got, ref, ref_len))
		dump_diff(ref, ref_len, got, got_len);
	assert_int_equal(got_len, ref_len);
	assert_memory_equal(got, ref, ref_len);
	assert_int_equal(sb.nspans + nextra, ref_spans);
	assert_int_equal(sb.ninvalid, ref_invalid);
	assert_int_equal(refused_new, refused_ref);

	/* JSON (file output, http/json) is made from the bytes decoded. */
	sc_traces_req *back = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		&alloc, got_len, got);
	assert_non_null(back);
	struct sc_buf j1, j2;
	sc_buf_init(&j1, 0);
	sc_buf_init(&j2, 0);
	assert_int_equal(sc_otlp_json(&req->base, &j1), 0);
	assert_int_equal(sc_otlp_json(&back->base, &j2), 0);
	assert_int_equal(j1.len, j2.len);
	assert_memory_equal(j1.data, j2.data, j1.len);

	sc_buf_free(&j1);
	sc_buf_free(&j2);
	free(got);
	free(ref);
	free(pb);
	sc_spanbuf_free(&sb);
	sc_arena_free(&a);
	return ref_spans;
}

static void free_batches(struct batch_bytes *bb, size_t nb)
{
	for (size_t i = 0; i < nb; i++)
		free(bb[i].p);
}

static void test_random_batches_match_protobuf_c(void **st)
{
	(void)st;
	struct sc_store *s = store3();
	size_t exported = 0;
	for (int iter = 0; iter < 400; iter++) {
		struct batch_bytes bb[4];
		size_t nb = 1 + below(4);
		for (size_t i = 0; i < nb; i++) {
			struct w w = { 0 };
			gen_batch(&w, (int)below(iter % 10 == 0 ? 40 : 8));
			bb[i] = (struct batch_bytes){ (int)below(4), w.p, w.n };
		}
		struct sc_arena a;
		sc_arena_init(&a, 0);
		sc_otlp_span *check = NULL;
		if (one_in(4)) {
			static const uint8_t tid[16] = { 1, 2, 3 }, sid[8] = { 4 };
			check = sc_starvation_span(&a, s, 1, 10, 20, tid, sid);
			assert_non_null(check);
		}
		exported += compare(s, bb, nb, check ? &check : NULL, check ? 1 : 0, iter % 7 ? 100000 : 10);
		free_batches(bb, nb);
		sc_arena_free(&a);
	}
	assert_true(exported > 2000); /* the generator does produce valid spans */
	sc_store_free(s);
}

/* Spans shaped like the real agent's, in frames like its frames. */
static void test_agent_like_spans(void **st)
{
	(void)st;
	struct sc_store *s = store3();
	struct w w = { 0 };
	for (int i = 0; i < 300; i++) {
		struct w sp = { 0 }, kv = { 0 }, l = { 0 };
		uint8_t tid[16], sid[8];
		for (int k = 0; k < 16; k++)
			tid[k] = (uint8_t)(i + k + 1);
		for (int k = 0; k < 8; k++)
			sid[k] = (uint8_t)(i * 3 + k + 1);
		w_len(&sp, 1, tid, 16);
		w_len(&sp, 2, sid, 8);
		w_len(&sp, 4, i % 2 ? "job.process" : "job.enqueue", 11);
		w_tag(&sp, 5, 0);
		w_varint(&sp, i % 2 ? 5 : 4);
		w_tag(&sp, 6, 0);
		w_varint(&sp, 1700000000000000000ull + (uint64_t)i);
		w_tag(&sp, 7, 0);
		w_varint(&sp, 1700000000000500000ull + (uint64_t)i);
		w_len(&kv, 1, "tenant.id", 9);
		w_len(&kv, 2, "tenant-7", 8);
		w_sub(&sp, 8, &kv);
		w_len(&kv, 1, "job.id", 6);
		w_tag(&kv, 3, 0);
		w_varint(&kv, (uint64_t)(1000 + i));
		w_sub(&sp, 8, &kv);
		w_len(&kv, 1, "messaging.message.id", 20);
		w_tag(&kv, 3, 0);
		w_varint(&kv, (uint64_t)(1000 + i));
		w_sub(&sp, 8, &kv);
		w_len(&kv, 1, "job.queue", 9);
		w_len(&kv, 2, "default", 7);
		w_sub(&sp, 8, &kv);
		w_len(&kv, 1, "job.wait_time_ms", 16);
		w_fixed(&kv, 4, 0x3ff8000000000000ull, 8); /* 1.5 */
		w_sub(&sp, 8, &kv);
		if (i % 2) {
			w_len(&l, 1, tid, 16);
			w_len(&l, 2, sid, 8);
			w_tag(&l, 3, 0);
			w_varint(&l, 1);
			w_sub(&sp, 10, &l);
		}
		if (i % 10 == 9) {
			w_tag(&sp, 11, 0);
			w_varint(&sp, 1);
			w_len(&sp, 12, "boom", 4);
		}
		w_tag(&sp, 13, 0);
		w_varint(&sp, 1);
		w_sub(&w, 1, &sp);
	}
	struct batch_bytes bb = { 0, w.p, w.n };
	assert_int_equal(compare(s, &bb, 1, NULL, 0, 2048), 300);
	free(w.p);
	sc_store_free(s);
}

/* Damaged batches: protobuf-c and the direct path refuse the same ones,
 * and agree on the rest. */
static void test_damaged_batches_refused_alike(void **st)
{
	(void)st;
	struct sc_store *s = store3();
	int refused = 0, taken = 0;
	for (int iter = 0; iter < 3000; iter++) {
		struct w w = { 0 };
		gen_batch(&w, 1 + (int)below(3));
		int cuts = 1 + (int)below(3);
		for (int k = 0; k < cuts && w.n; k++) {
			size_t at = below(w.n);
			switch (below(3)) {
			case 0: w.p[at] ^= (uint8_t)(1u << below(8)); break;
			case 1: w.p[at] = (uint8_t)rnd(); break;
			default: w.n = at; break; /* truncated */
			}
		}
		Jobq__Agent__SpanBatch *d = jobq__agent__span_batch__unpack(NULL, w.n, w.p);
		struct sc_spanbuf sb;
		size_t r;
		uint64_t dr;
		sc_spanbuf_init(&sb, 100000, 512);
		int rc = sc_spanbuf_add(&sb, 0, w.p, w.n, &r, &dr);
		if (!d) {
			assert_int_equal(rc, -1);
			assert_int_equal(sb.nspans, 0);
			assert_int_equal(sb.bytes.len, 0);
			refused++;
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(dr, d->dropped_spans);
			protobuf_c_message_free_unpacked(&d->base, NULL);
			struct batch_bytes bb = { 0, w.p, w.n };
			compare(s, &bb, 1, NULL, 0, 100000);
			taken++;
		}
		sc_spanbuf_free(&sb);
		free(w.p);
	}
	assert_true(refused > 300 && taken > 300);
	sc_store_free(s);
}

/* Undo: what was pending before a refused frame is exactly what stays. */
static void test_rollback_and_limits(void **st)
{
	(void)st;
	struct sc_store *s = store3();
	struct w a = { 0 }, b = { 0 };
	rng = 12345;
	gen_batch(&a, 20);
	gen_batch(&b, 20);
	struct sc_spanbuf sb;
	size_t r;
	uint64_t dr;
	sc_spanbuf_init(&sb, 100000, 512);
	assert_int_equal(sc_spanbuf_add(&sb, 0, a.p, a.n, &r, &dr), 0);
	uint8_t *before;
	size_t before_len;
	struct sc_arena ar;
	sc_arena_init(&ar, 0);
	assert_int_equal(sc_spanbuf_encode(&sb, &ar, s, &id, NULL, 0, &before, &before_len), 0);
	struct sc_spanbuf_mark m = sc_spanbuf_mark(&sb);
	assert_int_equal(sc_spanbuf_add(&sb, 1, b.p, b.n, &r, &dr), 0);
	sc_spanbuf_rollback(&sb, m);
	uint8_t *after;
	size_t after_len;
	assert_int_equal(sc_spanbuf_encode(&sb, &ar, s, &id, NULL, 0, &after, &after_len), 0);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);

	/* A batch that does not fit the span limit is refused whole. */
	struct sc_spanbuf small;
	sc_spanbuf_init(&small, 25, 512);
	assert_int_equal(sc_spanbuf_add(&small, 0, a.p, a.n, &r, &dr), 0);
	assert_int_equal(r, 0);
	size_t kept = small.nspans;
	assert_int_equal(sc_spanbuf_add(&small, 0, b.p, b.n, &r, &dr), 0);
	assert_int_equal(r, 20);
	assert_int_equal(small.nspans, kept);
	/* A malformed batch leaves nothing behind. */
	uint8_t bad[] = { 0x0a, 0x05, 0x0a, 0x10 };
	assert_int_equal(sc_spanbuf_add(&small, 0, bad, sizeof(bad), &r, &dr), -1);
	assert_int_equal(small.nspans, kept);
	sc_spanbuf_free(&small);

	/* Due at `batch` spans. */
	struct sc_spanbuf due;
	sc_spanbuf_init(&due, 100000, 5);
	assert_false(sc_spanbuf_due(&due));
	assert_int_equal(sc_spanbuf_add(&due, 0, a.p, a.n, &r, &dr), 0);
	assert_true(due.nspans < 5 || sc_spanbuf_due(&due));
	sc_spanbuf_free(&due);

	sc_spanbuf_free(&sb);
	sc_arena_free(&ar);
	free(a.p);
	free(b.p);
	sc_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_like_spans),
		cmocka_unit_test(test_random_batches_match_protobuf_c),
		cmocka_unit_test(test_damaged_batches_refused_alike),
		cmocka_unit_test(test_rollback_and_limits),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
