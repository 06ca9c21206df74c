/* wire.c - protobuf wire-format walking (see wire.h). */
#include "sidecar/wire.h"

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1; /* more than 10 bytes */
}

int sc_pb_next(const uint8_t **p, const uint8_t *end, struct sc_pb_field *f)
{
	uint64_t key;
	if (*p >= end)
		return 0;
	if (varint(p, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return -1;
	f->number = (uint32_t)(key >> 3);
	f->wire_type = (int)(key & 7);
	f->varint = 0;
	f->data = NULL;
	f->len = 0;
	switch (f->wire_type) {
	case 0:
		return varint(p, end, &f->varint) ? -1 : 1;
	case 1:
	case 5: {
		size_t n = f->wire_type == 1 ? 8 : 4;
		if ((size_t)(end - *p) < n)
			return -1;
		f->data = *p;
		f->len = n;
		*p += n;
		return 1;
	}
	case 2: {
		uint64_t n;
		if (varint(p, end, &n) || n > (uint64_t)(end - *p))
			return -1;
		f->data = *p;
		f->len = (size_t)n;
		*p += n;
		return 1;
	}
	default:
		return -1; /* groups (3, 4) and invalid types */
	}
}
