/* stats.c - names of the self-metric labels (see stats.h). */
#include "sidecar/stats.h"

const char *const sc_drop_reason_names[SC_DROP_COUNT] = {
	"queue_full", "rejected", "partial_success", "too_large",
	"encode_failed", "buffer_full", "invalid", "shutdown", "metric_limit",
};
const char *const sc_signal_names[SC_SIGNAL_COUNT] = { "metrics", "traces" };
