/* unit_json.c - the strict JSON-lines reader of `jobq enqueue --stdin`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "queue/cli/json.h"

static int parse(const char *text, struct json_field *f, size_t max, char *buf, char *err)
{
	snprintf(buf, 512, "%s", text);
	return json_parse_object(buf, strlen(buf), f, max, err, 128);
}

static void seed_job_line(void **s)
{
	struct json_field f[8];
	char buf[512], err[128];
	int n = parse("{\"tenant_id\": \"acme\", \"type\":\"export\", \"payload\": {\"rows\": [1, 2.5e3, -0]},"
		      " \"priority\":\"high\", \"max_attempts\": 3, \"ok\": true, \"x\": null}",
		      f, 8, buf, err);
	const struct json_field *p;

	(void)s;

	assert_int_equal(n, 7);
	assert_string_equal(json_get(f, 7, "tenant_id")->str, "acme");
	p = json_get(f, 7, "payload");
	assert_int_equal(p->type, JSON_OBJECT);
	assert_int_equal(p->raw_len, strlen("{\"rows\": [1, 2.5e3, -0]}"));
	assert_memory_equal(p->raw, "{\"rows\": [1, 2.5e3, -0]}", p->raw_len);
	assert_int_equal(json_get(f, 7, "max_attempts")->type, JSON_NUMBER);
	assert_int_equal(json_get(f, 7, "ok")->type, JSON_TRUE);
	assert_int_equal(json_get(f, 7, "x")->type, JSON_NULL);
	assert_null(json_get(f, 7, "missing"));
}

static void string_escapes_decoded(void **s)
{
	struct json_field f[2];
	char buf[512], err[128];

	(void)s;
	assert_int_equal(parse("{\"k\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\/\"}", f, 2, buf, err), 1);
	assert_string_equal(f[0].str, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80/");
	assert_int_equal(parse("{\"k\":\"nul\\u0000x\"}", f, 2, buf, err), 1);
	assert_int_equal(f[0].str_len, 5);
	/* Raw UTF-8 is kept as it is, beside escapes. */
	assert_int_equal(parse("{\"k\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\\n\xe6\x97\xa5\"}", f, 2, buf, err), 1);
	assert_string_equal(f[0].str, "caf\xc3\xa9 \xf0\x9f\x98\x80\n\xe6\x97\xa5");
}

static void rejects_invalid(void **s)
{
	static const char *bad[] = {
		"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}",
		"{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":tru}", "{\"a\":1} x",
		"{\"a\":1,\"a\":2}", "{\"a\":\"tab\there\"}", "{a:1}", "{\"a\":[1,]}",
		/* Not UTF-8 (RFC 8259 8.1): a stray byte, a cut sequence, an
		 * overlong '/', an encoded surrogate, in a value or a nested one. */
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}", "{\"a\":{\"b\":[\"\x80\"]}}", "{\"\xfe\":1}",
	};
	struct json_field f[4];
	char buf[512], err[128];

	(void)s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], f, 4, buf, err) != -1)
			fail_msg("accepted %s", bad[i]);
}

static void depth_and_field_limits(void **s)
{
	struct json_field f[2];
	char buf[512], err[128], deep[300];
	size_t o = 0;

	(void)s;
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"a\":");
	for (int i = 0; i < 100; i++)
		deep[o++] = '[';
	for (int i = 0; i < 100; i++)
		deep[o++] = ']';
	snprintf(deep + o, sizeof(deep) - o, "}");
	assert_int_equal(parse(deep, f, 2, buf, err), -1);
	assert_non_null(strstr(err, "deeply"));
	assert_int_equal(parse("{\"a\":1,\"b\":2,\"c\":3}", f, 2, buf, err), -1);
	assert_int_equal(parse("  {}  ", f, 2, buf, err), 0);
}

static void quote_is_valid_json_and_utf8(void **s)
{
	char out[256];
	size_t n;

	(void)s;
	n = json_quote("plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 1, out, sizeof(out));
	assert_string_equal(out, "\"plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	assert_int_equal(n, strlen(out));
	json_quote("a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7f", 1, out, sizeof(out));
	assert_string_equal(out, "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\x7f\"");
	/* Not UTF-8: a lone continuation byte, a truncated sequence, an
	 * overlong, a surrogate, a byte that is never UTF-8. */
	json_quote("x\x80y\xc3z\xc0\xafw\xed\xa0\x80v\xff", 0, out, sizeof(out));
	assert_string_equal(out, "x\\ufffdy\\ufffdz\\ufffd\\ufffdw\\ufffd\\ufffd\\ufffdv\\ufffd");
	/* The decoder of `jobq enqueue --stdin` reads it back. */
	{
		struct json_field f[2];
		char buf[256], err[128];

		json_quote("bad\ntype \"q\" \x01", 1, out, sizeof(out));
		snprintf(buf, sizeof(buf), "{\"k\": %s}", out);
		assert_int_equal(json_parse_object(buf, strlen(buf), f, 2, err, sizeof(err)), 1);
		assert_string_equal(f[0].str, "bad\ntype \"q\" \x01");
	}
	/* Truncation keeps escapes whole and reports the full length. */
	n = json_quote("ab\ncd", 1, out, 5);
	assert_int_equal(n, 8);
	assert_string_equal(out, "\"ab");
	n = json_quote("ab\ncd", 1, out, 6);
	assert_string_equal(out, "\"ab\\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_job_line),
		cmocka_unit_test(string_escapes_decoded),
		cmocka_unit_test(rejects_invalid),
		cmocka_unit_test(depth_and_field_limits),
		cmocka_unit_test(quote_is_valid_json_and_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
