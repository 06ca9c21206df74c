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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tcp_defaults),
		cmocka_unit_test(tcp_full),
		cmocka_unit_test(unix_socket),
		cmocka_unit_test(rejects_bad_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
