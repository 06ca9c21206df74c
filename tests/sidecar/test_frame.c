/* test_frame - the agent socket frame reader: splits, bounds, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sidecar/frame.h"
#include "sidecar/wire.h"

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

static void test_pb_walk_fields(void **st)
{
	(void)st;
	/* 1: varint 300; 3: "abc"; 9: fixed64; 10: fixed32 */
	const uint8_t in[] = { 0x08, 0xac, 0x02, 0x1a, 3, 'a', 'b', 'c', 0x49, 1, 2, 3, 4, 5, 6, 7, 8,
			       0x55, 9, 9, 9, 9 };
	const uint8_t *p = in, *end = in + sizeof(in);
	struct sc_pb_field f;
	assert_int_equal(sc_pb_next(&p, end, &f), 1);
	assert_int_equal(f.number, 1);
	assert_int_equal(f.varint, 300);
	assert_int_equal(sc_pb_next(&p, end, &f), 1);
	assert_int_equal(f.number, 3);
	assert_int_equal(f.wire_type, 2);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.data, "abc", 3);
	assert_int_equal(sc_pb_next(&p, end, &f), 1);
	assert_int_equal(f.number, 9);
	assert_int_equal(f.len, 8);
	assert_int_equal(sc_pb_next(&p, end, &f), 1);
	assert_int_equal(f.number, 10);
	assert_int_equal(f.len, 4);
	assert_int_equal(sc_pb_next(&p, end, &f), 0);
}

static void test_pb_malformed(void **st)
{
	(void)st;
	struct sc_pb_field f;
	const uint8_t trunc_len[] = { 0x1a, 5, 'a' };          /* length past the end */
	const uint8_t trunc_var[] = { 0x08, 0x80 };            /* unfinished varint */
	const uint8_t group[] = { 0x0b };                     /* start group */
	const uint8_t zero[] = { 0x00, 0x01 };                /* field number 0 */
	const uint8_t *tests[] = { trunc_len, trunc_var, group, zero };
	size_t lens[] = { sizeof(trunc_len), sizeof(trunc_var), sizeof(group), sizeof(zero) };
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = tests[i];
		assert_int_equal(sc_pb_next(&p, tests[i] + lens[i], &f), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_frames_in_one_read),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_zero_and_oversize_lengths_are_errors),
		cmocka_unit_test(test_buffer_never_exceeds_max_plus_header),
		cmocka_unit_test(test_pb_walk_fields),
		cmocka_unit_test(test_pb_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
