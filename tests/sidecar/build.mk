# tests/sidecar: cmocka unit tests (ASan+UBSan objects) and integration
# tests against real processes (node OTLP peer, Prometheus, fake agent).

SC_UNIT_NAMES := config retry utf8 frame store otlp spans
SC_UNIT_TESTS := $(SC_UNIT_NAMES:%=$(BUILD)/tests/sidecar/test_%)

$(BUILD)/tests/sidecar/test_%: $(BUILD)/san/tests/sidecar/test_%.o $(SC_SAN_OBJ) $(SC_PROTO_SAN_OBJ) $(AGENT_PROTO_SAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ -lcmocka $(SC_LIBS)

# test_spans compares the direct span encoder with the protobuf-c path it
# replaced, kept here as the reference (traces_pbc.c).
$(BUILD)/tests/sidecar/test_spans: $(BUILD)/san/tests/sidecar/traces_pbc.o

$(BUILD)/san/tests/sidecar/%.o: CFLAGS_ALL += $(SC_CFLAGS)
$(BUILD)/san/tests/sidecar/%.o: | $(SC_PROTO_H) $(PROTO_GEN)

$(BUILD)/tests/sidecar/fake_agent: tests/sidecar/fake_agent.c $(AGENT_PROTO_OBJ) | $(PROTO_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ tests/sidecar/fake_agent.c $(AGENT_PROTO_OBJ) -lprotobuf-c

# Integration tests are Python drivers; each gets a wrapper in $(BUILD) that
# depends on everything it runs, so `make test` builds it all first.
SC_INTEG_NAMES := otlp_conformance delivery resilience socket prometheus e2e_agent harness
SC_INTEG_TESTS := $(SC_INTEG_NAMES:%=$(BUILD)/tests/sidecar/integ_%)

$(BUILD)/tests/sidecar/integ_%: tests/sidecar/test_%.py tests/sidecar/harness.py \
		$(BUILD)/jobq-sidecar $(BUILD)/tests/sidecar/fake_agent
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nBUILD=%s exec python3 %s "$$@"\n' "$(abspath $(BUILD))" "$(abspath $<)" > $@
	chmod +x $@

UNIT_TESTS += $(SC_UNIT_TESTS)
INTEG_TESTS += $(SC_INTEG_TESTS)

.SECONDARY: $(SC_UNIT_NAMES:%=$(BUILD)/san/tests/sidecar/test_%.o) $(BUILD)/san/tests/sidecar/traces_pbc.o
