# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# kproxy build, in the manner of libbpf-bootstrap: build/%.bpf.o -> build/%.skel.h,
# every user object that needs a skeleton depends on it. Quiet unless V=1.

OUT		:= build
CLANG		?= $(shell command -v clang-19 || command -v clang)
BPFTOOL		?= bpftool
CC		?= gcc
ARCH		:= x86
PKGS		:= libbpf json-c
CFLAGS		?= -g -O2 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS		+= -D_GNU_SOURCE -Iinclude -I$(OUT) -Iuserspace/common -Iloader $(shell pkg-config --cflags $(PKGS))
LDLIBS		+= $(shell pkg-config --libs $(PKGS)) -lelf -lz
BPF_CFLAGS	:= -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I. -Iinclude -Ibpf -Wall -Wno-unused-function

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_PROGS	:= proxy service mux
BPF_OBJS	:= $(patsubst %,$(OUT)/%.bpf.o,$(BPF_PROGS))
SKELS		:= $(patsubst %,$(OUT)/%.skel.h,$(BPF_PROGS))

COMMON_SRCS	:= $(wildcard userspace/common/*.c)
LOADER_SRCS	:= $(wildcard loader/*.c)
COMMON_OBJS	:= $(patsubst %.c,$(OUT)/%.o,$(COMMON_SRCS))
LOADER_OBJS	:= $(patsubst %.c,$(OUT)/%.o,$(LOADER_SRCS))

BINS		:= kproxyd kproxyctl kpperf kptlsd
BIN_PATHS	:= $(patsubst %,$(OUT)/%,$(BINS))
TEST_TOOLS	:= $(patsubst tests/tools/%.c,$(OUT)/tests/%,$(wildcard tests/tools/*.c))
BENCH_TOOLS	:= $(patsubst tests/bench/%.c,$(OUT)/bench/%,$(wildcard tests/bench/*.c))

.PHONY: all clean vmlinux run test test-host bench bench-sidecar bench-kmux bench-http bench-tls deps
.DELETE_ON_ERROR:
.SECONDARY: $(SKELS) $(BPF_OBJS)
.SECONDEXPANSION:

EXAMPLE_OBJS	:= $(patsubst examples/parsers/%.bpf.c,$(OUT)/examples/%.bpf.o,$(wildcard examples/parsers/*.bpf.c))

all: $(BIN_PATHS) $(BPF_OBJS) $(TEST_TOOLS) $(BENCH_TOOLS) $(EXAMPLE_OBJS)

# vmlinux.h is committed; this regenerates it from the running kernel's BTF.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

$(OUT)/%.bpf.o: bpf/%.bpf.c include/kproxy.h $(wildcard bpf/lib/*.h) vmlinux.h Makefile | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The service hooks count round robin with an atomic fetch-and-add (BPF ISA v3,
# Linux 5.12+). The proxy stays at the default ISA: its bounded trim loop
# verifies fast only in that form.
$(OUT)/service.bpf.o: BPF_CFLAGS += -mcpu=v3
$(OUT)/mux.bpf.o: BPF_CFLAGS += -mcpu=v3

# Users' own kmux parsers: examples/parsers, built the way a user builds one.
$(OUT)/examples/%.bpf.o: examples/parsers/%.bpf.c include/kproxy_bpf.h vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@) && $(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(OUT)/loader/%.o: loader/%.c $(SKELS) $(wildcard loader/*.h) include/kproxy.h | $(OUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) -c $< -o $@

$(OUT)/userspace/%.o: userspace/%.c $(SKELS) $(wildcard userspace/*/*.h) $(wildcard loader/*.h) include/kproxy.h | $(OUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) -c $< -o $@

$(OUT)/libkproxy.a: $(LOADER_OBJS) $(COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(BIN_PATHS): $(OUT)/%: $$(patsubst %.c,$(OUT)/%.o,$$(wildcard userspace/$$*/*.c)) $(OUT)/libkproxy.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Only the TLS agent uses gnutls; libkproxy's client side of it does not.
$(OUT)/kptlsd: CFLAGS += $(shell pkg-config --cflags gnutls)
$(OUT)/kptlsd: LDLIBS += $(shell pkg-config --libs gnutls)

$(OUT)/tests/%: tests/tools/%.c $(OUT)/libkproxy.a
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/bench/%: tests/bench/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) $^ -o $@

$(OUT):
	$(Q)mkdir -p $@

# libFuzzer targets for the message parsers' twin (clang-19 and its compiler-rt:
# libclang-rt-19-dev); not part of all. `make fuzz` builds and runs them.
FUZZ_CC		?= $(shell command -v clang-19 || command -v clang)
FUZZ_CFLAGS	:= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		   -D_GNU_SOURCE -Iinclude -Iuserspace/common -Wall -Wextra -Wno-unused-parameter

$(OUT)/fuzz/%: tests/fuzz/%.c userspace/common/parse.c userspace/common/parse.h include/kproxy.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@) && $(FUZZ_CC) $(FUZZ_CFLAGS) $< userspace/common/parse.c -o $@

.PHONY: fuzz
fuzz:
	$(Q)tests/fuzz/run.sh

# The README's first command: install what is missing, build, run the demo.
run:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# The README's second command: every test, on this kernel and on Debian's 6.1 and 6.12 in QEMU.
test:
	$(Q)scripts/install-deps.sh --test
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run.sh

# Only this machine's kernel.
test-host: all
	$(Q)tests/suite.sh

bench:
	$(Q)scripts/install-deps.sh --bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/run.sh
	$(Q)tests/bench/sidecar.sh

# The sidecar chain with and without local acceleration only.
bench-sidecar: all
	$(Q)tests/bench/sidecar.sh

# kmux against AF_KCM (in a VM: this kernel has none), raw TCP and a user-space mux.
bench-kmux: all
	$(Q)tests/bench/kmux.sh

# HTTP/1.1 L7 proxying on this host: kmux's HTTP parser and policy against HAProxy (mode http).
bench-http: all
	$(Q)tests/bench/http.sh

# TLS termination (kproxy, HAProxy, nginx) in a VM: this kernel has no kTLS.
bench-tls: all
	$(Q)tests/bench/tls.sh

clean:
	$(Q)rm -rf $(OUT)
