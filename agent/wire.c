/*
 * wire.c - length-prefixed Frame codec (see wire.h).
 */
#include "agent/wire.h"

#include <stdio.h>
#include <stdlib.h>

int wire_encode(Jobq__Agent__Frame *f, uint8_t **out, size_t *outlen)
{
	size_t n;
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	f->version = JOBQ_AGENT_PROTO_VERSION;
	n = jobq__agent__frame__get_packed_size(f);
	if (n < 1 || n > JOBQ_AGENT_MAX_FRAME)
		return -1;
	buf = malloc(4 + n);
	if (!buf)
		return -1;
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	if (jobq__agent__frame__pack(f, buf + 4) != n) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = 4 + n;
	return 0;
}

enum wire_status wire_decode(const uint8_t *buf, size_t len, size_t *consumed,
			     Jobq__Agent__Frame **out, char *err, size_t errlen)
{
	uint32_t n;
	Jobq__Agent__Frame *f;

	*out = NULL;
	*consumed = 0;
	if (len < 4)
		return WIRE_NEED_MORE;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	if (n < 1 || n > JOBQ_AGENT_MAX_FRAME) {
		snprintf(err, errlen, "frame length %u outside [1, %u]", n, JOBQ_AGENT_MAX_FRAME);
		return WIRE_ERROR;
	}
	if (len - 4 < n)
		return WIRE_NEED_MORE;
	f = jobq__agent__frame__unpack(NULL, n, buf + 4);
	if (!f) {
		snprintf(err, errlen, "frame of %u bytes does not parse as jobq.agent.Frame", n);
		return WIRE_ERROR;
	}
	if (f->version != JOBQ_AGENT_PROTO_VERSION) {
		snprintf(err, errlen, "frame version %u, this reader knows %u", f->version,
			 JOBQ_AGENT_PROTO_VERSION);
		jobq__agent__frame__free_unpacked(f, NULL);
		return WIRE_ERROR;
	}
	*out = f;
	*consumed = 4 + n;
	return WIRE_FRAME;
}
