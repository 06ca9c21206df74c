/* internal.h - libjobq internals shared by its modules (not installed). */
#ifndef JOBQ_INTERNAL_H
#define JOBQ_INTERNAL_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>

#include "queue/jobq.h"
#include "queue/scripts.h"
#include "queue/url.h"

#define JOBQ_ERRMSG_MAX 256
#define JOBQ_PREFIX_MAX (JOBQ_QUEUE_MAX + 16)

struct jobq {
	redisContext *c;           /* NULL while disconnected */
	struct jobq_url url;
	struct jobq_opts o;        /* redis_url/queue point into the copies below */
	char url_str[768];
	char queue[JOBQ_QUEUE_MAX + 1];
	char prefix[JOBQ_PREFIX_MAX]; /* "jobq:{<queue>}:" = KEYS[1] of every script */
	char sha[JOBQ_S_COUNT][41];
	char err[JOBQ_ERRMSG_MAX];
	int transient;             /* the last (re)connect failed for a reason
				    * that may pass (refused, I/O, LOADING) */
};

/* Sets q->err from fmt and returns code. */
int jobq__fail(struct jobq *q, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* (Re)connects q: TCP/unix connect, AUTH, SELECT, SCRIPT LOAD. */
int jobq__reconnect(struct jobq *q);
/* SCRIPT LOAD of every script (after NOSCRIPT: Redis lost its cache). */
int jobq__load_scripts(struct jobq *q);
/* Drops the connection (after an I/O error); the next call reconnects. */
void jobq__disconnect(struct jobq *q);
/* Before a producer/admin call: a connection the server closed since the
 * last call (restart, timeout, CLIENT KILL) is noticed here, before
 * anything is sent, and replaced; a missing one is (re)connected with
 * backoff (50 ms doubling, giving up after o.reconnect_max_ms in all).
 * A bad URL, password or database fails at once. */
int jobq__ensure(struct jobq *q);

/* Appends EVALSHA of script s with KEYS[1] = prefix and the given ARGV to
 * the output buffer (pipelining). Nothing is sent until a reply is read.
 * On failure the connection is dropped with everything appended so far
 * (none of it was sent). */
int jobq__append_eval(struct jobq *q, enum jobq_script_id s, int argc, const char **argv,
		      const size_t *lens);
/* Reads the next reply. I/O errors drop the connection: JOBQ_EREDIS. A Redis
 * error reply is returned as a reply (caller checks REDIS_REPLY_ERROR).
 * Whoever pipelines N commands must read all N replies (or drop the
 * connection): an unread reply would be taken for the answer to a later
 * command. */
int jobq__read(struct jobq *q, redisReply **r);
/* One script call, synchronously; reloads the scripts and retries once on
 * NOSCRIPT. Error replies become JOBQ_EREDIS/JOBQ_EINVAL with the message. */
int jobq__eval(struct jobq *q, enum jobq_script_id s, int argc, const char **argv,
	       const size_t *lens, redisReply **out);
/* 1 if r is a NOSCRIPT error reply. */
int jobq__is_noscript(const redisReply *r);
/* Maps an error reply to a code and message ("jobq: ..." -> JOBQ_EINVAL). */
int jobq__reply_error(struct jobq *q, const redisReply *r, const char *what);

/* Logging through the jobq_set_log callback. */
void jobq__log(enum jobq_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies a Redis string/integer reply element into buf as text; returns
 * -1 if it is neither or does not fit. */
int jobq__reply_str(const redisReply *r, char *buf, size_t cap);
int jobq__reply_u64(const redisReply *r, uint64_t *out);
int jobq__reply_double(const redisReply *r, double *out);

/* hiredis writes with write(2): a peer that went away raises SIGPIPE,
 * which would kill the caller's process. Socket I/O runs with SIGPIPE
 * blocked in the calling thread (EPIPE is then reported as an error), and
 * a SIGPIPE it caused is consumed before the mask is restored. */
struct jobq__sigpipe {
	sigset_t old;
	int was_pending;
};
void jobq__sigpipe_block(struct jobq__sigpipe *s);
void jobq__sigpipe_restore(struct jobq__sigpipe *s);

uint64_t jobq__now_unix_ns(void);
uint64_t jobq__mono_ms(void);

#endif
