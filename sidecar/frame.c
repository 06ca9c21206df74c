/* frame.c - agent socket frame reader (see frame.h). */
#include "sidecar/frame.h"

#include <stdlib.h>
#include <string.h>

#define READ_CHUNK 65536
#define SHRINK_ABOVE (1u << 20)

void sc_frame_reader_init(struct sc_frame_reader *r, size_t max_frame)
{
	memset(r, 0, sizeof(*r));
	r->max_frame = max_frame;
}

void sc_frame_reader_free(struct sc_frame_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Drop the frame handed out last, so its bytes can be reused. */
static void compact(struct sc_frame_reader *r)
{
	if (r->consumed) {
		memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
		r->len -= r->consumed;
		r->consumed = 0;
	}
}

uint8_t *sc_frame_space(struct sc_frame_reader *r, size_t *avail)
{
	compact(r);
	/* Read no further than the end of the current frame once its length is
	 * known, so the buffer never exceeds 4 + max_frame. */
	size_t want = READ_CHUNK;
	if (r->len >= 4) {
		size_t need = 4 + (size_t)be32(r->buf);
		if (need > 4 + r->max_frame)
			need = 4 + r->max_frame;
		want = need > r->len ? need - r->len : 1;
		if (want < READ_CHUNK && r->len + READ_CHUNK <= 4 + r->max_frame)
			want = READ_CHUNK;
	}
	if (r->len + want > r->cap) {
		size_t cap = r->len + want;
		if (cap > 4 + r->max_frame)
			cap = 4 + r->max_frame;
		if (cap <= r->len)
			cap = r->len + 1;
		uint8_t *p = realloc(r->buf, cap);
		if (!p)
			return NULL;
		r->buf = p;
		r->cap = cap;
	}
	*avail = r->cap - r->len;
	return r->buf + r->len;
}

void sc_frame_commit(struct sc_frame_reader *r, size_t n)
{
	r->len += n;
}

int sc_frame_next(struct sc_frame_reader *r, const uint8_t **frame, size_t *n)
{
	compact(r);
	if (r->len < 4)
		return SC_FRAME_NEED_MORE;
	uint32_t flen = be32(r->buf);
	if (flen == 0 || flen > r->max_frame)
		return SC_FRAME_ERROR;
	if (r->len < 4 + (size_t)flen)
		return SC_FRAME_NEED_MORE;
	*frame = r->buf + 4;
	*n = flen;
	r->consumed = 4 + (size_t)flen;
	return SC_FRAME_READY;
}

void sc_frame_shrink(struct sc_frame_reader *r)
{
	compact(r);
	/* After a big frame, do not keep its buffer for the connection's life. */
	if (r->cap > SHRINK_ABOVE && r->len <= READ_CHUNK) {
		uint8_t *p = realloc(r->buf, READ_CHUNK);
		if (p) {
			r->buf = p;
			r->cap = READ_CHUNK;
		}
	}
}
