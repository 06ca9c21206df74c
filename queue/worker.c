/* worker.c - the fair worker: one dispatcher thread (the caller of
 * jobq_worker_run) owns a Redis connection and, per round trip, pipelines
 * settling finished jobs with leasing the next batch (plus lease renewal,
 * reaping and the depth report when due); N handler threads run jobs; a
 * waker thread blocks in BLPOP on the queue's wake list (own connection)
 * while the dispatcher has room but the queue had nothing, so an idle
 * worker sleeps in the kernel and wakes within a round trip of new work.
 *
 * Threads meet under w->mu: pending (leased, not started) -> handler ->
 * done -> dispatcher. The dispatcher sleeps in poll() on an eventfd that
 * handlers, the waker and jobq_worker_stop() (async-signal-safe) write. */
#include "queue/backoff.h"
#include "queue/lease.h"
#include "queue/validate.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HANDLERS 256
#define WAKE_MAX_MS 1000      /* the waker re-checks at least this often */
#define STOP_GIVEUP_MS 10000  /* stopping with Redis down: give up after */
#define DEFAULT_COST_MS 1.0

struct handler {
	char type[JOBQ_TYPE_MAX + 1];
	jobq_handler_fn fn;
	void *user;
};

struct jobq_worker {
	struct jobq_worker_opts o;
	char url[768], queue[JOBQ_QUEUE_MAX + 1];
	struct handler h[MAX_HANDLERS];
	size_t nh;
	struct handler star;
	char err[JOBQ_ERRMSG_MAX];
	atomic_int stop;
	int efd;

	pthread_mutex_t mu;
	pthread_cond_t work_cv, waker_cv;
	/* under mu */
	struct jobq_lease *pend_head, *pend_tail, *done_head;
	size_t npend, nrunning;
	size_t pf_started;            /* prefetched leases started, not yet reported */
	int quit, disp_waiting, want_wake, waker_fd;
	uint32_t wake_timeout_ms;
};

void jobq_worker_opts_init(struct jobq_worker_opts *o)
{
	memset(o, 0, sizeof(*o));
	jobq_opts_init(&o->conn);
	o->concurrency = 4;
	o->lease_ms = 30000;
	o->batch = 16;
	o->aging_ms = 10000;
	o->backoff_base_ms = 1000;
	o->backoff_max_ms = 300000;
	o->depth_report_ms = 1000;
	o->reap_interval_ms = 1000;
	o->release_on_stop = 1;
	o->prefetch = 0; /* lease only for free slots */
}

int jobq_worker_new(const struct jobq_worker_opts *o, struct jobq_worker **out, char *err,
		    size_t errlen)
{
	struct jobq_worker *w;

	*out = NULL;
	if (!o || o->concurrency < 1 || o->concurrency > 1024) {
		snprintf(err, errlen, "concurrency must be 1..1024");
		return JOBQ_EINVAL;
	}
	if (o->batch < 1 || o->batch > 1024) {
		snprintf(err, errlen, "batch must be 1..1024");
		return JOBQ_EINVAL;
	}
	if (o->prefetch > 4096) {
		snprintf(err, errlen, "prefetch must be 0..4096");
		return JOBQ_EINVAL;
	}
	if (o->lease_ms < 100) {
		snprintf(err, errlen, "lease_ms must be >= 100");
		return JOBQ_EINVAL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return JOBQ_ENOMEM;
	}
	w->o = *o;
	if (o->conn.redis_url) {
		snprintf(w->url, sizeof(w->url), "%s", o->conn.redis_url);
		w->o.conn.redis_url = w->url;
	}
	if (o->conn.queue) {
		snprintf(w->queue, sizeof(w->queue), "%s", o->conn.queue);
		w->o.conn.queue = w->queue;
	}
	if (!w->o.reap_interval_ms)
		w->o.reap_interval_ms = 1000;
	if (!w->o.depth_report_ms)
		w->o.depth_report_ms = 1000;
	if (!w->o.backoff_base_ms)
		w->o.backoff_base_ms = 1;
	if (w->o.backoff_max_ms < w->o.backoff_base_ms)
		w->o.backoff_max_ms = w->o.backoff_base_ms;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(w);
		return JOBQ_ENOMEM;
	}
	w->waker_fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work_cv, NULL);
	pthread_cond_init(&w->waker_cv, NULL);
	*out = w;
	return JOBQ_OK;
}

