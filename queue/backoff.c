/* backoff.c - see backoff.h. */
#include "queue/backoff.h"

#include <sys/random.h>
#include <time.h>

uint32_t jobq_backoff_ms(uint32_t base, uint32_t max, uint32_t attempt, double r)
{
	double d = base;

	if (attempt < 1)
		attempt = 1;
	for (uint32_t i = 1; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	if (r < 0)
		r = 0;
	if (r >= 1)
		r = 0.999999;
	return (uint32_t)(d / 2 + r * (d / 2));
}

static _Thread_local uint64_t rng_state;

uint64_t jobq_random64(void)
{
	uint64_t x;

	if (!rng_state) {
		if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state)) {
			struct timespec ts;

			/* getrandom cannot fail for 8 bytes on Linux >= 3.17; be safe anyway. */
			clock_gettime(CLOCK_REALTIME, &ts);
			rng_state = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
		}
		rng_state |= 1;
	}
	/* xorshift64* */
	x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

double jobq_random01(void)
{
	return (double)(jobq_random64() >> 11) / 9007199254740992.0;
}
