# queue/: libjobq (shared + static + a no-probes static variant), the jobq
# CLI, the shared test helpers (tests/lib) and the queue tests and bench.

JOBQ_SOVER   := 0
JOBQ_LUA     := enqueue dequeue ack renew reap stats policy dead start
JOBQ_LUA_SRC := $(patsubst %,queue/lua/%.lua,$(JOBQ_LUA))
JOBQ_SRCS    := conn produce lease admin worker url validate backoff probes
JOBQ_OBJS    := $(patsubst %,$(BUILD)/queue/%.o,$(JOBQ_SRCS)) $(BUILD)/queue/lua_scripts.o
JOBQ_NP_OBJS := $(patsubst %,$(BUILD)/noprobes/queue/%.o,$(JOBQ_SRCS)) $(BUILD)/queue/lua_scripts.o
JOBQ_LDLIBS  := -lhiredis -lpthread
JOBQ_SO      := $(BUILD)/libjobq.so
JOBQ_A       := $(BUILD)/libjobq.a
JOBQ_NP_A    := $(BUILD)/noprobes/libjobq.a
JOBQ_PC      := $(BUILD)/libjobq.pc
JOBQ_CLI     := $(BUILD)/jobq
JOBQ_CLI_SRCS := main enqueue worker admin handlers json
JOBQ_CLI_OBJS := $(patsubst %,$(BUILD)/queue/cli/%.o,$(JOBQ_CLI_SRCS))

LIBS += $(JOBQ_SO) $(JOBQ_A) $(JOBQ_NP_A) $(JOBQ_PC)
BINS += $(JOBQ_CLI)

# Scripts are embedded at build time: common.lua + <name>.lua each.
$(BUILD)/queue/lua_scripts.c: queue/lua/embed.sh queue/lua/common.lua $(JOBQ_LUA_SRC)
	@mkdir -p $(dir $@)
	queue/lua/embed.sh $@ queue/lua/common.lua $(JOBQ_LUA_SRC)
$(BUILD)/queue/lua_scripts.o: $(BUILD)/queue/lua_scripts.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# JOBQ_NO_PROBES turns probe macros into ((void)0), discarding arguments.
$(BUILD)/noprobes/queue/%.o: queue/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DJOBQ_NO_PROBES -Wno-unused-parameter -Wno-unused-variable \
		-Wno-unused-but-set-variable -Wno-unused-function -c $< -o $@

$(JOBQ_SO): $(JOBQ_OBJS) queue/libjobq.map
	$(CC) -shared -Wl,-soname,libjobq.so.$(JOBQ_SOVER) -Wl,--version-script=queue/libjobq.map \
		-o $@ $(JOBQ_OBJS) $(JOBQ_LDLIBS)
	ln -sf libjobq.so $(BUILD)/libjobq.so.$(JOBQ_SOVER)
$(JOBQ_A): $(JOBQ_OBJS)
	rm -f $@ && ar rcs $@ $^