int jobq_worker_handle(struct jobq_worker *w, const char *type, jobq_handler_fn fn, void *user)
{
	char err[160];

	if (!fn) {
		snprintf(w->err, sizeof(w->err), "handler for \"%s\" is NULL", type ? type : "");
		return JOBQ_EINVAL;
	}
	if (type && !strcmp(type, "*")) {
		w->star.fn = fn, w->star.user = user;
		return JOBQ_OK;
	}
	if (jobq_check_name("type", type, JOBQ_TYPE_MAX, err, sizeof(err))) {
		snprintf(w->err, sizeof(w->err), "%s", err);
		return JOBQ_EINVAL;
	}
	for (size_t i = 0; i < w->nh; i++) {
		if (!strcmp(w->h[i].type, type)) {
			w->h[i].fn = fn, w->h[i].user = user;
			return JOBQ_OK;
		}
	}
	if (w->nh == MAX_HANDLERS) {
		snprintf(w->err, sizeof(w->err), "at most %d handler types", MAX_HANDLERS);
		return JOBQ_EINVAL;
	}
	snprintf(w->h[w->nh].type, sizeof(w->h[w->nh].type), "%s", type);
	w->h[w->nh].fn = fn, w->h[w->nh].user = user;
	w->nh++;
	return JOBQ_OK;
}

/* Wakes the dispatcher. write(2) on an eventfd is async-signal-safe; the
 * only possible failure, EAGAIN on a saturated counter, means it is
 * already awake. */
static void poke(int efd)
{
	uint64_t one = 1;
	ssize_t n = write(efd, &one, sizeof(one));

	(void)n;
}

void jobq_worker_stop(struct jobq_worker *w)
{
	atomic_store(&w->stop, 1);
	poke(w->efd);
}

void jobq_worker_free(struct jobq_worker *w)
{
	if (!w)
		return;
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work_cv);
	pthread_cond_destroy(&w->waker_cv);
	free(w);
}

const char *jobq_worker_errmsg(const struct jobq_worker *w)
{
	return w->err;
}

/* Called with w->mu held. */
static void kick_locked(struct jobq_worker *w)
{
	if (w->disp_waiting) {
		w->disp_waiting = 0;
		poke(w->efd);
	}
}

