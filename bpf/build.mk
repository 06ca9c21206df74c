# bpf/ + agent/: the jobq BPF programs and the jobq-agent loader.
# vmlinux.h and the skeletons are generated into $(BUILD); nothing
# generated is committed.

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I. -I$(BUILD) -I/usr/include/$(MULTIARCH)
BPF_HDRS := bpf/jobq.h bpf/jobq_hist.h bpf/jobq_update.h bpf/usdt_args.h bpf/hist_test.h \
	queue/jobq_probes.h
BPF_SKELS := $(BUILD)/bpf/jobq.skel.h $(BUILD)/bpf/hist_test.skel.h \
	$(BUILD)/bpf/bench_trap.skel.h

$(BUILD)/vmlinux.h:
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp
	mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp
	mv $@.tmp $@

BPF_LDLIBS := -lbpf -lelf -lz

# Keep the BPF objects (intermediates otherwise deleted and rebuilt).
.SECONDARY: $(BUILD)/bpf/jobq.bpf.o $(BUILD)/bpf/hist_test.bpf.o $(BUILD)/bpf/bench_trap.bpf.o

# ---- agent ---------------------------------------------------------------
# Pure modules (unit-tested under ASan) and the I/O around them.
AGENT_PURE := agent/hist.c agent/wire.c agent/spans.c agent/encode.c agent/snapshot.c \
	agent/top.c agent/inflight.c agent/maps.c
AGENT_SRCS := $(AGENT_PURE) agent/main.c agent/stapsdt.c agent/target.c agent/json.c \
	agent/events.c agent/export.c agent/conn.c
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/%.o)

$(AGENT_OBJS): $(BPF_SKELS) $(PROTO_GEN)

