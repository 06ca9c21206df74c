/* url.c - Redis URL parsing; see url.h. */
#include "queue/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The URL with its userinfo (user and password) replaced by "***": from
 * after "://" (or the start) up to the last '@', wherever that is, so a
 * password is never shown, even in a URL too broken to parse. */
static void redact(const char *url, char *out, size_t cap)
{
	const char *start = strstr(url, "://"), *at = strrchr(url, '@');

	start = start ? start + 3 : url;
	if (!at || at < start)
		snprintf(out, cap, "%s", url);
	else
		snprintf(out, cap, "%.*s***%s", (int)(start - url), url, at);
}

static int fail(char *err, size_t errlen, const char *url, const char *why)
{
	char shown[512];

	redact(url, shown, sizeof(shown));
	snprintf(err, errlen, "invalid redis URL \"%s\": %s", shown, why);
	return -1;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Copies [s, s+n) into dst (size cap), decoding %XX (RFC 3986). Returns 0,
 * -1 if it does not fit, -2 for a bad escape or an encoded NUL. */
static int copy_decoded(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -2;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -2;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
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
		int ru = 0, rp;

		/* userinfo = [user ":"] password, each %-decoded (RFC 3986). */
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			ru = copy_decoded(u->user, sizeof(u->user), p, (size_t)(colon - p));
			rp = copy_decoded(u->password, sizeof(u->password), colon + 1,
					  (size_t)(at - colon - 1));
		} else {
			rp = copy_decoded(u->password, sizeof(u->password), p, (size_t)(at - p));
		}
		if (ru == -2 || rp == -2)
			return fail(err, errlen, url,
				    "bad %-escape in user or password (%XX with two hex digits, not %00)");
		if (ru || rp)
			return fail(err, errlen, url, "user or password too long");
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
