# proto/: the agent -> sidecar schema, compiled once for both sides.
PROTO_GEN := $(BUILD)/proto/jobq_agent.pb-c.c $(BUILD)/proto/jobq_agent.pb-c.h

$(BUILD)/proto/jobq_agent.pb-c.c $(BUILD)/proto/jobq_agent.pb-c.h: proto/jobq_agent.proto
	@mkdir -p $(BUILD)/proto
	$(PROTOC_C) --proto_path=proto --c_out=$(BUILD)/proto $<

# Objects from generated sources live next to them.
$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(CFLAGS_ALL) -Wno-unused-parameter -c $< -o $@
$(BUILD)/san/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -Wno-unused-parameter -c $< -o $@

AGENT_PROTO_OBJ := $(BUILD)/proto/jobq_agent.pb-c.o
AGENT_PROTO_SAN_OBJ := $(BUILD)/san/proto/jobq_agent.pb-c.o
