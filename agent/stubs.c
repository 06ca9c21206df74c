#include "agent/agent.h"
int agent_spans_start(struct agent *a) { (void)a; return 0; }
void agent_spans_poll(struct agent *a) { (void)a; }
void agent_spans_stop(struct agent *a) { (void)a; }
void agent_sidecar_open(struct agent *a) { (void)a; }
void agent_sidecar_metrics(struct agent *a) { (void)a; }
void agent_sidecar_flush(struct agent *a) { (void)a; }
void agent_sidecar_close(struct agent *a) { (void)a; }
void agent_top_render(struct agent *a, FILE *out) { (void)a; (void)out; }
