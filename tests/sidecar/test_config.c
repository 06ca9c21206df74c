/* test_config - OTEL_* parsing: defaults, precedence, bad values warn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "sidecar/config.h"

struct env {
	const char *kv[32][2];
	int nwarn;
	char warns[8192]; /* all warnings, newline-separated */
};

static const char *get(void *ctx, const char *name)
{
	struct env *e = ctx;
	for (int i = 0; i < 32 && e->kv[i][0]; i++)
		if (!strcmp(e->kv[i][0], name))
			return e->kv[i][1];
	return NULL;
}

static void warn(void *ctx, const char *msg)
{
	struct env *e = ctx;
	e->nwarn++;
	size_t l = strlen(e->warns);
	snprintf(e->warns + l, sizeof(e->warns) - l, "%s\n", msg);
}

static struct sc_config cfg;

static void load(struct env *e)
{
	sc_config_load(&cfg, get, e, warn, e);
}

static void test_defaults(void **st)
{
	(void)st;
	struct env e = { 0 };
	load(&e);
	assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].url, "http://localhost:4318/v1/metrics");
	assert_string_equal(cfg.signal[SC_SIGNAL_TRACES].url, "http://localhost:4318/v1/traces");
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].timeout_ms, 10000);
	assert_false(cfg.signal[SC_SIGNAL_METRICS].gzip);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].protocol, SC_PROTOCOL_PROTOBUF);
	assert_int_equal(cfg.export_interval_ms, 60000);
	assert_int_equal(cfg.metric_export_timeout_ms, 30000);
	assert_int_equal(cfg.temporality, SC_TEMPORALITY_CUMULATIVE);
	assert_int_equal(cfg.histogram, SC_HIST_EXPONENTIAL);
	assert_string_equal(cfg.service_name, "jobq-worker");
	assert_false(cfg.sdk_disabled);
	assert_int_equal(e.nwarn, 0);
}

static void test_generic_endpoint_gets_signal_path(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_ENDPOINT", "https://c.example:4318/base/" } } };
	load(&e);
	assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].url, "https://c.example:4318/base/v1/metrics");
	struct env e2 = { .kv = { { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1" } } };
	load(&e2);
	assert_string_equal(cfg.signal[SC_SIGNAL_TRACES].url, "http://h:1/v1/traces");
}

static void test_per_signal_endpoint_used_as_is_and_wins(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318" },
				 { "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/custom" } } };
	load(&e);
	assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].url, "http://m:9/custom");
	assert_string_equal(cfg.signal[SC_SIGNAL_TRACES].url, "http://generic:4318/v1/traces");
}

static void test_per_signal_options_override_generic(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_TIMEOUT", "2000" },
				 { "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500" },
				 { "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip" },
				 { "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none" },
				 { "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json" },
				 { "OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=two%20words" },
				 { "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "c=3" },
				 { "OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem" } } };
	load(&e);
	struct sc_signal_config *m = &cfg.signal[SC_SIGNAL_METRICS], *t = &cfg.signal[SC_SIGNAL_TRACES];
	assert_int_equal(m->timeout_ms, 2000);
	assert_int_equal(t->timeout_ms, 500);
	assert_false(m->gzip);
	assert_true(t->gzip);
	assert_int_equal(m->protocol, SC_PROTOCOL_JSON);
	assert_int_equal(m->nheaders, 2);
	assert_string_equal(m->headers[0], "a: 1");
	assert_string_equal(m->headers[1], "b: two words");
	assert_int_equal(t->nheaders, 1);
	assert_string_equal(t->headers[0], "c: 3");
	assert_string_equal(t->certificate, "/etc/ca.pem");
	assert_int_equal(e.nwarn, 0);
}

static void test_bad_values_warn_and_default(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_TIMEOUT", "10s" },
				 { "OTEL_EXPORTER_OTLP_COMPRESSION", "zstd" },
				 { "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc" },
				 { "OTEL_METRIC_EXPORT_INTERVAL", "-5" },
				 { "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes" },
				 { "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "bogus" },
				 { "OTEL_SDK_DISABLED", "yes" },
				 { "OTEL_EXPORTER_OTLP_HEADERS", "novalue" },
				 { "OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x" } } };
	load(&e);
	/* Each bad variable warns once, though the generic OTLP ones are
	 * read for both signals. */
	assert_int_equal(e.nwarn, 9);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].timeout_ms, 10000);
	assert_false(cfg.signal[SC_SIGNAL_METRICS].gzip);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].protocol, SC_PROTOCOL_PROTOBUF);
	assert_int_equal(cfg.export_interval_ms, 60000);
	assert_int_equal(cfg.temporality, SC_TEMPORALITY_CUMULATIVE);
	assert_int_equal(cfg.histogram, SC_HIST_EXPONENTIAL);
	assert_false(cfg.sdk_disabled);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].nheaders, 0);
	assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].url, "http://localhost:4318/v1/metrics");
	assert_non_null(strstr(e.warns, "ftp://x"));
	assert_non_null(strstr(e.warns, "OTEL_EXPORTER_OTLP_COMPRESSION=\"zstd\""));
}

