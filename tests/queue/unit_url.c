/* unit_url.c - Redis URL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "queue/url.h"

static void tcp_defaults(void **s)
{
	struct jobq_url u;
	char err[128];

	(void)s;
	assert_int_equal(jobq_url_parse("redis://localhost", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "localhost");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);
	assert_string_equal(u.password, "");
}

static void tcp_full(void **s)
{
	struct jobq_url u;
	char err[128];

	(void)s;
	assert_int_equal(jobq_url_parse("redis://app:s3cr@t@10.0.0.1:6380/3", &u, err, sizeof(err)), 0);
	assert_string_equal(u.user, "app");
	assert_string_equal(u.password, "s3cr@t");
	assert_string_equal(u.host, "10.0.0.1");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 3);
	assert_int_equal(jobq_url_parse("redis://:pw@h", &u, err, sizeof(err)), 0);
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "pw");
	assert_int_equal(jobq_url_parse("redis://[::1]:7000", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 7000);
}

static void unix_socket(void **s)
{
	struct jobq_url u;
	char err[128];

	(void)s;
	assert_int_equal(jobq_url_parse("unix:///run/redis.sock?db=2", &u, err, sizeof(err)), 0);
	assert_string_equal(u.path, "/run/redis.sock");
	assert_string_equal(u.host, "");
	assert_int_equal(u.db, 2);
}

static void rejects_bad_urls(void **s)
{
	static const char *bad[] = { "", "http://x", "rediss://x", "redis://", "redis://h:0",
				     "redis://h:99999", "redis://h:12x", "redis://h/x", "unix://rel",
				     "unix:///s?database=1", "redis://[::1" };
	struct jobq_url u;
	char err[128];

	(void)s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (jobq_url_parse(bad[i], &u, err, sizeof(err)) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(err, "invalid redis URL"));
	}
}

static void userinfo_is_percent_decoded(void **s)
{
	struct jobq_url u;
	char err[256];

	(void)s;
	assert_int_equal(jobq_url_parse("redis://us%65r:p%40ss%3Aw%2fd%25@h:1/2", &u, err, sizeof(err)), 0);
	assert_string_equal(u.user, "user");
	assert_string_equal(u.password, "p@ss:w/d%");
	assert_string_equal(u.host, "h");
	assert_int_equal(u.port, 1);
	assert_int_equal(u.db, 2);
	assert_int_equal(jobq_url_parse("redis://%E2%82%AC@h", &u, err, sizeof(err)), 0);
	assert_string_equal(u.password, "\xe2\x82\xac");
	/* Bad escapes and an encoded NUL are errors (that do not show it). */
	static const char *bad[] = { "redis://u:se%zzcret@h", "redis://u:secret%4@h",
				     "redis://u:secret%@h", "redis://u:sec%00ret@h", "redis://se%g1cret@h" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jobq_url_parse(bad[i], &u, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "%-escape"));
		if (strstr(err, "cret"))
			fail_msg("error shows the password: %s", err);
	}
}

/* No error message shows the password (or the user), whatever is wrong. */
static void errors_redact_userinfo(void **s)
{
	static const char *bad[] = {
		"redis://app:hunter2@h:0",         "redis://app:hunter2@h:99999/0",
		"redis://app:hunter2@h/notadb",   "redis://app:hunter2@[::1",
		"rediss://app:hunter2@h",         "http://app:hunter2@h",
		"redis://app:hunter2@",           "redis://app:hunter2@[::1]x",
		"app:hunter2@h",                  "redis://app:hun/ter2@h:0",
		"redis://app:hunter2@h:1?x@y:0",
	};
	struct jobq_url u;
	char err[256], pw[300];

	(void)s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jobq_url_parse(bad[i], &u, err, sizeof(err)), -1);
		if (strstr(err, "hunter2") || strstr(err, "ter2") || strstr(err, "app:"))
			fail_msg("error for URL %zu shows the userinfo: %s", i, err);
		assert_non_null(strstr(err, "***"));
	}
	/* A password too long to store: still not shown. */
	memcpy(pw, "redis://u:", 10);
	memset(pw + 10, 'S', 280);
	memcpy(pw + 290, "@h", 3);
	assert_int_equal(jobq_url_parse(pw, &u, err, sizeof(err)), -1);
	assert_null(strstr(err, "SSSS"));
	assert_non_null(strstr(err, "too long"));
	/* Without userinfo, the URL is shown as given. */
	assert_int_equal(jobq_url_parse("redis://h:0", &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"redis://h:0\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tcp_defaults),
		cmocka_unit_test(tcp_full),
		cmocka_unit_test(unix_socket),
		cmocka_unit_test(rejects_bad_urls),
		cmocka_unit_test(userinfo_is_percent_decoded),
		cmocka_unit_test(errors_redact_userinfo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
