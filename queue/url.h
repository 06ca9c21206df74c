/* url.h - Redis URL parsing (pure; no I/O).
 *   redis://[[user]:password@]host[:port][/db]
 *   unix:///path/to/socket[?db=N]
 * Host may be an IPv6 literal in brackets. user and password are
 * %-decoded (RFC 3986: "p%40ss" is "p@ss"); error messages never show
 * them (the userinfo is replaced by "***"). */
#ifndef JOBQ_URL_H
#define JOBQ_URL_H

#include <stddef.h>

struct jobq_url {
	char host[256];    /* TCP host, "" for unix sockets */
	int port;          /* default 6379 */
	char path[256];    /* unix socket path, "" for TCP */
	char user[128];    /* "" = none (AUTH with password only) */
	char password[256];/* "" = no AUTH */
	int db;            /* SELECT db, default 0 */
};

/* Returns 0, or -1 with a message in err naming what is wrong. */
int jobq_url_parse(const char *url, struct jobq_url *out, char *err, size_t errlen);

#endif
