/*
 * wire.h - the agent -> sidecar framing, exactly as the header comment of
 * proto/jobq_agent.proto states it: a 4-byte big-endian length N
 * (1 <= N <= JOBQ_AGENT_MAX_FRAME) then N bytes of a serialized Frame.
 * Pure functions over buffers; the sidecar can reuse the reader.
 */
#ifndef JOBQ_AGENT_WIRE_H
#define JOBQ_AGENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/jobq_agent.pb-c.h"

#define JOBQ_AGENT_PROTO_VERSION 1
#define JOBQ_AGENT_MAX_FRAME (16u << 20)

/*
 * Serializes f (its version is set to JOBQ_AGENT_PROTO_VERSION) with its
 * length prefix into a malloc'd buffer. Returns 0, or -1 when the frame
 * would exceed JOBQ_AGENT_MAX_FRAME or memory ran out.
 */
int wire_encode(Jobq__Agent__Frame *f, uint8_t **out, size_t *outlen);

enum wire_status {
	WIRE_NEED_MORE = 0, /* buf holds less than one whole frame */
	WIRE_FRAME = 1,     /* *out is a frame; *consumed bytes used */
	WIRE_ERROR = -1,    /* bad length, unparsable or unknown version: close */
};

/*
 * Decodes the first frame of buf[0..len). On WIRE_FRAME the caller frees
 * *out with jobq__agent__frame__free_unpacked(*out, NULL). On WIRE_ERROR
 * err says why.
 */
enum wire_status wire_decode(const uint8_t *buf, size_t len, size_t *consumed,
			     Jobq__Agent__Frame **out, char *err, size_t errlen);

#endif
