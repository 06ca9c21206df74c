# jobq - top-level build. Each part keeps its own rules in <dir>/build.mk;
# this file holds the shared flags, the pattern rules and the user-facing
# targets. Everything is built under $(BUILD)/; nothing generated lands in
# the source tree.
#
#   make            build libjobq, the jobq CLI, the BPF agent and the sidecar
#   make test       install missing packages, build, run every test
#   make demo       install missing packages, build, run the noisy-tenant demo
#   make bench      run the benchmarks (prints ratios)
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PROTOC_C ?= protoc-c

VERSION  := 0.1.0
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -I. -I$(BUILD) -MMD -MP
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS_ALL = $(LDLIBS)

.PHONY: all test unit-test integration-test demo bench install clean deps
.DEFAULT_GOAL := all

# Parts append to these.
BINS        :=
LIBS        :=
UNIT_TESTS  :=   # binaries run under ASan+UBSan, no external services
INTEG_TESTS :=   # scripts/binaries that start their own services
INSTALL_RULES :=
BENCH_TARGETS := # phony targets that run one benchmark each

include $(wildcard proto/build.mk queue/build.mk bpf/build.mk agent/build.mk \
		   sidecar/build.mk tests/build.mk bench/build.mk tests/e2e/build.mk \
		   bench/compare/build.mk)

all: $(LIBS) $(BINS)

deps:
	@scripts/deps.sh

# Regular objects and sanitizer objects of the same sources.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -c $< -o $@

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_TESTS) $(INTEG_TESTS)
	@scripts/run-tests.sh $(UNIT_TESTS) $(INTEG_TESTS)

unit-test: $(UNIT_TESTS)
	@scripts/run-tests.sh $(UNIT_TESTS)

integration-test: all $(INTEG_TESTS)
	@scripts/run-tests.sh $(INTEG_TESTS)

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(abspath $(BUILD)) scripts/demo.sh

bench: all $(BENCH_TARGETS)

install: all $(INSTALL_RULES)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
