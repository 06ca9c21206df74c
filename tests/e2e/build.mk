# tests/e2e: the demo scenario end to end (real Redis, workers, agent,
# sidecar, official-schema OTLP peer).
$(BUILD)/tests/e2e/test_demo: tests/e2e/test_demo.py
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nBUILD=%s exec python3 %s "$$@"\n' "$(abspath $(BUILD))" "$(abspath $<)" > $@
	chmod +x $@

INTEG_TESTS += $(BUILD)/tests/e2e/test_demo
