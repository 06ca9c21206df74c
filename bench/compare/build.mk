# bench/compare: jobq side by side with BullMQ, RQ, Celery and Sidekiq on one
# local redis-server (bench/README.md).
#
#   make bench-compare          the full run (installs the peers first)
#   COMPARE_ARGS="--size quick" smaller sizes, same scenarios (also --runs N,
#                               --scenarios a,b  --systems jobq,BullMQ,...)
#
# The smoke run (tiny sizes, every scenario, every installable peer) is an
# integration test: bench/compare/test_smoke.sh; the figures' arithmetic is
# tested on hand-made job logs by bench/compare/test_metrics.py.

CMP_DRIVER := $(BUILD)/bench/compare/jobq_driver
BINS += $(CMP_DRIVER)
INTEG_TESTS += bench/compare/test_metrics.py bench/compare/test_smoke.sh

# Links the shared libjobq (rpath $ORIGIN/../..) so `jobq-agent --lib
# build/libjobq.so` reaches the driver like any jobq worker.
$(CMP_DRIVER): $(BUILD)/bench/compare/jobq_driver.o $(JOBQ_SO)
	$(CC) -o $@ $(BUILD)/bench/compare/jobq_driver.o -L$(BUILD) -l:libjobq.so.$(JOBQ_SOVER) \
		-Wl,-rpath,'$$ORIGIN/../..' -lpthread

.PHONY: bench-compare
bench-compare: all
	bench/compare/install-peers.sh
	/usr/bin/python3 bench/compare/compare.py --build $(abspath $(BUILD)) \
		--out $(abspath $(BUILD))/bench-compare $(COMPARE_ARGS)
