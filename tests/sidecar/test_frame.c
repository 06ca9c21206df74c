/* test_frame - the agent socket frame reader: splits, bounds, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sidecar/frame.h"

static void feed(struct sc_frame_reader *r, const uint8_t *p, size_t n)
{
	while (n) {
		size_t avail;
		uint8_t *dst = sc_frame_space(r, &avail);
		assert_non_null(dst);
		assert_true(avail > 0);
		size_t k = n < avail ? n : avail;
		memcpy(dst, p, k);
		sc_frame_commit(r, k);
		p += k;
		n -= k;
	}
}

static void test_two_frames_in_one_read(void **st)
{
	(void)st;
	struct sc_frame_reader r;
	sc_frame_reader_init(&r, 1024);
	const uint8_t in[] = { 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 3, 'a', 'b', 'c' };
	feed(&r, in, sizeof(in));
	const uint8_t *f;
	size_t n;
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_READY);
	assert_int_equal(n, 2);
	assert_memory_equal(f, "hi", 2);
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_READY);
	assert_int_equal(n, 3);
	assert_memory_equal(f, "abc", 3);
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_NEED_MORE);
	sc_frame_reader_free(&r);
}

static void test_byte_by_byte(void **st)
{
	(void)st;
	struct sc_frame_reader r;
	sc_frame_reader_init(&r, 1024);
	const uint8_t in[] = { 0, 0, 0, 5, '1', '2', '3', '4', '5' };
	const uint8_t *f;
	size_t n;
	for (size_t i = 0; i < sizeof(in); i++) {
		assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_NEED_MORE);
		feed(&r, in + i, 1);
	}
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_READY);
	assert_memory_equal(f, "12345", 5);
	sc_frame_reader_free(&r);
}

static void test_zero_and_oversize_lengths_are_errors(void **st)
{
	(void)st;
	struct sc_frame_reader r;
	const uint8_t *f;
	size_t n;
	sc_frame_reader_init(&r, 16);
	feed(&r, (const uint8_t[]){ 0, 0, 0, 0 }, 4);
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_ERROR);
	sc_frame_reader_free(&r);
	sc_frame_reader_init(&r, 16);
	feed(&r, (const uint8_t[]){ 0, 0, 0, 17 }, 4);
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_ERROR);
	sc_frame_reader_free(&r);
}

static void test_buffer_never_exceeds_max_plus_header(void **st)
{
	(void)st;
	struct sc_frame_reader r;
	sc_frame_reader_init(&r, 100000);
	uint8_t hdr[4] = { 0, 1, 0x86, 0xa0 }; /* 100000 */
	feed(&r, hdr, 4);
	static uint8_t body[100000];
	memset(body, 7, sizeof(body));
	feed(&r, body, sizeof(body));
	assert_true(r.cap <= 100000 + 4);
	const uint8_t *f;
	size_t n;
	assert_int_equal(sc_frame_next(&r, &f, &n), SC_FRAME_READY);
	assert_int_equal(n, 100000);
	sc_frame_reader_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_frames_in_one_read),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_zero_and_oversize_lengths_are_errors),
		cmocka_unit_test(test_buffer_never_exceeds_max_plus_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