static const struct handler *find_handler(const struct jobq_worker *w, const char *type)
{
	for (size_t i = 0; i < w->nh; i++)
		if (!strcmp(w->h[i].type, type))
			return &w->h[i];
	return w->star.fn ? &w->star : NULL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Runs one job on a handler thread; fills in its outcome. */
static void run_job(struct jobq_worker *w, struct jobq_lease *l)
{
	const struct jobq_job *j = &l->job;
	const struct handler *h = find_handler(w, j->type);
	char err[JOBQ_ERROR_MAX + 1] = "";
	uint64_t t0;
	int rc;

	if (!h) {
		/* A failed attempt like any other, not a dead letter: during a
		 * rolling deploy an older worker without the new handler shares
		 * the queue, and after the backoff a worker that has it can take
		 * the job. Dead-lettered only once attempts are exhausted. */
		l->outcome = JOBQ_OUT_FAIL;
		snprintf(l->error, sizeof(l->error), "no handler for type %s on this worker", j->type);
		jobq_utf8_cut(l->error, JOBQ_ERROR_MAX);
		l->delay_ms = jobq_backoff_ms(w->o.backoff_base_ms, w->o.backoff_max_ms, j->attempt,
					      jobq_random01());
		return;
	}
	if (JOBQ_PROBE_ENABLED(start))
		JOBQ_PROBE_START(j->queue, j->tenant, j->type, j->id, (int)j->priority,
				 j->enqueued_unix_ns, jobq_be64(j->trace_id), jobq_be64(j->trace_id + 8),
				 jobq_be64(j->span_id), j->attempt, j->trace_flags,
				 jobq_series_digest(j->queue, j->tenant, j->type));
	t0 = mono_ns();
	rc = h->fn(j, h->user, err, sizeof(err));
	l->duration_ms = (double)(mono_ns() - t0) / 1e6;
	err[sizeof(err) - 1] = '\0';
	jobq_utf8_cut(err, JOBQ_ERROR_MAX); /* a handler's snprintf may split a character */
	if (rc == 0) {
		l->outcome = JOBQ_OUT_OK;
		l->error[0] = '\0';
	} else {
		l->outcome = JOBQ_OUT_FAIL;
		if (err[0])
			snprintf(l->error, sizeof(l->error), "%s", err);
		else
			snprintf(l->error, sizeof(l->error), "handler returned %d", rc);
		l->delay_ms = jobq_backoff_ms(w->o.backoff_base_ms, w->o.backoff_max_ms, j->attempt,
					      jobq_random01());
	}
	if (JOBQ_PROBE_ENABLED(finish))
		JOBQ_PROBE_FINISH(j->queue, j->tenant, j->type, j->id, (int)j->priority,
				  rc == 0 ? JOBQ_STATUS_SUCCESS : JOBQ_STATUS_FAILED, j->attempt,
				  l->error);
}

static void *handler_main(void *arg)
{
	struct jobq_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct jobq_lease *l;

		while (!w->pend_head && !w->quit)
			pthread_cond_wait(&w->work_cv, &w->mu);
		if (!w->pend_head)
			break;
		l = w->pend_head;
		w->pend_head = l->next;
		if (!w->pend_head)
			w->pend_tail = NULL;
		w->npend--;
		w->nrunning++;
		l->started = 1;
		w->pf_started += l->prefetched;
		pthread_mutex_unlock(&w->mu);

		run_job(w, l);

		pthread_mutex_lock(&w->mu);
		l->next = w->done_head;
		w->done_head = l;
		w->nrunning--;
		kick_locked(w);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* The waker: BLPOP on the wake list while the dispatcher wants work. */
static void block_sigpipe_in_this_thread(void)
{
	sigset_t pipe;

	/* Our own threads never want SIGPIPE: the waker's socket is shut
	 * down under it at stop, and EPIPE is an ordinary error here. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
}

static void *waker_main(void *arg)
{
	struct jobq_worker *w = arg;
	struct jobq_opts co = w->o.conn;
	struct jobq *q = NULL;
	char wake_key[JOBQ_PREFIX_MAX + 8];

	co.command_timeout_ms = WAKE_MAX_MS + 5000; /* longer than any BLPOP */
	block_sigpipe_in_this_thread();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		char tmo[16];
		uint32_t ms;
		int ok = 0;

		while (!w->want_wake && !w->quit)
			pthread_cond_wait(&w->waker_cv, &w->mu);
		if (w->quit)
			break;
		ms = w->wake_timeout_ms;
		pthread_mutex_unlock(&w->mu);

		if (!q) {
			char err[JOBQ_ERRMSG_MAX];

			if (jobq_connect(&co, &q, err, sizeof(err)) == JOBQ_OK) {
				snprintf(wake_key, sizeof(wake_key), "%swake", q->prefix);
				pthread_mutex_lock(&w->mu);
				w->waker_fd = q->c->fd;
				if (w->quit) /* stop raced with the connect */
					shutdown(w->waker_fd, SHUT_RDWR);
				pthread_mutex_unlock(&w->mu);
			}
		}
		if (q && q->c) {
			const char *argv[] = { "BLPOP", wake_key, tmo };
			redisReply *r;

			snprintf(tmo, sizeof(tmo), "%u.%03u", ms / 1000, ms % 1000);
			r = redisCommandArgv(q->c, 3, argv, NULL);
			ok = r != NULL;
			if (r)
				freeReplyObject(r);
		}
		if (!ok) {
			struct timespec ts = { 0, 200 * 1000000 };

			/* Redis is away: the dispatcher reconnects and logs; we
			 * just retry a little later. */
			pthread_mutex_lock(&w->mu);
			w->waker_fd = -1;
			pthread_mutex_unlock(&w->mu);
			jobq_close(q);
			q = NULL;
			nanosleep(&ts, NULL);
		}
		pthread_mutex_lock(&w->mu);
		w->want_wake = 0;
		kick_locked(w);
	}
	w->waker_fd = -1;
	pthread_mutex_unlock(&w->mu);
	jobq_close(q);
	return NULL;
}

/* Dispatcher state for one jobq_worker_run. */
struct disp {
	struct jobq_worker *w;
	struct jobq *q;
	struct jobq_lease **held;  /* every lease we own, until settled */
	size_t nheld, limit;       /* limit: concurrency + prefetch */
	size_t cap;                /* room in held: limit + batch */
	struct jobq_lease *unsettled; /* finished (or released) jobs to settle */
	struct jobq_settle *settle;
	struct jobq_lease **fresh;
	struct jobq_lease **renew;
	struct jobq_lease **starts;   /* prefetched leases started: report them */
	size_t nstarts;
	int start_retry;              /* the last report failed: collect again */
	size_t stats_skipped;         /* bad tenant records in the last depth report */
	uint64_t next_renew, next_reap, next_depth;
	int64_t next_due_ms;
	uint32_t backoff_ms;
	uint64_t down_since;
};

static void held_add(struct disp *d, struct jobq_lease *l)
{
	l->held_idx = d->nheld;
	d->held[d->nheld++] = l;
}

static void held_del(struct disp *d, struct jobq_lease *l)
{
	struct jobq_lease *last = d->held[--d->nheld];

	d->held[l->held_idx] = last;
	last->held_idx = l->held_idx;
}

/* Grows the dispatcher's backoff (50 ms doubling up to reconnect_max_ms). */
static int back_off(struct disp *d, int rc)
{
	struct jobq_worker *w = d->w;

	d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 50;
	if (d->backoff_ms > (uint32_t)w->o.conn.reconnect_max_ms)
		d->backoff_ms = (uint32_t)w->o.conn.reconnect_max_ms;
	return rc;
}

static int redis_down(struct disp *d, int rc)
{
	if (!d->down_since) {
		d->down_since = jobq__mono_ms();
		jobq__log(JOBQ_LOG_WARN, "worker: %s; reconnecting with backoff", d->q->err);
	}
	return back_off(d, rc);
}

/* A reply that was read but is an error or cannot be interpreted: the
 * pipeline stays in step (every reply is still read), so the connection
 * is kept; the round is retried after a backoff. Returns the first code. */
static int reply_failed(struct disp *d, int rc, int first)
{
	jobq__log(JOBQ_LOG_ERROR, "worker: %s", d->q->err);
	return first ? first : rc;
}

/* Hands freshly leased jobs to the handler threads (malformed ones go
 * straight to settling as dead). */
static void queue_fresh(struct disp *d, size_t got)
{
	struct jobq_worker *w = d->w;

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < got; i++) {
		struct jobq_lease *l = d->fresh[i];

		held_add(d, l);
		l->next = NULL;
		if (l->malformed) {
			l->outcome = JOBQ_OUT_DEAD;
			snprintf(l->error, sizeof(l->error), "%s", l->reason);
			l->next = w->done_head;
			w->done_head = l;
			continue;
		}
		if (w->pend_tail)
			w->pend_tail->next = l;
		else
			w->pend_head = l;
		w->pend_tail = l;
		w->npend++;
	}
	if (got)
		pthread_cond_broadcast(&w->work_cv);
	pthread_mutex_unlock(&w->mu);
}

