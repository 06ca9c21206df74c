/* config.c - OTEL_* environment parsing (see config.h). */
#include "sidecar/config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_ENDPOINT "http://localhost:4318"
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_INTERVAL_MS 60000L
#define DEFAULT_METRIC_TIMEOUT_MS 30000L

struct ctx {
	sc_getenv_fn get;
	void *get_ctx;
	sc_warn_fn warn;
	void *warn_ctx;
	/* A generic OTEL_EXPORTER_OTLP_* variable is read once per signal;
	 * its warning is given once (hashes of the messages given so far). */
	uint64_t said[32];
	int nsaid;
};

static void warnf(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(struct ctx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = msg; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (int i = 0; i < x->nsaid; i++)
		if (x->said[i] == h)
			return;
	if (x->nsaid < (int)(sizeof(x->said) / sizeof(x->said[0])))
		x->said[x->nsaid++] = h;
	if (x->warn)
		x->warn(x->warn_ctx, msg);
}

/* A URL libcurl will take, so a typo fails here with the variable's name
 * rather than at every export as "URL using bad/illegal format". */
static int url_invalid(const char *url, char *why, size_t whysz)
{
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		snprintf(why, whysz, "not an http:// or https:// URL");
		return 1;
	}
	CURLU *u = curl_url();
	if (!u)
		return 0; /* out of memory: libcurl says so at the first export */
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
	curl_url_cleanup(u);
	if (rc != CURLUE_OK) {
		snprintf(why, whysz, "%s", curl_url_strerror(rc));
		return 1;
	}
	return 0;
}

/* Unset and empty are the same thing for every OTEL_* variable. */
static const char *env(struct ctx *x, const char *name)
{
	const char *v = x->get(x->get_ctx, name);
	return v && *v ? v : NULL;
}

/* Per-signal variable first, then the generic one; *used names the winner. */
static const char *env_signal(struct ctx *x, const char *sig, const char *suffix,
			      char *used, size_t usedsz)
{
	char name[128];
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_%s", sig, suffix);
	const char *v = env(x, name);
	if (!v) {
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s", suffix);
		v = env(x, name);
	}
	snprintf(used, usedsz, "%s", name);
	return v;
}

static long parse_ms(struct ctx *x, const char *name, const char *v, long def)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || end == v || *end || n < 0) {
		warnf(x, "%s=\"%s\" is not a non-negative integer of milliseconds; using %ld",
		      name, v, def);
		return def;
	}
	return n;
}

/* A timeout: 0 or less would mean "never send" (the deadline passes
 * before the first attempt), so it is invalid like any other bad value. */
static long parse_timeout_ms(struct ctx *x, const char *name, const char *v, long def)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || end == v || *end || n <= 0) {
		warnf(x, "%s=\"%s\" is not a positive integer of milliseconds; using %ld", name, v, def);
		return def;
	}
	return n;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Trim and percent-decode [s, e) into out; -1 if it does not fit or is bad. */
