/* spans.c - pending spans as OTLP bytes, and the traces request (see spans.h). */
#include "sidecar/spans.h"

#include <stdlib.h>
#include <string.h>

#include "sidecar/wire.h"

#define KEEP_BYTES (4u << 20) /* buffers above this are given back after an export */

void sc_spanbuf_init(struct sc_spanbuf *b, size_t limit, size_t batch)
{
	memset(b, 0, sizeof(*b));
	sc_buf_init(&b->bytes, SC_SPANS_MAX_BYTES);
	sc_span_ctx_init(&b->ctx);
	b->limit = limit;
	b->batch = batch;
}

void sc_spanbuf_clear(struct sc_spanbuf *b)
{
	sc_buf_reset(&b->bytes);
	b->nspans = 0;
	b->ninvalid = 0;
	/* After a burst of big spans, do not keep its memory. */
	if (b->bytes.cap > KEEP_BYTES)
		sc_buf_free(&b->bytes);
	if (b->refs_cap * sizeof(*b->refs) > KEEP_BYTES) {
		free(b->refs);
		b->refs = NULL;
		b->refs_cap = 0;
	}
	if (b->ctx.scratch.cap > KEEP_BYTES || b->ctx.kvs_cap > 4096 || b->ctx.keys_cap > 4096) {
		sc_span_ctx_free(&b->ctx);
		sc_span_ctx_init(&b->ctx);
	}
}

void sc_spanbuf_free(struct sc_spanbuf *b)
{
	sc_buf_free(&b->bytes);
	free(b->refs);
	sc_span_ctx_free(&b->ctx);
	memset(b, 0, sizeof(*b));
}

bool sc_spanbuf_due(const struct sc_spanbuf *b)
{
	return b->nspans >= b->batch || b->bytes.len >= SC_SPANS_FLUSH_BYTES;
}

struct sc_spanbuf_mark sc_spanbuf_mark(const struct sc_spanbuf *b)
{
	return (struct sc_spanbuf_mark){ b->nspans, b->bytes.len, b->ninvalid };
}

void sc_spanbuf_rollback(struct sc_spanbuf *b, struct sc_spanbuf_mark m)
{
	b->nspans = m.nspans;
	b->bytes.len = m.bytes;
	b->bytes.overflow = false;
	b->ninvalid = m.ninvalid;
}

/* Room for one more span reference, within the span limit. */
static bool refs_room(struct sc_spanbuf *b)
{
	if (b->nspans < b->refs_cap)
		return true;
	if (b->nspans >= b->limit)
		return false;
	size_t cap = b->refs_cap ? b->refs_cap * 2 : 256;
	if (cap > b->limit)
		cap = b->limit;
	struct sc_span_ref *r = realloc(b->refs, cap * sizeof(*r));
	if (!r)
		return false;
	b->refs = r;
	b->refs_cap = cap;
	return true;
}

int sc_spanbuf_add(struct sc_spanbuf *b, int slot, const uint8_t *batch, size_t len, size_t *refused,
		   uint64_t *dropped)
{
	struct sc_spanbuf_mark m = sc_spanbuf_mark(b);
	const uint8_t *p = batch, *end = batch + len;
	struct sc_pb_field f;
	size_t n = 0;
	bool full = false;
	int r;

	*refused = 0;
	*dropped = 0;
	/* One pass: each span is checked and written; anything protobuf-c
	 * would refuse undoes the whole batch. */
	while ((r = sc_pb_next(&p, end, &f)) == 1) {
		if (f.number == 2) { /* dropped_spans */
			if (f.wire_type != SC_WT_VARINT)
				break;
			*dropped = f.varint;
			continue;
		}
		if (f.number != 1)
			continue; /* unknown field */
		if (f.wire_type != SC_WT_LEN)
			break;
		n++;
		size_t off = b->bytes.len;
		int v = sc_span_transcode(&b->ctx, f.data, f.len, &b->bytes);
		if (v == SC_SPAN_MALFORMED)
			break;
		if (v == SC_SPAN_INVALID) {
			b->ninvalid++;
			continue;
		}
		if (full || b->bytes.overflow || !refs_room(b)) {
			/* No room: keep checking the rest, keep nothing. */
			full = true;
			b->bytes.len = off;
			b->bytes.overflow = false;
			continue;
		}
		b->refs[b->nspans++] = (struct sc_span_ref){ (uint32_t)off, (uint32_t)(b->bytes.len - off), slot };
	}
	if (r != 0) {
		sc_spanbuf_rollback(b, m);
		return -1;
	}
	/* As before: a batch that would pass the span limit is refused whole
	 * (the spans with bad ids, dropped at export, count until then). */
	if (full || m.nspans + m.ninvalid + n > b->limit) {
		sc_spanbuf_rollback(b, m);
		*refused = n;
	}
	return 0;
}

/* ---- the request ---- */

