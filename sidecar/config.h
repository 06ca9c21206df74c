/*
 * config.h - the standard OTEL_* environment, parsed once at start.
 *
 * Pure: the environment is read through a callback, and every problem is
 * reported through the warn callback (the value then takes its default, as
 * the OpenTelemetry specification asks), so tests drive it with a table.
 * Precedence: OTEL_EXPORTER_OTLP_<SIGNAL>_X over OTEL_EXPORTER_OTLP_X over
 * the default. A per-signal endpoint is used as-is; the generic one gets
 * "v1/metrics" or "v1/traces" appended.
 */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define SC_URL_MAX 2048
#define SC_MAX_HEADERS 32
#define SC_HEADER_MAX 1024
#define SC_MAX_RESOURCE_ATTRS 32
#define SC_ATTR_MAX 256

enum sc_protocol { SC_PROTOCOL_PROTOBUF, SC_PROTOCOL_JSON };
enum sc_temporality { SC_TEMPORALITY_CUMULATIVE, SC_TEMPORALITY_DELTA, SC_TEMPORALITY_LOWMEMORY };
enum sc_hist_agg { SC_HIST_EXPONENTIAL, SC_HIST_EXPLICIT };
enum sc_signal { SC_SIGNAL_METRICS, SC_SIGNAL_TRACES, SC_SIGNAL_COUNT };

struct sc_signal_config {
	char url[SC_URL_MAX];
	char headers[SC_MAX_HEADERS][SC_HEADER_MAX]; /* "Key: value", curl form */
	int nheaders;
	long timeout_ms;           /* per export, retries included */
	bool gzip;
	enum sc_protocol protocol;
	char certificate[SC_URL_MAX]; /* CA file for TLS verification, "" = system */
};

struct sc_config {
	bool sdk_disabled;
	struct sc_signal_config signal[SC_SIGNAL_COUNT];
	char service_name[SC_ATTR_MAX];
	char resource_keys[SC_MAX_RESOURCE_ATTRS][SC_ATTR_MAX];
	char resource_values[SC_MAX_RESOURCE_ATTRS][SC_ATTR_MAX];
	int nresource;
	long export_interval_ms;
	long metric_export_timeout_ms;
	enum sc_temporality temporality;
	enum sc_hist_agg histogram;
};

typedef const char *(*sc_getenv_fn)(void *ctx, const char *name);
typedef void (*sc_warn_fn)(void *ctx, const char *msg);

/* Fills *c from the environment. Never fails: bad values warn and default. */
void sc_config_load(struct sc_config *c, sc_getenv_fn get, void *get_ctx,
		    sc_warn_fn warn, void *warn_ctx);

/* Splits "k1=v1,k2=v2" (values percent-decoded, blanks trimmed) as the spec
 * defines for OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES.
 * Returns the number of pairs stored (<= max) or -1 on a malformed list
 * (then nothing should be used). */
int sc_config_parse_pairs(const char *s, char keys[][SC_ATTR_MAX],
			  char values[][SC_ATTR_MAX], int max);

#endif