/* One pipelined round trip. Returns JOBQ_OK, or an error (connection
 * errors are JOBQ_EREDIS; the caller backs off and retries). *got: jobs
 * leased; *want: jobs asked for. */
static int round_trip(struct disp *d, int stopping, size_t *want, size_t *got, size_t *settled)
{
	struct jobq_worker *w = d->w;
	struct jobq *q = d->q;
	uint64_t now = jobq__mono_ms();
	size_t ns = 0, nrenew = 0, busy, free_slots;
	int do_reap = 0, do_depth = 0, noscript = 0, failed = 0, rc;
	struct jobq_lease_params lp = { 0, w->o.lease_ms, w->o.aging_ms, DEFAULT_COST_MS, 0 };
	redisReply *r;

	*got = 0;
	*want = 0;
	*settled = 0;
	for (struct jobq_lease *l = d->unsettled; l; l = l->next) {
		struct jobq_settle *s = &d->settle[ns++];

		s->l = l;
		s->outcome = (enum jobq_outcome)l->outcome;
		s->duration_ms = l->duration_ms;
		s->delay_ms = l->delay_ms;
		memcpy(s->error, l->error, sizeof(s->error));
		s->result = JOBQ_SETTLED_PENDING;
	}
	/* Settling runs first in the pipeline, so its slots are free by the
	 * time the lease runs: ack + next batch in one round trip. */
	if (!stopping && d->nheld - ns < d->limit) {
		*want = d->limit - (d->nheld - ns);
		if (*want > w->o.batch)
			*want = w->o.batch;
		/* If the settling fails, these leases add to the ones held. */
		if (*want > d->cap - d->nheld)
			*want = d->cap - d->nheld;
		lp.max = (uint32_t)*want;
		/* Jobs beyond the free handler slots wait in this process: they
		 * are leased as prefetched (no attempt counted if this process
		 * dies before they start). Busy = pending + running. */
		busy = d->nheld - ns;
		free_slots = busy < (size_t)w->o.concurrency ? (size_t)w->o.concurrency - busy : 0;
		lp.prefetch = (uint32_t)(*want > free_slots ? *want - free_slots : 0);
	}
	if (now >= d->next_renew) {
		/* Leases being settled in this very round need no renewal. */
		for (size_t i = 0; i < d->nheld; i++)
			if (!d->held[i]->settling)
				d->renew[nrenew++] = d->held[i];
		if (!nrenew)
			d->next_renew = now + w->o.lease_ms / 3;
	}
	if (now >= d->next_reap)
		do_reap = 1;
	if (now >= d->next_depth && JOBQ_PROBE_ENABLED(depth))
		do_depth = 1;
	if (!ns && !d->nstarts && !*want && !nrenew && !do_reap && !do_depth)
		return JOBQ_OK;

	if (!q->c && (rc = jobq__reconnect(q)))
		goto io_fail;
	if (d->down_since) {
		jobq__log(JOBQ_LOG_INFO, "worker: reconnected to redis after %" PRIu64 " ms",
			  jobq__mono_ms() - d->down_since);
		d->down_since = 0;
	}
	if ((ns && (rc = jobq__settle_append(q, d->settle, ns))) ||
	    (d->nstarts && (rc = jobq__start_append(q, d->starts, d->nstarts))) ||
	    (*want && (rc = jobq__lease_append(q, &lp))) ||
	    (nrenew && (rc = jobq__renew_append(q, d->renew, nrenew, w->o.lease_ms))) ||
	    (do_reap && (rc = jobq__reap_append(q, 100))) ||
	    (do_depth && (rc = jobq__stats_append(q, 10000))))
		goto io_fail;

	/* Replies in the order appended. Every one is read even when an
	 * earlier one failed: an unread reply would be taken for the answer
	 * to a later command. Only an I/O error (connection dropped, which
	 * discards the rest) ends this early. A part answered NOSCRIPT did
	 * not run and is simply redone next round; any other failure keeps
	 * its state (unsettled jobs stay unsettled) for the next round. */
	if (ns) {
		if ((rc = jobq__read(q, &r)))
			goto io_fail;
		if (jobq__is_noscript(r)) {
			freeReplyObject(r);
			noscript = 1;
		} else if ((rc = jobq__settle_parse(q, r, d->settle, ns))) {
			failed = reply_failed(d, rc, failed);
		} else {
			for (size_t i = 0; i < ns; i++) {
				held_del(d, d->settle[i].l);
				jobq_lease_free(d->settle[i].l);
			}
			d->unsettled = NULL;
			*settled = ns;
		}
	}
	if (d->nstarts) {
		if ((rc = jobq__read(q, &r)))
			goto io_fail;
		if (jobq__is_noscript(r)) {
			freeReplyObject(r);
			noscript = 1;
			d->start_retry = 1;
		} else if ((rc = jobq__start_parse(q, r))) {
			failed = reply_failed(d, rc, failed);
			d->start_retry = 1;
		} else {
			for (size_t i = 0; i < d->nstarts; i++)
				d->starts[i]->start_sent = 1;
		}
		d->nstarts = 0;
	}
	if (*want) {
		int64_t due;

		if ((rc = jobq__read(q, &r)))
			goto io_fail;
		if (jobq__is_noscript(r)) {
			freeReplyObject(r);
			noscript = 1;
		} else if ((rc = jobq__lease_parse(q, r, &lp, d->fresh, *want, got, &due))) {
			/* Jobs it may have leased come back when their leases expire. */
			failed = reply_failed(d, rc, failed);
		} else {
			d->next_due_ms = due;
			queue_fresh(d, *got);
		}
	}
	if (nrenew) {
		size_t lost;

		if ((rc = jobq__read(q, &r)))
			goto io_fail;
		if (jobq__is_noscript(r)) {
			freeReplyObject(r);
			noscript = 1;
		} else if ((rc = jobq__renew_parse(q, r, nrenew, &lost))) {
			failed = reply_failed(d, rc, failed);
		} else {
			if (lost)
				jobq__log(JOBQ_LOG_WARN, "worker: %zu leases expired before renewal", lost);
			d->next_renew = now + w->o.lease_ms / 3;
		}
	}
	if (do_reap) {
		size_t n;

		if ((rc = jobq__read(q, &r)))
			goto io_fail;
		if (jobq__is_noscript(r)) {
			freeReplyObject(r);
			noscript = 1;
		} else if ((rc = jobq__reap_parse(q, r, &n))) {
			failed = reply_failed(d, rc, failed);
		} else {
			d->next_reap = now + (n == 100 ? 0 : w->o.reap_interval_ms);
		}
	}
	if (do_depth) {
		struct jobq_tenant_stats *st;
		size_t n, skipped;

		if ((rc = jobq__read(q, &r)))
			goto io_fail;
		if (jobq__is_noscript(r)) {
			freeReplyObject(r);
			noscript = 1;
		} else if ((rc = jobq__stats_parse(q, r, &st, &n, &skipped))) {
			failed = reply_failed(d, rc, failed);
		} else {
			/* Bad records are skipped; say so when their number changes. */
			if (skipped && skipped != d->stats_skipped)
				jobq__log(JOBQ_LOG_WARN, "worker: depth report: %s (%zu bad tenant records in all)",
					  q->err, skipped);
			else if (!skipped && d->stats_skipped)
				jobq__log(JOBQ_LOG_INFO, "worker: depth report: no bad tenant records any more");
			d->stats_skipped = skipped;
			jobq__fire_depth(q, st, n);
			free(st);
			d->next_depth = now + w->o.depth_report_ms;
		}
	}
	if (noscript) {
		/* Redis lost its script cache (restart, SCRIPT FLUSH). */
		jobq__log(JOBQ_LOG_INFO, "worker: redis lost the scripts; reloading");
		if ((rc = jobq__load_scripts(q)))
			goto io_fail;
	}
	if (failed)
		return back_off(d, failed);
	d->backoff_ms = 0;
	return JOBQ_OK;
io_fail:
	if (d->nstarts) {
		d->start_retry = 1;
		d->nstarts = 0;
	}
	jobq__disconnect(q);
	return redis_down(d, rc);
}