$(BUILD)/jobq-agent: $(AGENT_OBJS) $(AGENT_PROTO_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(BPF_LDLIBS) -lprotobuf-c -lm $(LDLIBS_ALL)

BINS += $(BUILD)/jobq-agent

# ---- tests -----------------------------------------------------------------
$(BUILD)/tests/bpf/hist_test: $(BUILD)/san/tests/bpf/hist_test.o $(BUILD)/san/agent/hist.o
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ -lcmocka -lm
UNIT_TESTS += $(BUILD)/tests/bpf/hist_test

AGENT_PURE_SAN := $(AGENT_PURE:%.c=$(BUILD)/san/%.o)
$(AGENT_PURE_SAN) $(BUILD)/san/tests/bpf/agent_unit_test.o: $(PROTO_GEN) $(BPF_SKELS)
$(BUILD)/tests/bpf/agent_unit_test: $(BUILD)/san/tests/bpf/agent_unit_test.o $(AGENT_PURE_SAN) \
		$(BUILD)/san/agent/conn.o $(AGENT_PROTO_SAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ -lcmocka -lprotobuf-c -lbpf -lm
UNIT_TESTS += $(BUILD)/tests/bpf/agent_unit_test

# The emitter is built twice: with probes and with -DJOBQ_NO_PROBES (bench).
$(BUILD)/tests/bpf/probe_emitter: tests/bpf/probe_emitter.c queue/jobq_probes.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -pthread -o $@ $< $(LDLIBS_ALL)
$(BUILD)/tests/bpf/probe_emitter_noprobes: tests/bpf/probe_emitter.c queue/jobq_probes.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -pthread -DJOBQ_NO_PROBES -o $@ $< $(LDLIBS_ALL)

# The same emitter with its probes in a shared library named like libjobq.
$(BUILD)/tests/bpf/libjobq_emitter.so: tests/bpf/probe_emitter.c queue/jobq_probes.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -pthread -DEMITTER_LIB -shared -o $@ $<
$(BUILD)/tests/bpf/lib_emitter: tests/bpf/emitter_shim.c $(BUILD)/tests/bpf/libjobq_emitter.so
	$(CC) $(CFLAGS_ALL) -o $@ $< -L$(BUILD)/tests/bpf -ljobq_emitter '-Wl,-rpath,$$ORIGIN'

$(BUILD)/tests/bpf/other_probes: tests/bpf/other_probes.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $<

$(BUILD)/tests/bpf/sidecar_reader.o: $(PROTO_GEN)
$(BUILD)/tests/bpf/sidecar_reader: $(BUILD)/tests/bpf/sidecar_reader.o $(BUILD)/agent/wire.o \
		$(AGENT_PROTO_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lprotobuf-c

$(BUILD)/tests/bpf/hist_kernel_test.o: $(BUILD)/bpf/hist_test.skel.h
$(BUILD)/tests/bpf/hist_kernel_test: $(BUILD)/tests/bpf/hist_kernel_test.o $(BUILD)/agent/hist.o \
		$(BUILD)/agent/snapshot.o $(BUILD)/tests/bpf/bpf_env.o
	$(CC) $(CFLAGS) -pthread -o $@ $^ $(BPF_LDLIBS) -lm

INTEG_TESTS += $(BUILD)/tests/bpf/hist_kernel_test

# Python integration tests run from the source tree against $(BUILD); the
# file in $(BUILD) is a launcher that depends on what the test runs.
define PY_TEST_LAUNCHER
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nJOBQ_BUILD=%s exec python3 %s "$$@"\n' "$(abspath $(BUILD))" \
		"$(abspath $<)" > $@
	chmod +x $@
endef

BPF_PY_DEPS := tests/bpf/agentlib.py $(BUILD)/jobq-agent $(BUILD)/tests/bpf/probe_emitter \
	$(BUILD)/tests/bpf/other_probes $(BUILD)/tests/bpf/sidecar_reader \
	$(BUILD)/tests/bpf/lib_emitter

$(BUILD)/tests/bpf/agent_emitter_test: tests/bpf/agent_emitter_test.py $(BPF_PY_DEPS)
	$(PY_TEST_LAUNCHER)
INTEG_TESTS += $(BUILD)/tests/bpf/agent_emitter_test

$(BUILD)/tests/bpf/agent_sidecar_test: tests/bpf/agent_sidecar_test.py $(BPF_PY_DEPS)
	$(PY_TEST_LAUNCHER)
INTEG_TESTS += $(BUILD)/tests/bpf/agent_sidecar_test

# Against real `jobq worker` processes and redis-server (queue/ on main).
ifneq ($(wildcard queue/build.mk),)
$(BUILD)/tests/bpf/agent_worker_test: tests/bpf/agent_worker_test.py $(BPF_PY_DEPS) \
		$(BUILD)/jobq $(BUILD)/libjobq.so
	$(PY_TEST_LAUNCHER)
INTEG_TESTS += $(BUILD)/tests/bpf/agent_worker_test
endif

# ---- benchmark (make bench) -------------------------------------------------
$(BUILD)/bench/trap_attach.o: $(BUILD)/bpf/bench_trap.skel.h
$(BUILD)/bench/trap_attach: $(BUILD)/bench/trap_attach.o
	$(CC) $(CFLAGS) -o $@ $^ $(BPF_LDLIBS)

# The real worker, with and without probes compiled in (queue/ on main).
ifneq ($(wildcard queue/build.mk),)
$(BUILD)/bench/noop_worker: $(BUILD)/bench/noop_worker.o $(BUILD)/libjobq.a
	$(CC) $(CFLAGS) -o $@ $^ -lhiredis -lpthread
$(BUILD)/bench/noop_worker_noprobes: $(BUILD)/bench/noop_worker.o $(BUILD)/noprobes/libjobq.a
	$(CC) $(CFLAGS) -o $@ $^ -lhiredis -lpthread
AGENT_BENCH_WORKERS := $(BUILD)/bench/noop_worker $(BUILD)/bench/noop_worker_noprobes $(BUILD)/jobq
endif

AGENT_BENCH_DEPS := $(AGENT_BENCH_WORKERS) $(BUILD)/jobq-agent $(BUILD)/bench/trap_attach \
	$(BUILD)/tests/bpf/probe_emitter $(BUILD)/tests/bpf/probe_emitter_noprobes \
	$(BUILD)/tests/bpf/sidecar_reader

.PHONY: bench-agent
bench-agent: $(AGENT_BENCH_DEPS)
	JOBQ_BUILD=$(abspath $(BUILD)) python3 bench/agent_bench.py
bench: bench-agent
