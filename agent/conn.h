/*
 * conn.h - the agent's end of the sidecar Unix socket: non-blocking,
 * reconnects with exponential backoff, bounded outbound queue of whole
 * frames. Never blocks the agent's loop and never fails it: a sidecar that
 * is down or slow costs queued frames, and the spans in frames that could
 * not be delivered are reported so they can be counted as dropped.
 */
#ifndef JOBQ_AGENT_CONN_H
#define JOBQ_AGENT_CONN_H

#include <stddef.h>
#include <stdint.h>

struct conn;

struct conn *conn_new(const char *path, size_t max_queued_bytes);
void conn_free(struct conn *c);

/*
 * Connects when due (backoff 100 ms .. 5 s) and writes what the socket
 * takes. Returns 1 if a new connection was just made (the caller sends a
 * Hello first), else 0. now_ms is any monotonic clock in ms.
 */
int conn_tick(struct conn *c, uint64_t now_ms);

int conn_is_up(const struct conn *c);

/*
 * Queues one encoded frame (takes ownership of buf, malloc'd) carrying
 * nspans spans. Returns 0, or -1 when down or the queue is full (buf is
 * freed; the caller counts the spans as dropped).
 */
int conn_send(struct conn *c, uint8_t *buf, size_t len, size_t nspans);

/* The socket, or -1 when down: poll it for POLLOUT while conn_queued(). */
int conn_fd(const struct conn *c);

/* Bytes queued and not yet written. */
size_t conn_queued(const struct conn *c);

/* Spans in frames lost to disconnects since the last call. */
uint64_t conn_take_lost_spans(struct conn *c);

/* Last connection error, for a log line ("" if none). */
const char *conn_error(const struct conn *c);

#endif