/* InstrumentationScope{name: SC_SCOPE_NAME, version: SC_VERSION}. */
static size_t scope_len(void)
{
	return 2 + strlen(SC_SCOPE_NAME) + 2 + strlen(SC_VERSION);
}

static uint8_t *put_scope(uint8_t *p)
{
	p = sc_pb_put_bytes(p, 1, SC_SCOPE_NAME, strlen(SC_SCOPE_NAME));
	return sc_pb_put_bytes(p, 2, SC_VERSION, strlen(SC_VERSION));
}

/* One ResourceSpans: its resource and the sizes around its spans. */
struct rs_plan {
	int slot; /* -1: the extra spans */
	const ProtobufCMessage *res;
	size_t res_len, spans_len, ss_len, rs_len;
};

static size_t field_len(size_t n)
{
	return 1 + sc_pb_varint_len(n) + n; /* every field number here is < 16 */
}

int sc_spanbuf_encode(const struct sc_spanbuf *b, struct sc_arena *a, const struct sc_store *s,
		      const struct sc_identity *id, sc_otlp_span *const *extra, size_t nextra, uint8_t **body,
		      size_t *len)
{
	size_t spans_len[SC_MAX_AGENTS] = { 0 };
	struct rs_plan plan[SC_MAX_AGENTS + 1];
	size_t np = 0, total = 0;

	*body = NULL;
	*len = 0;
	for (size_t i = 0; i < b->nspans; i++) {
		const struct sc_span_ref *r = &b->refs[i];
		if (r->slot < 0 || r->slot >= SC_MAX_AGENTS)
			return -1; /* the server keeps spans of known agents only */
		spans_len[r->slot] += field_len(r->len);
	}
	for (int slot = -1; slot < SC_MAX_AGENTS; slot++) {
		size_t sl = 0;
		if (slot < 0) {
			if (!nextra)
				continue;
			for (size_t i = 0; i < nextra; i++)
				sl += field_len(protobuf_c_message_get_packed_size(&extra[i]->base));
		} else if (!(sl = spans_len[slot])) {
			continue;
		}
		/* A gone agent's spans go under the sidecar's resource. */
		const struct sc_agent *ag = slot >= 0 && s->agents[slot].used ? &s->agents[slot] : NULL;
		Opentelemetry__Proto__Resource__V1__Resource *res = sc_otlp_resource(a, id, ag);
		if (!res)
			return -1;
		struct rs_plan *pl = &plan[np++];
		pl->slot = slot;
		pl->res = &res->base;
		pl->res_len = protobuf_c_message_get_packed_size(pl->res);
		pl->spans_len = sl;
		pl->ss_len = field_len(scope_len()) + sl;
		pl->rs_len = field_len(pl->res_len) + field_len(pl->ss_len);
		total += field_len(pl->rs_len);
	}
	/* The extra spans come last, after the agents in slot order. */
	if (np && plan[0].slot < 0) {
		struct rs_plan x = plan[0];
		memmove(plan, plan + 1, (np - 1) * sizeof(*plan));
		plan[np - 1] = x;
	}

	uint8_t *out = malloc(total ? total : 1), *p = out;
	if (!out)
		return -1;
	for (size_t k = 0; k < np; k++) {
		const struct rs_plan *pl = &plan[k];
		p = sc_pb_put_tag(p, 1, SC_WT_LEN); /* ExportTraceServiceRequest.resource_spans */
		p = sc_pb_put_varint(p, pl->rs_len);
		p = sc_pb_put_tag(p, 1, SC_WT_LEN); /* ResourceSpans.resource */
		p = sc_pb_put_varint(p, pl->res_len);
		p += protobuf_c_message_pack(pl->res, p);
		p = sc_pb_put_tag(p, 2, SC_WT_LEN); /* ResourceSpans.scope_spans */
		p = sc_pb_put_varint(p, pl->ss_len);
		p = sc_pb_put_tag(p, 1, SC_WT_LEN); /* ScopeSpans.scope */
		p = sc_pb_put_varint(p, scope_len());
		p = put_scope(p);
		if (pl->slot < 0) {
			for (size_t i = 0; i < nextra; i++) {
				p = sc_pb_put_tag(p, 2, SC_WT_LEN); /* ScopeSpans.spans */
				p = sc_pb_put_varint(p, protobuf_c_message_get_packed_size(&extra[i]->base));
				p += protobuf_c_message_pack(&extra[i]->base, p);
			}
			continue;
		}
		for (size_t i = 0; i < b->nspans; i++) {
			const struct sc_span_ref *r = &b->refs[i];
			if (r->slot == pl->slot)
				p = sc_pb_put_bytes(p, 2, b->bytes.data + r->off, r->len);
		}
	}
	if ((size_t)(p - out) != total) { /* a sizing bug: never send it */
		free(out);
		return -1;
	}
	*body = out;
	*len = total;
	return 0;
}
