/* cli.h - the jobq command line: a thin client of jobq.h. Exit codes:
 * 0 ok, 1 runtime error, 2 usage error. */
#ifndef JOBQ_CLI_H
#define JOBQ_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "queue/jobq.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct cli_global {
	const char *redis_url; /* NULL: $JOBQ_REDIS_URL / default */
	const char *queue;     /* NULL: "default" */
};

/* Subcommands: argv[0] is the subcommand name. */
int cmd_enqueue(const struct cli_global *g, int argc, char **argv);
int cmd_worker(const struct cli_global *g, int argc, char **argv);
int cmd_stats(const struct cli_global *g, int argc, char **argv);
int cmd_dead(const struct cli_global *g, int argc, char **argv);
int cmd_tenant(const struct cli_global *g, int argc, char **argv);

/* Prints "jobq: <msg>" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* getopt_long's own messages are off (opterr = 0, optstring ":"): after
 * it returns '?' or ':', prints "jobq: CMD: unknown option \"--x\"" (or
 * needs a value / takes no value / is ambiguous) and returns EXIT_USAGE. */
struct option;
int cli_opt_error(const char *cmd, int c, int argc, char **argv, const struct option *opts);
/* Connects per the global options or prints why and returns NULL. */
struct jobq *cli_connect(const struct cli_global *g);
/* Strict unsigned parse of a whole string; 0 or -1. */
int cli_u32(const char *s, uint32_t *out);
int cli_double(const char *s, double *out);

/* handlers.c: parses "builtin:sleep:MS" etc. into a handler registered
 * for type on w. */
struct cli_handlers;
struct cli_handlers *cli_handlers_new(const char *job_log, uint32_t exec_timeout_ms);
int cli_handlers_add(struct cli_handlers *h, struct jobq_worker *w, const char *spec);
void cli_handlers_free(struct cli_handlers *h);

#endif
