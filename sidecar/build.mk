# sidecar/: jobq-sidecar, the unprivileged OTLP / Prometheus exporter.
#
# Our own OTLP .proto subset (sidecar/proto) is compiled by protoc-c into
# $(BUILD)/sidecar/proto; nothing generated is committed.

SC_PROTO_DIR := sidecar/proto
SC_PROTO_OUT := $(BUILD)/sidecar/proto
SC_PROTOS := opentelemetry/proto/common/v1/common \
	opentelemetry/proto/resource/v1/resource \
	opentelemetry/proto/metrics/v1/metrics \
	opentelemetry/proto/trace/v1/trace \
	opentelemetry/proto/collector/metrics/v1/metrics_service \
	opentelemetry/proto/collector/trace/v1/trace_service \
	google/rpc/status
SC_PROTO_C := $(SC_PROTOS:%=$(SC_PROTO_OUT)/%.pb-c.c)
SC_PROTO_H := $(SC_PROTOS:%=$(SC_PROTO_OUT)/%.pb-c.h)
SC_PROTO_OBJ := $(SC_PROTOS:%=$(SC_PROTO_OUT)/%.pb-c.o)
SC_PROTO_SAN_OBJ := $(SC_PROTOS:%=$(BUILD)/san/sidecar/proto/%.pb-c.o)

$(SC_PROTO_OUT)/%.pb-c.c $(SC_PROTO_OUT)/%.pb-c.h: $(SC_PROTO_DIR)/%.proto
	@mkdir -p $(SC_PROTO_OUT)
	$(PROTOC_C) --proto_path=$(SC_PROTO_DIR) --c_out=$(SC_PROTO_OUT) $<

SC_CFLAGS = -I$(SC_PROTO_OUT)
$(SC_PROTO_OUT)/%.pb-c.o: $(SC_PROTO_OUT)/%.pb-c.c
	$(CC) $(CFLAGS_ALL) $(SC_CFLAGS) -Wno-unused-parameter -c $< -o $@
$(BUILD)/san/sidecar/proto/%.pb-c.o: $(SC_PROTO_OUT)/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SC_CFLAGS) $(SAN_FLAGS) -Wno-unused-parameter -c $< -o $@

# Library-like modules (pure or thin I/O), shared by the binary, the tests
# and the benchmark.
SC_MODULES := buf arena utf8 config retry frame span_wire spans store stats otlp otlp_json \
	starvation prom export queue server
SC_OBJ := $(SC_MODULES:%=$(BUILD)/sidecar/%.o)
SC_SAN_OBJ := $(SC_MODULES:%=$(BUILD)/san/sidecar/%.o)
SC_LIBS := -lprotobuf-c -lcurl -lz -lm -lpthread

# Everything in sidecar/ sees the generated headers; they must exist first.
SC_ALL_OBJ := $(SC_OBJ) $(SC_SAN_OBJ) $(BUILD)/sidecar/main.o $(BUILD)/san/sidecar/main.o
$(SC_ALL_OBJ): CFLAGS_ALL += $(SC_CFLAGS)
$(SC_ALL_OBJ): | $(SC_PROTO_H) $(PROTO_GEN)

$(BUILD)/jobq-sidecar: $(BUILD)/sidecar/main.o $(SC_OBJ) $(SC_PROTO_OBJ) $(AGENT_PROTO_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(SC_LIBS) $(LDLIBS_ALL)

BINS += $(BUILD)/jobq-sidecar

# The same binary under ASan+UBSan, for running the integration tests with
# JOBQ_SIDECAR_BIN=$(BUILD)/san/jobq-sidecar (see docs/sidecar.md).
$(BUILD)/san/jobq-sidecar: $(BUILD)/san/sidecar/main.o $(SC_SAN_OBJ) $(SC_PROTO_SAN_OBJ) $(AGENT_PROTO_SAN_OBJ)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(SC_LIBS) $(LDLIBS_ALL)

include tests/sidecar/build.mk
include bench/sidecar_bench.mk

# Generated sources and objects reached only through pattern rules would be
# deleted as intermediates and rebuilt on every run; keep them.
.SECONDARY: $(SC_PROTO_C) $(SC_PROTO_H) $(SC_PROTO_OBJ) $(SC_PROTO_SAN_OBJ) $(AGENT_PROTO_SAN_OBJ)
