/*
 * queue.h - bounded FIFO of encoded export requests, one per signal.
 *
 * The event loop pushes, one exporter thread takes. The byte limit covers
 * queued requests plus the one in flight; a push that would exceed it
 * evicts the oldest queued requests first (counted as queue_full drops with
 * their item counts), so memory stays bounded during a collector outage
 * and the newest data wins. A request whose delivery was given up for now
 * (retryable failure past the export deadline) goes back to the front.
 */
#ifndef SC_QUEUE_H
#define SC_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/stats.h"

struct sc_request {
	struct sc_request *next;
	uint8_t *body; /* malloc'd, already compressed if gzip is on */
	size_t len;
	size_t items;  /* data points or spans inside */
};

struct sc_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sc_request *head, *tail, *inflight;
	size_t bytes, limit, count;
	bool closed;
	struct sc_stats *st;
	int signal;
};

int sc_queue_init(struct sc_queue *q, size_t limit_bytes, struct sc_stats *st, int signal);
void sc_queue_destroy(struct sc_queue *q); /* frees what is left (not counted) */

/* Takes ownership of body. Returns the number of requests evicted. */
size_t sc_queue_push(struct sc_queue *q, uint8_t *body, size_t len, size_t items);
/* Waits up to timeout_ms for a request; NULL on timeout or when closed and
 * empty. The request stays accounted until sc_queue_done(). */
struct sc_request *sc_queue_take(struct sc_queue *q, long timeout_ms);
/* keep: put it back at the front; else free it. */
void sc_queue_done(struct sc_queue *q, struct sc_request *r, bool keep);
/* Wake the consumer and make take() return NULL once empty. */
void sc_queue_close(struct sc_queue *q);
/* Frees every queued request, counting it as dropped for `reason`. */
void sc_queue_drain_dropped(struct sc_queue *q, enum sc_drop_reason reason);
size_t sc_queue_length(struct sc_queue *q);

#endif