static int decode_part(const char *s, const char *e, char *out, size_t outsz)
{
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	size_t o = 0;
	for (; s < e; s++) {
		int c = (unsigned char)*s;
		if (c == '%') {
			if (e - s < 3 || hexval(s[1]) < 0 || hexval(s[2]) < 0)
				return -1;
			c = hexval(s[1]) * 16 + hexval(s[2]);
			s += 2;
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int sc_config_parse_pairs(const char *s, char keys[][SC_ATTR_MAX],
			  char values[][SC_ATTR_MAX], int max)
{
	int n = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		const char *end = comma ? comma : s + strlen(s);
		const char *eq = memchr(s, '=', (size_t)(end - s));
		if (!eq || n >= max)
			return -1;
		if (decode_part(s, eq, keys[n], SC_ATTR_MAX) || !keys[n][0] ||
		    decode_part(eq + 1, end, values[n], SC_ATTR_MAX))
			return -1;
		n++;
		s = comma ? comma + 1 : end;
	}
	return n;
}

static void load_signal(struct ctx *x, struct sc_signal_config *sc, const char *sig,
			const char *path)
{
	char used[128];
	const char *v;

	/* Endpoint: per-signal as-is; generic base + v1/<signal>. */
	char name[128], why[128];
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_ENDPOINT", sig);
	if ((v = env(x, name))) {
		snprintf(sc->url, sizeof(sc->url), "%s", v);
	} else {
		const char *base = env(x, "OTEL_EXPORTER_OTLP_ENDPOINT");
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_ENDPOINT");
		if (!(v = base))
			base = DEFAULT_ENDPOINT;
		size_t bl = strlen(base);
		snprintf(sc->url, sizeof(sc->url), "%s%s%s", base,
			 bl && base[bl - 1] == '/' ? "" : "/", path);
	}
	if (url_invalid(sc->url, why, sizeof(why))) {
		/* Worded without the signal for the generic variable, so its
		 * two reads (metrics, traces) give one warning. */
		if (strcmp(name, "OTEL_EXPORTER_OTLP_ENDPOINT"))
			warnf(x, "%s=\"%s\": %s; using %s/%s", name, v, why, DEFAULT_ENDPOINT, path);
		else
			warnf(x, "%s=\"%s\": %s; using %s", name, v, why, DEFAULT_ENDPOINT);
		snprintf(sc->url, sizeof(sc->url), "%s/%s", DEFAULT_ENDPOINT, path);
	}

	sc->nheaders = 0;
	if ((v = env_signal(x, sig, "HEADERS", used, sizeof(used)))) {
		char k[SC_MAX_HEADERS][SC_ATTR_MAX], val[SC_MAX_HEADERS][SC_ATTR_MAX];
		int n = sc_config_parse_pairs(v, k, val, SC_MAX_HEADERS);
		if (n < 0) {
			warnf(x, "%s is not a list of key=value pairs (at most %d); sending no extra headers",
			      used, SC_MAX_HEADERS);
		} else {
			for (int i = 0; i < n; i++) {
				/* A header name cannot hold ':' or controls; a value no CR/LF. */
				if (strpbrk(k[i], ": \t\r\n") || strpbrk(val[i], "\r\n")) {
					warnf(x, "%s: header \"%s\" is not a valid HTTP header; skipped",
					      used, k[i]);
					continue;
				}
				snprintf(sc->headers[sc->nheaders++], SC_HEADER_MAX, "%.255s: %.255s", k[i], val[i]);
			}
		}
	}

	sc->timeout_ms = DEFAULT_TIMEOUT_MS;
	if ((v = env_signal(x, sig, "TIMEOUT", used, sizeof(used))))
		sc->timeout_ms = parse_timeout_ms(x, used, v, DEFAULT_TIMEOUT_MS);

	sc->gzip = false;
	if ((v = env_signal(x, sig, "COMPRESSION", used, sizeof(used)))) {
		if (!strcasecmp(v, "gzip"))
			sc->gzip = true;
		else if (strcasecmp(v, "none"))
			warnf(x, "%s=\"%s\" is not gzip or none; using none", used, v);
	}

	sc->protocol = SC_PROTOCOL_PROTOBUF;
	if ((v = env_signal(x, sig, "PROTOCOL", used, sizeof(used)))) {
		if (!strcmp(v, "http/json"))
			sc->protocol = SC_PROTOCOL_JSON;
		else if (strcmp(v, "http/protobuf"))
			warnf(x, "%s=\"%s\" is not supported (http/protobuf, http/json); using http/protobuf",
			      used, v);
	}

	sc->certificate[0] = '\0';
	if ((v = env_signal(x, sig, "CERTIFICATE", used, sizeof(used))))
		snprintf(sc->certificate, sizeof(sc->certificate), "%s", v);
}

void sc_config_load(struct sc_config *c, sc_getenv_fn get, void *get_ctx,
		    sc_warn_fn warn, void *warn_ctx)
{
	struct ctx x = { .get = get, .get_ctx = get_ctx, .warn = warn, .warn_ctx = warn_ctx };
	const char *v;

	memset(c, 0, sizeof(*c));
	if ((v = env(&x, "OTEL_SDK_DISABLED"))) {
		if (!strcasecmp(v, "true"))
			c->sdk_disabled = true;
		else if (strcasecmp(v, "false"))
			warnf(&x, "OTEL_SDK_DISABLED=\"%s\" is not true or false; using false", v);
	}

	load_signal(&x, &c->signal[SC_SIGNAL_METRICS], "METRICS", "v1/metrics");
	load_signal(&x, &c->signal[SC_SIGNAL_TRACES], "TRACES", "v1/traces");

	c->nresource = 0;
	if ((v = env(&x, "OTEL_RESOURCE_ATTRIBUTES"))) {
		int n = sc_config_parse_pairs(v, c->resource_keys, c->resource_values,
					      SC_MAX_RESOURCE_ATTRS);
		if (n < 0)
			warnf(&x, "OTEL_RESOURCE_ATTRIBUTES is not a list of key=value pairs (at most %d, values percent-encoded); ignored",
			      SC_MAX_RESOURCE_ATTRS);
		else
			c->nresource = n;
	}

	/* OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES. */
	snprintf(c->service_name, sizeof(c->service_name), "jobq-worker");
	for (int i = 0; i < c->nresource; i++)
		if (!strcmp(c->resource_keys[i], "service.name"))
			snprintf(c->service_name, sizeof(c->service_name), "%s", c->resource_values[i]);
	if ((v = env(&x, "OTEL_SERVICE_NAME")))
		snprintf(c->service_name, sizeof(c->service_name), "%s", v);

	c->export_interval_ms = DEFAULT_INTERVAL_MS;
	if ((v = env(&x, "OTEL_METRIC_EXPORT_INTERVAL"))) {
		c->export_interval_ms = parse_ms(&x, "OTEL_METRIC_EXPORT_INTERVAL", v, DEFAULT_INTERVAL_MS);
		if (c->export_interval_ms == 0) {
			warnf(&x, "OTEL_METRIC_EXPORT_INTERVAL=0 is not a usable interval; using %ld",
			      DEFAULT_INTERVAL_MS);
			c->export_interval_ms = DEFAULT_INTERVAL_MS;
		}
	}
	c->metric_export_timeout_ms = DEFAULT_METRIC_TIMEOUT_MS;
	if ((v = env(&x, "OTEL_METRIC_EXPORT_TIMEOUT")))
		c->metric_export_timeout_ms =
			parse_timeout_ms(&x, "OTEL_METRIC_EXPORT_TIMEOUT", v, DEFAULT_METRIC_TIMEOUT_MS);

	c->temporality = SC_TEMPORALITY_CUMULATIVE;
	if ((v = env(&x, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"))) {
		if (!strcasecmp(v, "delta"))
			c->temporality = SC_TEMPORALITY_DELTA;
		else if (!strcasecmp(v, "lowmemory"))
			c->temporality = SC_TEMPORALITY_LOWMEMORY;
		else if (strcasecmp(v, "cumulative"))
			warnf(&x, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=\"%s\" is not cumulative, delta or lowmemory; using cumulative",
			      v);
	}

	c->histogram = SC_HIST_EXPONENTIAL;
	if ((v = env(&x, "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"))) {
		if (!strcasecmp(v, "explicit_bucket_histogram"))
			c->histogram = SC_HIST_EXPLICIT;
		else if (strcasecmp(v, "base2_exponential_bucket_histogram"))
			warnf(&x, "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=\"%s\" is not explicit_bucket_histogram or base2_exponential_bucket_histogram; using base2_exponential_bucket_histogram",
			      v);
	}
}
