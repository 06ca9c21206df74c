/* probes.c - defines the USDT is-enabled semaphores: jobq_probes.h emits
 * the definitions when JOBQ_PROBES_IMPL is set, which exactly one
 * translation unit of the library does. */
#define JOBQ_PROBES_IMPL
#include "queue/jobq_probes.h"