/* Sleeps until something happens (or timeout_ms). */
static void dispatcher_wait(struct disp *d, int timeout_ms, int want_wake)
{
	struct jobq_worker *w = d->w;
	struct pollfd p = { .fd = w->efd, .events = POLLIN };
	uint64_t v;

	pthread_mutex_lock(&w->mu);
	if (w->done_head || atomic_load(&w->stop)) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	if (want_wake && !w->want_wake) {
		int64_t due = d->next_due_ms;

		w->want_wake = 1;
		w->wake_timeout_ms = due >= 0 && due < WAKE_MAX_MS ? (uint32_t)due + 1 : WAKE_MAX_MS;
		pthread_cond_signal(&w->waker_cv);
	}
	w->disp_waiting = 1;
	pthread_mutex_unlock(&w->mu);
	/* Drain the counter; EAGAIN (someone else drained it) is fine. */
	if (poll(&p, 1, timeout_ms) > 0 && read(w->efd, &v, sizeof(v)) < 0)
		v = 0;
	pthread_mutex_lock(&w->mu);
	w->disp_waiting = 0;
	pthread_mutex_unlock(&w->mu);
}

static int ms_until(uint64_t t, uint64_t now)
{
	return t <= now ? 0 : (int)(t - now);
}

static int dispatch(struct disp *d)
{
	struct jobq_worker *w = d->w;
	uint64_t stop_at = 0;
	int rc = JOBQ_OK;

	for (;;) {
		int stopping = atomic_load(&w->stop);
		size_t want, got, busy, settled;
		uint64_t now;
		int timeout;

		if (stopping && !stop_at) {
			stop_at = jobq__mono_ms();
			jobq__log(JOBQ_LOG_INFO, "worker: stopping (%zu leased jobs to finish or release)",
				  d->nheld);
		}
		pthread_mutex_lock(&w->mu);
		/* Finished jobs join the unsettled list (which survives
		 * failed round trips). */
		while (w->done_head) {
			struct jobq_lease *l = w->done_head;

			w->done_head = l->next;
			l->settling = 1;
			l->next = d->unsettled;
			d->unsettled = l;
		}
		if (stopping && w->o.release_on_stop) {
			while (w->pend_head) {
				struct jobq_lease *l = w->pend_head;

				w->pend_head = l->next;
				l->outcome = JOBQ_OUT_RELEASE;
				l->duration_ms = 0;
				l->error[0] = '\0';
				l->settling = 1;
				l->next = d->unsettled;
				d->unsettled = l;
			}
			w->pend_tail = NULL;
			w->npend = 0;
		}
		/* Prefetched jobs a handler took since the last round: their
		 * start is recorded in the next round trip (unless they are
		 * being settled already, which says more). */
		if (w->pf_started || d->start_retry) {
			d->nstarts = 0;
			for (size_t i = 0; i < d->nheld; i++) {
				struct jobq_lease *l = d->held[i];

				if (l->prefetched && l->started && !l->start_sent && !l->settling)
					d->starts[d->nstarts++] = l;
			}
			w->pf_started = 0;
			d->start_retry = 0;
		}
		busy = w->npend + w->nrunning;
		pthread_mutex_unlock(&w->mu);

		if (stopping && d->nheld == 0)
			break;
		if (stopping && busy == 0 && d->down_since &&
		    jobq__mono_ms() - stop_at > STOP_GIVEUP_MS) {
			size_t ran = 0;

			/* Returned, not logged: the caller shows it once. */
			for (size_t i = 0; i < d->nheld; i++)
				ran += d->held[i]->started != 0;
			rc = JOBQ_EREDIS;
			snprintf(w->err, sizeof(w->err),
				 "stopped with %zu jobs not settled, redis unreachable for %d s (%.80s): %zu ran but their outcome is not recorded, %zu did not start; they run again when their leases expire",
				 d->nheld, STOP_GIVEUP_MS / 1000, d->q->err, ran, d->nheld - ran);
			break;
		}
		rc = round_trip(d, stopping, &want, &got, &settled);
		now = jobq__mono_ms();
		if (rc) {
			dispatcher_wait(d, (int)d->backoff_ms, 0);
			rc = JOBQ_OK;
			continue;
		}
		if ((want && got == want) || (settled && !want && !stopping))
			continue; /* maybe more ready, or room was just made */
		pthread_mutex_lock(&w->mu);
		timeout = w->done_head ? 0 : -1;
		pthread_mutex_unlock(&w->mu);
		if (timeout == 0)
			continue;
		timeout = ms_until(d->next_reap, now);
		if (d->nheld)
			timeout = timeout < ms_until(d->next_renew, now) ? timeout : ms_until(d->next_renew, now);
		if (JOBQ_PROBE_ENABLED(depth) && ms_until(d->next_depth, now) < timeout)
			timeout = ms_until(d->next_depth, now);
		/* Redis checks BLPOP timeouts only every 100 ms (hz 10): a
		 * delayed job's due time is our own timer. */
		if (want && d->next_due_ms >= 0 && d->next_due_ms + 1 < timeout)
			timeout = (int)d->next_due_ms + 1;
		if (JOBQ_PROBE_ENABLED(depth) == 0 && timeout > 1000)
			timeout = 1000; /* notice a newly attached depth probe */
		dispatcher_wait(d, timeout, !stopping && want > 0);
	}
	return rc;
}

