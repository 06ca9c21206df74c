/* test_utf8 - UTF-8 validation and repair (maximal subparts -> U+FFFD). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sidecar/utf8.h"

static void check_n(const char *in, size_t n, const char *want, size_t wantlen)
{
	char out[256];
	size_t len = sc_utf8_repair(in, n, out);
	assert_int_equal(len, wantlen);
	assert_memory_equal(out, want, len);
	assert_true(sc_utf8_valid(out, len));
}

static void check(const char *in, size_t n, const char *want)
{
	check_n(in, n, want, strlen(want));
}

#define R "\xEF\xBF\xBD"

static void test_valid_text_passes_unchanged(void **st)
{
	(void)st;
	const char *s = "tenant-\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 ascii";
	assert_true(sc_utf8_valid(s, strlen(s)));
	check(s, strlen(s), s);
	check("", 0, "");
}

static void test_lone_bytes(void **st)
{
	(void)st;
	check("a\xFF" "b", 3, "a" R "b");
	check("\x80", 1, R);
	check("\xC0\xAF", 2, R R); /* overlong: both bytes invalid */
	check("\xF5\x80", 2, R R);
}

static void test_truncated_sequence_is_one_replacement(void **st)
{
	(void)st;
	check("\xE2\x82", 2, R);
	check("\xF0\x9F\x98" "x", 4, R "x");
	check("x\xE2", 2, "x" R);
}

static void test_surrogates_and_out_of_range(void **st)
{
	(void)st;
	check("\xED\xA0\x80", 3, R R R); /* U+D800 */
	check("\xF4\x90\x80\x80", 4, R R R R); /* > U+10FFFF */
	assert_false(sc_utf8_valid("\xED\xA0\x80", 3));
}

static void test_embedded_nul_is_kept(void **st)
{
	(void)st;
	check_n("a\0b", 3, "a\0b", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_text_passes_unchanged),
		cmocka_unit_test(test_lone_bytes),
		cmocka_unit_test(test_truncated_sequence_is_one_replacement),
		cmocka_unit_test(test_surrogates_and_out_of_range),
		cmocka_unit_test(test_embedded_nul_is_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
