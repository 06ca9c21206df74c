/* url.c - Redis URL parsing; see url.h. */
#include "queue/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *url, const char *why)
{
	snprintf(err, errlen, "invalid redis URL \"%s\": %s", url, why);
	return -1;
}

/* Copies [s, s+n) into dst (size cap) if it fits. */
static int copy(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
	char buf[16], *end;
	long v;

	if (n == 0 || copy(buf, sizeof(buf), s, n))
		return -1;
	v = strtol(buf, &end, 10);
	if (*end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

int jobq_url_parse(const char *url, struct jobq_url *u, char *err, size_t errlen)
{
	const char *p, *at, *end, *slash, *colon;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (!url || !*url)
		return fail(err, errlen, "", "empty");
	if (!strncmp(url, "unix://", 7)) {
		const char *q = strchr(url + 7, '?');
		size_t n = q ? (size_t)(q - (url + 7)) : strlen(url + 7);

		if (n == 0 || url[7] != '/')
			return fail(err, errlen, url, "unix:// needs an absolute socket path");
		if (copy(u->path, sizeof(u->path), url + 7, n))
			return fail(err, errlen, url, "socket path too long");
		if (q) {
			if (strncmp(q, "?db=", 4) ||
			    parse_int(q + 4, strlen(q + 4), 0, 1 << 20, &u->db))
				return fail(err, errlen, url, "expected ?db=N");
		}
		return 0;
	}
	if (strncmp(url, "redis://", 8)) {
		if (!strncmp(url, "rediss://", 9))
			return fail(err, errlen, url, "TLS (rediss://) is not supported");
		return fail(err, errlen, url, "scheme must be redis:// or unix://");
	}
	p = url + 8;
	end = p + strlen(p);
	slash = strchr(p, '/');
	if (!slash)
		slash = end;
	at = NULL;
	for (const char *s = p; s < slash; s++)
		if (*s == '@')
			at = s; /* the last '@' before the path ends userinfo */
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			if (copy(u->user, sizeof(u->user), p, (size_t)(colon - p)) ||
			    copy(u->password, sizeof(u->password), colon + 1,
				 (size_t)(at - colon - 1)))
				return fail(err, errlen, url, "user or password too long");
		} else if (copy(u->password, sizeof(u->password), p, (size_t)(at - p))) {
			return fail(err, errlen, url, "password too long");
		}
		p = at + 1;
	}
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(slash - p));

		if (!rb)
			return fail(err, errlen, url, "unterminated [IPv6] host");
		if (copy(u->host, sizeof(u->host), p + 1, (size_t)(rb - p - 1)))
			return fail(err, errlen, url, "host too long");
		colon = rb + 1 < slash && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != slash)
			return fail(err, errlen, url, "garbage after [IPv6] host");
	} else {
		colon = memchr(p, ':', (size_t)(slash - p));
		if (copy(u->host, sizeof(u->host), p,
			 (size_t)((colon ? colon : slash) - p)))
			return fail(err, errlen, url, "host too long");
	}
	if (!u->host[0])
		return fail(err, errlen, url, "missing host");
	if (colon && parse_int(colon + 1, (size_t)(slash - colon - 1), 1, 65535, &u->port))
		return fail(err, errlen, url, "port must be 1..65535");
	if (slash < end && slash + 1 < end &&
	    parse_int(slash + 1, (size_t)(end - slash - 1), 0, 1 << 20, &u->db))
		return fail(err, errlen, url, "database must be a number");
	return 0;
}
