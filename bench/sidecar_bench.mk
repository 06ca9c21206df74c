# bench/sidecar_bench*: encode cost per point and per span, payload size vs
# series (C micro-benchmark) and RSS of the real sidecar with 10,000 tenants
# x 5 types (Python driver). `make bench` runs it via BENCH_TARGETS.
# The span figure compares with the protobuf-c path (tests/sidecar/traces_pbc.c)
# on frames from the agent's own encoder.
SC_BENCH_AGENT_OBJ := $(BUILD)/agent/encode.o $(BUILD)/agent/hist.o $(BUILD)/agent/wire.o \
	$(BUILD)/agent/snapshot.o
$(BUILD)/bench/sidecar_bench: $(BUILD)/bench/sidecar_bench.o $(BUILD)/tests/sidecar/traces_pbc.o \
		$(SC_OBJ) $(SC_PROTO_OBJ) $(SC_BENCH_AGENT_OBJ) $(AGENT_PROTO_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(SC_LIBS) -lbpf
$(BUILD)/bench/sidecar_bench.o $(BUILD)/tests/sidecar/traces_pbc.o: CFLAGS_ALL += $(SC_CFLAGS)
$(BUILD)/bench/sidecar_bench.o $(BUILD)/tests/sidecar/traces_pbc.o: | $(SC_PROTO_H) $(PROTO_GEN) $(BPF_SKELS)

.PHONY: bench-sidecar
bench-sidecar: $(BUILD)/bench/sidecar_bench $(BUILD)/jobq-sidecar $(BUILD)/tests/sidecar/fake_agent $(BUILD)/bench/span_load
	$(BUILD)/bench/sidecar_bench
	BUILD=$(BUILD) bench/sidecar_bench_rss.py

BENCH_TARGETS += bench-sidecar

# Load generator for the sidecar's CPU per span (bench/sidecar_span_cpu.py):
# SpanBatch frames from the agent's own encoder, at a steady rate.
$(BUILD)/bench/span_load: $(BUILD)/bench/span_load.o $(BUILD)/agent/encode.o $(BUILD)/agent/hist.o \
		$(BUILD)/agent/wire.o $(BUILD)/agent/snapshot.o $(AGENT_PROTO_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lbpf -lprotobuf-c -lm
$(BUILD)/bench/span_load.o: | $(BPF_SKELS) $(PROTO_GEN)
