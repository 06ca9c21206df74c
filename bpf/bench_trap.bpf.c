// SPDX-License-Identifier: GPL-2.0
/*
 * bench_trap.bpf.c - an empty USDT program: attached to the same probes as
 * the agent, it measures the bare uprobe trap cost the benchmark divides
 * the agent's cost by.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

SEC("usdt")
int BPF_USDT(bench_trap)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
