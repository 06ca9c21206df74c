/*
 * frame.h - incremental reader of the agent socket framing.
 *
 * A frame is a 4-byte big-endian length N (1 <= N <= max) and N bytes of a
 * serialized jobq.agent.Frame (proto/jobq_agent.proto). The reader owns one
 * buffer that grows to at most 4 + max bytes, so a client cannot make the
 * sidecar allocate more than that per connection. No I/O here: the server
 * reads into sc_frame_space() (only after next() said NEED_MORE)
 * and calls sc_frame_commit().
 */
#ifndef SC_FRAME_H
#define SC_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct sc_frame_reader {
	uint8_t *buf;
	size_t len, cap, max_frame;
	size_t consumed; /* bytes of the frame returned by the last next() */
};

enum { SC_FRAME_ERROR = -1, SC_FRAME_NEED_MORE = 0, SC_FRAME_READY = 1 };

void sc_frame_reader_init(struct sc_frame_reader *r, size_t max_frame);
void sc_frame_reader_free(struct sc_frame_reader *r);
/* Room to read into (at least 1 byte unless an error); NULL on ENOMEM. */
uint8_t *sc_frame_space(struct sc_frame_reader *r, size_t *avail);
void sc_frame_commit(struct sc_frame_reader *r, size_t n);
/* SC_FRAME_READY sets *frame and *n (valid until the next call); SC_FRAME_ERROR
 * on a length of 0 or above max (the connection must be closed). */
int sc_frame_next(struct sc_frame_reader *r, const uint8_t **frame, size_t *n);
/* Frees a large buffer once no big frame is pending (call after next()
 * returned NEED_MORE). */
void sc_frame_shrink(struct sc_frame_reader *r);

#endif
