/* wire.c - protobuf wire-format walking (see wire.h). The limits mirror
 * protobuf-c 1.4's scanner, so a frame this reader takes apart is one that
 * protobuf_c_message_unpack() would have accepted, and the reverse. */
#include "sidecar/wire.h"

int sc_pb_next(const uint8_t **p, const uint8_t *end, struct sc_pb_field *f)
{
	const uint8_t *s = *p;
	size_t rem = (size_t)(end - s), i;

	if (s >= end)
		return 0;
	/* Tag: at most 5 bytes; a first byte without field bits is invalid. */
	if ((s[0] & 0xf8) == 0)
		return -1;
	uint32_t tag = (uint32_t)(s[0] & 0x7f) >> 3;
	size_t used = 1;
	if (s[0] & 0x80) {
		size_t max = rem < 5 ? rem : 5;
		unsigned shift = 4;
		for (used = 1; used < max && (s[used] & 0x80); used++, shift += 7)
			tag |= (uint32_t)(s[used] & 0x7f) << shift;
		if (used == max)
			return -1;
		tag |= (uint32_t)s[used] << shift;
		used++;
	}
	f->number = tag;
	f->wire_type = s[0] & 7;
	s += used;
	rem -= used;
	f->varint = 0;
	f->raw = s;
	switch (f->wire_type) {
	case SC_WT_VARINT: {
		size_t max = rem < 10 ? rem : 10;
		uint64_t v = 0;
		for (i = 0; i < max; i++) {
			v |= (uint64_t)(s[i] & 0x7f) << (7 * i);
			if (!(s[i] & 0x80))
				break;
		}
		if (i == max)
			return -1;
		f->varint = v;
		f->data = s;
		f->len = f->rawlen = i + 1;
		break;
	}
	case SC_WT_I64:
	case SC_WT_I32: {
		size_t n = f->wire_type == SC_WT_I64 ? 8 : 4;
		if (rem < n)
			return -1;
		f->data = s;
		f->len = f->rawlen = n;
		break;
	}
	case SC_WT_LEN: {
		size_t max = rem < 5 ? rem : 5;
		uint32_t n = 0;
		for (i = 0; i < max; i++) {
			n |= (uint32_t)(s[i] & 0x7f) << (7 * i);
			if (!(s[i] & 0x80))
				break;
		}
		if (i == max || n > rem - (i + 1))
			return -1;
		f->data = s + i + 1;
		f->len = n;
		f->rawlen = i + 1 + n;
		break;
	}
	default:
		return -1; /* groups (3, 4) and invalid types */
	}
	*p = s + f->rawlen;
	return 1;
}