static void test_malformed_endpoints_warn_once_and_default(void **st)
{
	(void)st;
	/* libcurl would refuse these at every export ("URL using bad/illegal
	 * format"); the user hears which variable is wrong at start. */
	const char *bad[] = { "http://[::1", "http://localhost:99999", "https://exa mple.com" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_ENDPOINT", bad[i] } } };
		load(&e);
		assert_int_equal(e.nwarn, 1);
		assert_non_null(strstr(e.warns, "OTEL_EXPORTER_OTLP_ENDPOINT=\""));
		assert_non_null(strstr(e.warns, bad[i]));
		assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].url, "http://localhost:4318/v1/metrics");
		assert_string_equal(cfg.signal[SC_SIGNAL_TRACES].url, "http://localhost:4318/v1/traces");
	}
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4318" },
				 { "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:80:80/v1/traces" } } };
	load(&e);
	assert_int_equal(e.nwarn, 1);
	assert_non_null(strstr(e.warns, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=\"http://t:80:80/v1/traces\""));
	assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].url, "http://[::1]:4318/v1/metrics");
	assert_string_equal(cfg.signal[SC_SIGNAL_TRACES].url, "http://localhost:4318/v1/traces");
}

static void test_zero_or_negative_timeouts_warn_and_default(void **st)
{
	(void)st;
	/* 0 would keep every request queued forever: invalid, not "no timeout". */
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_TIMEOUT", "0" },
				 { "OTEL_METRIC_EXPORT_TIMEOUT", "0" } } };
	load(&e);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].timeout_ms, 10000);
	assert_int_equal(cfg.signal[SC_SIGNAL_TRACES].timeout_ms, 10000);
	assert_int_equal(cfg.metric_export_timeout_ms, 30000);
	assert_int_equal(e.nwarn, 2);
	assert_non_null(strstr(e.warns, "OTEL_EXPORTER_OTLP_TIMEOUT=\"0\" is not a positive integer of milliseconds; using 10000"));
	assert_non_null(strstr(e.warns, "OTEL_METRIC_EXPORT_TIMEOUT=\"0\" is not a positive integer of milliseconds; using 30000"));
	struct env e2 = { .kv = { { "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1" },
				  { "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0" },
				  { "OTEL_METRIC_EXPORT_TIMEOUT", "-30000" } } };
	load(&e2);
	assert_int_equal(cfg.signal[SC_SIGNAL_TRACES].timeout_ms, 10000);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].timeout_ms, 10000);
	assert_int_equal(cfg.metric_export_timeout_ms, 30000);
	assert_int_equal(e2.nwarn, 3);
	assert_non_null(strstr(e2.warns, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT=\"0\""));
	/* 1 ms is odd but valid. */
	struct env e3 = { .kv = { { "OTEL_EXPORTER_OTLP_TIMEOUT", "1" } } };
	load(&e3);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].timeout_ms, 1);
	assert_int_equal(e3.nwarn, 0);
}

static void test_header_injection_is_refused(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_HEADERS", "ok=1,bad%0D%0AX-Evil=2" } } };
	load(&e);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].nheaders, 1);
	assert_string_equal(cfg.signal[SC_SIGNAL_METRICS].headers[0], "ok: 1");
	assert_true(e.nwarn >= 1);
}

static void test_service_name_and_resource_attributes(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_RESOURCE_ATTRIBUTES", "service.name=a, deployment.environment = prod%2C eu " } } };
	load(&e);
	assert_string_equal(cfg.service_name, "a");
	assert_int_equal(cfg.nresource, 2);
	assert_string_equal(cfg.resource_keys[1], "deployment.environment");
	assert_string_equal(cfg.resource_values[1], "prod, eu");
	struct env e2 = { .kv = { { "OTEL_RESOURCE_ATTRIBUTES", "service.name=a" }, { "OTEL_SERVICE_NAME", "b" } } };
	load(&e2);
	assert_string_equal(cfg.service_name, "b");
	struct env e3 = { .kv = { { "OTEL_RESOURCE_ATTRIBUTES", "k=%zz" } } };
	load(&e3);
	assert_int_equal(cfg.nresource, 0);
	assert_int_equal(e3.nwarn, 1);
}

static void test_switches(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_SDK_DISABLED", "TRUE" },
				 { "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta" },
				 { "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "explicit_bucket_histogram" },
				 { "OTEL_METRIC_EXPORT_INTERVAL", "250" },
				 { "OTEL_METRIC_EXPORT_TIMEOUT", "700" } } };
	load(&e);
	assert_true(cfg.sdk_disabled);
	assert_int_equal(cfg.temporality, SC_TEMPORALITY_DELTA);
	assert_int_equal(cfg.histogram, SC_HIST_EXPLICIT);
	assert_int_equal(cfg.export_interval_ms, 250);
	assert_int_equal(cfg.metric_export_timeout_ms, 700);
	assert_int_equal(e.nwarn, 0);
}

static void test_empty_value_is_unset(void **st)
{
	(void)st;
	struct env e = { .kv = { { "OTEL_EXPORTER_OTLP_TIMEOUT", "" }, { "OTEL_SERVICE_NAME", "" } } };
	load(&e);
	assert_int_equal(cfg.signal[SC_SIGNAL_METRICS].timeout_ms, 10000);
	assert_string_equal(cfg.service_name, "jobq-worker");
	assert_int_equal(e.nwarn, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_generic_endpoint_gets_signal_path),
		cmocka_unit_test(test_per_signal_endpoint_used_as_is_and_wins),
		cmocka_unit_test(test_per_signal_options_override_generic),
		cmocka_unit_test(test_bad_values_warn_and_default),
		cmocka_unit_test(test_malformed_endpoints_warn_once_and_default),
		cmocka_unit_test(test_zero_or_negative_timeouts_warn_and_default),
		cmocka_unit_test(test_header_injection_is_refused),
		cmocka_unit_test(test_service_name_and_resource_attributes),
		cmocka_unit_test(test_switches),
		cmocka_unit_test(test_empty_value_is_unset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