$(JOBQ_NP_A): $(JOBQ_NP_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(JOBQ_PC): queue/build.mk
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
		'Name: libjobq' 'Description: Tenant-aware fair job queue on Redis' \
		'Version: $(VERSION)' 'Requires.private: hiredis' \
		'Libs: -L$${libdir} -ljobq' 'Libs.private: -lpthread' \
		'Cflags: -I$${includedir}/jobq' >$@

# The CLI links the SHARED library (rpath $ORIGIN, and $ORIGIN/../lib once
# installed) so a uprobe on $(BUILD)/libjobq.so reaches every jobq process.
$(JOBQ_CLI): $(JOBQ_CLI_OBJS) $(JOBQ_SO)
	$(CC) -o $@ $(JOBQ_CLI_OBJS) -L$(BUILD) -l:libjobq.so.$(JOBQ_SOVER) -Wl,-rpath,'$$ORIGIN:$$ORIGIN/../lib' -lm -lpthread

# The example of a C worker, built so it stays correct (compiled like a
# user's program: public header only, shared library).
JOBQ_EXAMPLE := $(BUILD)/examples/hello_worker
BINS += $(JOBQ_EXAMPLE)
$(JOBQ_EXAMPLE): queue/examples/hello_worker.c queue/jobq.h $(JOBQ_SO)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iqueue -o $@ $< -L$(BUILD) \
		-l:libjobq.so.$(JOBQ_SOVER) -Wl,-rpath,'$$ORIGIN/..'

INSTALL_RULES += install-queue
.PHONY: install-queue
install-queue: $(JOBQ_SO) $(JOBQ_A) $(JOBQ_PC) $(JOBQ_CLI)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/jobq \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/jobq/lua
	install -m 755 $(JOBQ_SO) $(DESTDIR)$(PREFIX)/lib/libjobq.so.$(VERSION)
	ln -sf libjobq.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libjobq.so.$(JOBQ_SOVER)
	ln -sf libjobq.so.$(JOBQ_SOVER) $(DESTDIR)$(PREFIX)/lib/libjobq.so
	install -m 644 $(JOBQ_A) $(DESTDIR)$(PREFIX)/lib/libjobq.a
	install -m 644 $(JOBQ_PC) $(DESTDIR)$(PREFIX)/lib/pkgconfig/libjobq.pc
	install -m 644 queue/jobq.h queue/jobq_probes.h $(DESTDIR)$(PREFIX)/include/jobq/
	install -m 644 queue/lua/*.lua $(DESTDIR)$(PREFIX)/share/jobq/lua/
	install -m 755 $(JOBQ_CLI) $(DESTDIR)$(PREFIX)/bin/jobq

# ---- tests -----------------------------------------------------------
# tests/lib: a real redis-server per test (other parts link these).
REDIS_FIXTURE_OBJ := $(BUILD)/tests/lib/redis_fixture.o
WITH_REDIS := $(BUILD)/tests/with-redis
$(WITH_REDIS): $(BUILD)/tests/lib/with_redis.o $(REDIS_FIXTURE_OBJ)
	$(CC) -o $@ $^

QT := $(BUILD)/tests/queue
CMOCKA := -lcmocka

# Unit tests: pure logic, ASan+UBSan.
QUEUE_UNIT := url validate backoff json digest
UNIT_TESTS += $(patsubst %,$(QT)/unit_%,$(QUEUE_UNIT))
$(QT)/unit_url: $(BUILD)/san/tests/queue/unit_url.o $(BUILD)/san/queue/url.o
$(QT)/unit_validate: $(BUILD)/san/tests/queue/unit_validate.o $(BUILD)/san/queue/validate.o
$(QT)/unit_backoff: $(BUILD)/san/tests/queue/unit_backoff.o $(BUILD)/san/queue/backoff.o
$(QT)/unit_json: $(BUILD)/san/tests/queue/unit_json.o $(BUILD)/san/queue/cli/json.o
$(QT)/unit_digest: $(BUILD)/san/tests/queue/unit_digest.o
$(patsubst %,$(QT)/unit_%,$(QUEUE_UNIT)):
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(CMOCKA)

# Integration tests: real redis-server, real processes.
QUEUE_INTEG_C := roundtrip worker reliability fairness
QUEUE_INTEG_SH := probes_notes python_producer cli
INTEG_TESTS += $(patsubst %,$(QT)/test_%,$(QUEUE_INTEG_C)) \
	$(patsubst %,tests/queue/test_%.sh,$(QUEUE_INTEG_SH))
$(patsubst %,$(QT)/test_%,$(QUEUE_INTEG_C)): $(QT)/test_%: $(BUILD)/tests/queue/test_%.o \
		$(BUILD)/tests/queue/qtest.o $(REDIS_FIXTURE_OBJ) $(JOBQ_A) | $(JOBQ_CLI) $(WITH_REDIS)
	$(CC) -o $@ $(filter %.o,$^) $(JOBQ_A) $(JOBQ_LDLIBS) $(CMOCKA) -lm

# ---- bench (`make bench`; not a test: prints figures) -------------------
QBENCH := $(BUILD)/bench/queue_bench
QBENCH_NP := $(BUILD)/bench/queue_bench_noprobes
$(QBENCH): $(BUILD)/bench/queue_bench.o $(JOBQ_A)
	$(CC) -o $@ $< $(JOBQ_A) $(JOBQ_LDLIBS) -lm
$(QBENCH_NP): $(BUILD)/bench/queue_bench.o $(JOBQ_NP_A)
	$(CC) -o $@ $< $(JOBQ_NP_A) $(JOBQ_LDLIBS) -lm
.PHONY: bench-queue
bench: bench-queue
bench-queue: $(QBENCH) $(QBENCH_NP) $(WITH_REDIS) $(JOBQ_CLI)
	@BUILD=$(BUILD) bench/queue_bench.sh
