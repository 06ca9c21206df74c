/* queue.c - bounded request FIFO (see queue.h). */
#include "sidecar/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int sc_queue_init(struct sc_queue *q, size_t limit, struct sc_stats *st, int signal)
{
	q->head = q->tail = q->inflight = NULL;
	q->bytes = q->count = 0;
	q->limit = limit;
	q->closed = false;
	q->st = st;
	q->signal = signal;
	if (pthread_mutex_init(&q->mu, NULL))
		return -1;
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&q->cv, &ca)) {
		pthread_mutex_destroy(&q->mu);
		return -1;
	}
	pthread_condattr_destroy(&ca);
	atomic_store(&st->queue_limit[signal], limit);
	return 0;
}

static void req_free(struct sc_request *r)
{
	free(r->body);
	free(r);
}

void sc_queue_destroy(struct sc_queue *q)
{
	struct sc_request *r = q->head;
	while (r) {
		struct sc_request *next = r->next;
		req_free(r);
		r = next;
	}
	q->head = q->tail = NULL;
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

static void publish(struct sc_queue *q)
{
	atomic_store(&q->st->queue_bytes[q->signal], q->bytes);
}

static struct sc_request *pop_head(struct sc_queue *q)
{
	struct sc_request *r = q->head;
	if (r) {
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		q->count--;
	}
	return r;
}

size_t sc_queue_push(struct sc_queue *q, uint8_t *body, size_t len, size_t items)
{
	size_t evicted = 0;
	struct sc_request *r = malloc(sizeof(*r));
	if (!r) {
		free(body);
		atomic_fetch_add(&q->st->dropped[q->signal][SC_DROP_ENCODE], items);
		return 0;
	}
	r->next = NULL;
	r->body = body;
	r->len = len;
	r->items = items;

	pthread_mutex_lock(&q->mu);
	while (q->bytes + len > q->limit && q->head) {
		struct sc_request *old = pop_head(q);
		q->bytes -= old->len;
		atomic_fetch_add(&q->st->dropped[q->signal][SC_DROP_QUEUE_FULL], old->items);
		req_free(old);
		evicted++;
	}
	if (q->bytes + len > q->limit) {
		/* Alone it is still too big (or the in-flight one fills it). */
		pthread_mutex_unlock(&q->mu);
		atomic_fetch_add(&q->st->dropped[q->signal][SC_DROP_QUEUE_FULL], items);
		req_free(r);
		return evicted + 1;
	}
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->bytes += len;
	q->count++;
	publish(q);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return evicted;
}

struct sc_request *sc_queue_take(struct sc_queue *q, long timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->mu);
	while (!q->head && !q->closed) {
		if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT)
			break;
	}
	struct sc_request *r = pop_head(q);
	q->inflight = r;
	pthread_mutex_unlock(&q->mu);
	return r;
}

void sc_queue_done(struct sc_queue *q, struct sc_request *r, bool keep)
{
	pthread_mutex_lock(&q->mu);
	q->inflight = NULL;
	if (keep) {
		r->next = q->head;
		q->head = r;
		if (!q->tail)
			q->tail = r;
		q->count++;
	} else {
		q->bytes -= r->len;
		req_free(r);
	}
	publish(q);
	pthread_mutex_unlock(&q->mu);
}

void sc_queue_close(struct sc_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void sc_queue_drain_dropped(struct sc_queue *q, enum sc_drop_reason reason)
{
	pthread_mutex_lock(&q->mu);
	struct sc_request *r;
	while ((r = pop_head(q))) {
		q->bytes -= r->len;
		atomic_fetch_add(&q->st->dropped[q->signal][reason], r->items);
		req_free(r);
	}
	publish(q);
	pthread_mutex_unlock(&q->mu);
}

size_t sc_queue_length(struct sc_queue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->count;
	pthread_mutex_unlock(&q->mu);
	return n;
}
