/*
 * hist.c - exact boundary table and quantile read-back for the scale-3
 * histograms (see hist.h, bpf/jobq_hist.h).
 */
#include "agent/hist.h"

#include <math.h>
#include <string.h>

/*
 * Minimal unsigned multi-precision integers: little-endian 32-bit limbs.
 * 20 limbs (640 bits) hold v^8 * 2^80 for v < 2^64 (< 2^592) and
 * 1e48 * 2^216 (< 2^376), the largest operands used here.
 */
#define BIG_LIMBS 20

struct big {
	uint32_t l[BIG_LIMBS];
};

static void big_set(struct big *b, uint64_t v)
{
	memset(b, 0, sizeof(*b));
	b->l[0] = (uint32_t)v;
	b->l[1] = (uint32_t)(v >> 32);
}

/* r = a * b, truncated to BIG_LIMBS limbs (never reached by our sizes). */
static void big_mul(struct big *r, const struct big *a, const struct big *b)
{
	struct big t;

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < BIG_LIMBS; i++) {
		uint64_t carry = 0;

		if (!a->l[i])
			continue;
		for (int j = 0; i + j < BIG_LIMBS; j++) {
			uint64_t cur = (uint64_t)a->l[i] * b->l[j] + t.l[i + j] + carry;

			t.l[i + j] = (uint32_t)cur;
			carry = cur >> 32;
		}
	}
	*r = t;
}

static void big_shl(struct big *b, unsigned int bits)
{
	struct big t;
	unsigned int limbs = bits / 32, rem = bits % 32;

	memset(&t, 0, sizeof(t));
	for (int i = BIG_LIMBS - 1; i >= (int)limbs; i--) {
		uint64_t v = (uint64_t)b->l[i - limbs] << rem;

		t.l[i] |= (uint32_t)v;
		if (i + 1 < BIG_LIMBS)
			t.l[i + 1] |= (uint32_t)(v >> 32);
	}
	*b = t;
}

static int big_cmp(const struct big *a, const struct big *b)
{
	for (int i = BIG_LIMBS - 1; i >= 0; i--)
		if (a->l[i] != b->l[i])
			return a->l[i] < b->l[i] ? -1 : 1;
	return 0;
}

static void big_pow8(struct big *r, uint64_t x)
{
	big_set(r, x);
	big_mul(r, r, r); /* x^2 */
	big_mul(r, r, r); /* x^4 */
	big_mul(r, r, r); /* x^8 */
}

/* sign(v - 1e6 * 2^(i/8)) == sign(v^8 * 2^max(-i,0) - 1e48 * 2^max(i,0)) */
int jobq_hist_cmp_boundary(uint64_t v_ns, int index)
{
	struct big lhs, rhs, tera;

	big_pow8(&lhs, v_ns);
	big_set(&tera, 1000000000000ull); /* 1e12; (1e12)^4 = 1e48 */
	big_mul(&rhs, &tera, &tera);
	big_mul(&rhs, &rhs, &rhs);
	if (index >= 0)
		big_shl(&rhs, (unsigned int)index);
	else
		big_shl(&lhs, (unsigned int)-index);
	return big_cmp(&lhs, &rhs);
}

int jobq_hist_table_fill(__u64 bounds[JOBQ_HIST_TABLE_SIZE])
{
	for (int k = 0; k < JOBQ_HIST_TABLE_SIZE; k++) {
		int i = JOBQ_HIST_INDEX_MIN + k;
		uint64_t x;
		int steps = 0;

		if (k > JOBQ_HIST_NBUCKETS) {
			bounds[k] = UINT64_MAX;
			continue;
		}
		/* Estimate, then make it exact: x <= B < x + 1. */
		x = (uint64_t)floorl(1e6L * exp2l((long double)i / 8.0L));
		while (jobq_hist_cmp_boundary(x, i) > 0 && steps++ < 4)
			x--;
		while (jobq_hist_cmp_boundary(x + 1, i) <= 0 && steps++ < 4)
			x++;
		if (jobq_hist_cmp_boundary(x, i) > 0 || jobq_hist_cmp_boundary(x + 1, i) <= 0)
			return -1;
		bounds[k] = x;
	}
	return 0;
}

double jobq_hist_lower_ms(int pos)
{
	return exp2((double)(JOBQ_HIST_INDEX_MIN + pos) / 8.0);
}

double jobq_hist_upper_ms(int pos)
{
	return exp2((double)(JOBQ_HIST_INDEX_MIN + pos + 1) / 8.0);
}

double jobq_hist_pos_ms(int pos)
{
	if (pos == JOBQ_HIST_ZERO)
		return 0.0;
	return exp2(((double)(JOBQ_HIST_INDEX_MIN + pos) + 0.5) / 8.0);
}

int jobq_hist_quantile_pos(const uint64_t counts[JOBQ_HIST_NBUCKETS], uint64_t zero_count,
			   double q)
{
	uint64_t total = zero_count, rank, cum;

	for (int p = 0; p < JOBQ_HIST_NBUCKETS; p++)
		total += counts[p];
	if (total == 0)
		return -2;
	if (q <= 0)
		q = 1e-12;
	if (q > 1)
		q = 1;
	rank = (uint64_t)ceil(q * (double)total);
	if (rank < 1)
		rank = 1;
	cum = zero_count;
	if (cum >= rank)
		return JOBQ_HIST_ZERO;
	for (int p = 0; p < JOBQ_HIST_NBUCKETS; p++) {
		cum += counts[p];
		if (cum >= rank)
			return p;
	}
	return JOBQ_HIST_NBUCKETS - 1;
}
