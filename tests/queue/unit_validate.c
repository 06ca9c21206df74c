/* unit_validate.c - UTF-8, names, traceparent, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "queue/validate.h"

static void utf8(void **s)
{
	(void)s;
	assert_true(jobq_utf8_valid("plain", 5));
	assert_true(jobq_utf8_valid("caf\xc3\xa9", 5));
	assert_true(jobq_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(jobq_utf8_valid("\xc3", 1));            /* truncated */
	assert_false(jobq_utf8_valid("\xc0\xaf", 2));        /* overlong */
	assert_false(jobq_utf8_valid("\xed\xa0\x80", 3));    /* surrogate */
	assert_false(jobq_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(jobq_utf8_valid("\xff", 1));
}

static void names(void **s)
{
	char err[128], big[70];

	(void)s;
	memset(big, 'x', 65);
	big[65] = '\0';
	assert_int_equal(jobq_check_name("tenant_id", "acme-1", 64, err, sizeof(err)), 0);
	assert_int_equal(jobq_check_name("tenant_id", "", 64, err, sizeof(err)), -1);
	assert_string_equal(err, "tenant_id must not be empty");
	assert_int_equal(jobq_check_name("tenant_id", big, 64, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 64 bytes"));
	assert_int_equal(jobq_check_name("type", "a\tb", 64, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "control"));
	assert_int_equal(jobq_check_name("type", "\xff", 64, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "UTF-8"));
}

static void traceparent(void **s)
{
	uint8_t t[16], sp[8], f;

	(void)s;
	assert_int_equal(jobq_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
						t, sp, &f), 0);
	assert_int_equal(t[0], 0x4b);
	assert_int_equal(t[15], 0x36);
	assert_int_equal(sp[7], 0xb7);
	assert_int_equal(f, 1);
	assert_int_equal(jobq_be64(t), 0x4bf92f3577b34da6ull);
	/* all-zero ids, uppercase, wrong version/length are invalid */
	assert_int_equal(jobq_traceparent_parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", t, sp, &f), -1);
	assert_int_equal(jobq_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", t, sp, &f), -1);
	assert_int_equal(jobq_traceparent_parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", t, sp, &f), -1);
	assert_int_equal(jobq_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, sp, &f), -1);
	assert_int_equal(jobq_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", t, sp, &f), -1);
}

static void hex(void **s)
{
	uint8_t b[3] = { 0x00, 0xab, 0xff }, back[3];
	char out[7];

	(void)s;
	jobq_hex_encode(b, 3, out);
	assert_string_equal(out, "00abff");
	assert_int_equal(jobq_hex_decode(out, 6, back, 3), 0);
	assert_memory_equal(b, back, 3);
	assert_int_equal(jobq_hex_decode("0g", 2, back, 1), -1);
	assert_int_equal(jobq_hex_decode("abc", 3, back, 2), -1);
}

static void utf8_cut_on_character_boundary(void **s)
{
	char b[32];

	(void)s;
	snprintf(b, sizeof(b), "x\xc3\xa9\xc3\xa9");
	jobq_utf8_cut(b, 4); /* would split the second e-acute */
	assert_string_equal(b, "x\xc3\xa9");
	snprintf(b, sizeof(b), "x\xc3\xa9\xc3\xa9");
	jobq_utf8_cut(b, 5);
	assert_string_equal(b, "x\xc3\xa9\xc3\xa9");
	snprintf(b, sizeof(b), "ab\xf0\x9f\x98"); /* snprintf already cut an emoji */
	jobq_utf8_cut(b, 16);
	assert_string_equal(b, "ab");
	snprintf(b, sizeof(b), "ab\xe2\x82\xac");
	jobq_utf8_cut(b, 4);
	assert_string_equal(b, "ab");
	snprintf(b, sizeof(b), "plain ascii");
	jobq_utf8_cut(b, 5);
	assert_string_equal(b, "plain");
	snprintf(b, sizeof(b), "\x80\x80\x80\x80"); /* not UTF-8 at all: left alone */
	jobq_utf8_cut(b, 16);
	assert_int_equal(strlen(b), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8),
		cmocka_unit_test(names),
		cmocka_unit_test(traceparent),
		cmocka_unit_test(hex),
		cmocka_unit_test(utf8_cut_on_character_boundary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
