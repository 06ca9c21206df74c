/*
 * server.h - the agents' Unix socket: accept, read frames, dispatch.
 *
 * Non-blocking and poll()-driven by the sidecar's event loop; several agents
 * at once (SC_MAX_CONNS). Per connection: the first frame must be a Hello,
 * a Frame.version other than SC_AGENT_PROTO_VERSION or an undecodable frame
 * closes it with a logged error and a counted rejection, and frames are at
 * most max_frame bytes (JOBQ_AGENT_MAX_FRAME, 16 MiB).
 *
 * The socket file is created with the given mode (0660 by default). A stale
 * socket file (nobody accepts on it) is replaced; a live one, or a path that
 * is not a socket, is an error rather than something to delete.
 */
#ifndef SC_SERVER_H
#define SC_SERVER_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "sidecar/export.h"
#include "sidecar/frame.h"
#include "sidecar/spans.h"
#include "sidecar/stats.h"
#include "sidecar/store.h"

#define SC_AGENT_PROTO_VERSION 1
#define SC_MAX_FRAME (16u << 20)
#define SC_MAX_CONNS 64

struct sc_conn {
	int fd;
	int slot; /* store agent slot once the Hello arrived, else -1 */
	struct sc_frame_reader rd;
};

struct sc_server {
	int lfd;
	char path[108];
	struct sc_conn conns[SC_MAX_CONNS];
	struct sc_store *store;
	struct sc_spanbuf *spans;
	struct sc_stats *st;
	sc_log_fn log;
	size_t max_frame;
	/* Rate limit of the log line about points the store refused. */
	uint64_t drops_logged;   /* store drops already reported */
	int64_t drops_log_ms;    /* when the last line was written (monotonic) */
	uint64_t span_drops_logged; /* buffer_full spans already reported */
	int64_t span_drops_log_ms;
};

/* At most one line per SC_DROP_LOG_INTERVAL_MS about agent points the store
 * refused (invalid, metric_limit) since the previous line, and one about
 * spans refused because the span buffer was full. Called by the event loop
 * after reading frames and on its timers. */
#define SC_DROP_LOG_INTERVAL_MS 10000
void sc_server_report_drops(struct sc_server *s, int64_t now_ms);

int sc_server_listen(struct sc_server *s, const char *path, mode_t mode, char *err, size_t errsz);
int sc_server_pollfds(struct sc_server *s, struct pollfd *fds, int max);
void sc_server_handle(struct sc_server *s, const struct pollfd *fds, int n);
/* Handles one decoded frame for connection c; returns -1 to close it.
 * Exposed for tests. */
int sc_server_dispatch(struct sc_server *s, struct sc_conn *c, const uint8_t *frame, size_t n);
void sc_server_close(struct sc_server *s);

#endif