int jobq_worker_run(struct jobq_worker *w)
{
	struct disp d = { .w = w, .next_due_ms = -1 };
	pthread_t *threads = NULL, waker;
	int nthreads = 0, waker_started = 0, rc;
	char err[JOBQ_ERRMSG_MAX];

	w->quit = 0;
	w->err[0] = '\0';
	/* A wrong URL, password or database is a user error: fail at once.
	 * Redis not answering yet is an outage: wait it out with backoff. */
	for (uint32_t backoff = 50;; backoff = backoff * 2 > (uint32_t)w->o.conn.reconnect_max_ms
						? (uint32_t)w->o.conn.reconnect_max_ms : backoff * 2) {
		struct pollfd p = { .fd = w->efd, .events = POLLIN };

		rc = jobq_connect(&w->o.conn, &d.q, err, sizeof(err));
		if (rc == JOBQ_OK)
			break;
		if (rc == JOBQ_EREDIS && !strncmp(err, "connect ", 8) && atomic_load(&w->stop)) {
			/* Told to stop before Redis ever answered: nothing was
			 * leased, so nothing is left behind. A clean stop. */
			jobq__log(JOBQ_LOG_WARN, "worker: stopped before redis answered (%s); no job was leased",
				  err);
			return JOBQ_OK;
		}
		if (rc != JOBQ_EREDIS || strncmp(err, "connect ", 8)) {
			snprintf(w->err, sizeof(w->err), "%s", err);
			return rc;
		}
		jobq__log(JOBQ_LOG_WARN, "worker: %s; retrying in %u ms", err, backoff);
		poll(&p, 1, (int)backoff); /* jobq_worker_stop() interrupts */
	}
	d.limit = (size_t)w->o.concurrency + w->o.prefetch;
	d.cap = d.limit + w->o.batch;
	d.held = calloc(d.cap, sizeof(*d.held));
	d.settle = calloc(d.cap, sizeof(*d.settle));
	d.fresh = calloc(w->o.batch, sizeof(*d.fresh));
	d.renew = calloc(d.cap, sizeof(*d.renew));
	d.starts = calloc(d.cap, sizeof(*d.starts));
	threads = calloc((size_t)w->o.concurrency, sizeof(*threads));
	if (!d.held || !d.settle || !d.fresh || !d.renew || !d.starts || !threads) {
		snprintf(w->err, sizeof(w->err), "out of memory");
		rc = JOBQ_ENOMEM;
		goto out;
	}
	for (; nthreads < w->o.concurrency; nthreads++) {
		if ((errno = pthread_create(&threads[nthreads], NULL, handler_main, w))) {
			snprintf(w->err, sizeof(w->err), "pthread_create: %s", strerror(errno));
			rc = JOBQ_ENOMEM;
			goto out;
		}
	}
	if ((errno = pthread_create(&waker, NULL, waker_main, w))) {
		snprintf(w->err, sizeof(w->err), "pthread_create: %s", strerror(errno));
		rc = JOBQ_ENOMEM;
		goto out;
	}
	waker_started = 1;
	jobq__log(JOBQ_LOG_INFO, "worker: queue %s, concurrency %d, batch %u", d.q->queue,
		  w->o.concurrency, w->o.batch);
	rc = dispatch(&d);
out:
	/* Tell every thread to finish (handlers drain what they hold). */
	jobq_worker_stop(w);
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->work_cv);
	pthread_cond_broadcast(&w->waker_cv);
	if (w->waker_fd >= 0)
		shutdown(w->waker_fd, SHUT_RDWR); /* interrupt a blocked BLPOP */
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	if (waker_started)
		pthread_join(waker, NULL);
	/* Every lease is in held until settled; anything still held (only
	 * after giving up on Redis) is left to lease expiry and the reaper.
	 * The pending/done lists point into held, so just reset them. */
	for (size_t i = 0; i < d.nheld; i++)
		jobq_lease_free(d.held[i]);
	w->pend_head = NULL;
	w->pend_tail = NULL;
	w->done_head = NULL;
	w->npend = 0;
	free(d.held);
	free(d.settle);
	free(d.fresh);
	free(d.renew);
	free(d.starts);
	free(threads);
	jobq_close(d.q);
	return rc;
}
