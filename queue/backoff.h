/* backoff.h - retry and reconnect delays (pure). */
#ifndef JOBQ_BACKOFF_H
#define JOBQ_BACKOFF_H

#include <stdint.h>

/* Delay before retry number `attempt` (the attempt that failed, >= 1):
 * d = min(max, base * 2^(attempt-1)), then "equal jitter": a uniform value
 * in [d/2, d]. r is a uniform random number in [0, 1). */
uint32_t jobq_backoff_ms(uint32_t base, uint32_t max, uint32_t attempt, double r);

/* A uniform random double in [0, 1) from a thread-local xorshift state
 * seeded from getrandom(). */
double jobq_random01(void);
/* 64 random bits (lease tokens, span ids). */
uint64_t jobq_random64(void);

#endif
