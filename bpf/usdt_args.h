/*
 * usdt_args.h - fetch USDT arguments cheaply (BPF side only).
 *
 * libbpf's bpf_usdt_arg() is a global subprogram: every argument costs a
 * call, bpf_get_attach_cookie(), a spec-map lookup and a
 * bpf_probe_read_kernel() of the register. With 8-11 arguments per probe
 * that was ~0.5 us per hit here, more than the uprobe trap itself. This
 * looks the spec up once, copies the registers once, and decodes each
 * argument exactly as bpf_usdt_arg() does. x86-64 only (the register
 * layout); other architectures use libbpf's.
 */
#ifndef JOBQ_USDT_ARGS_H
#define JOBQ_USDT_ARGS_H

#include <bpf/usdt.bpf.h>

#if defined(__TARGET_ARCH_x86)
/* A copy of the probe's registers, indexed by offsetof(struct pt_regs, r)
 * / 8 (what libbpf records in the spec). Per-CPU scratch, which keeps 256
 * bytes off the 512-byte stack: the uprobe programs do not nest or
 * interleave on one CPU (task context only, migration disabled, and no
 * preemption under this kernel's preempt=none; see the note at the top of
 * jobq.bpf.c for preempt=full/lazy kernels). */
struct usdt_regs {
	__u64 r[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct usdt_regs);
} usdt_regs_scratch SEC(".maps");

/*
 * Fills out[0..n) with the first n arguments of the probe that fired;
 * arguments need..n-1 that the site does not have (an older contract
 * version) are 0. Returns how many the site has (>= need, at most n), or
 * -1 if the probe's spec is unknown or has fewer than need arguments (out
 * is then undefined).
 */
static __always_inline int usdt_args_min(struct pt_regs *ctx, __u64 *out, const int need,
					 const int n)
{
	struct __bpf_usdt_spec *spec;
	struct usdt_regs *regs;
	int spec_id = __bpf_usdt_spec_id(ctx);
	__u32 zero = 0;

	if (spec_id < 0)
		return -1;
	spec = bpf_map_lookup_elem(&__bpf_usdt_specs, &spec_id);
	regs = bpf_map_lookup_elem(&usdt_regs_scratch, &zero);
	if (!spec || !regs || spec->arg_cnt < need)
		return -1;
	/* Every register copied by plain loads at constant ctx offsets (no
	 * helper call: bpf_probe_read_kernel() of the 168 bytes cost ~20 ns
	 * a hit more), then indexed in the copy. (Reading the one register an
	 * argument names straight from ctx would need a variable ctx offset,
	 * which the verifier rejects.) */
#pragma unroll
	for (int i = 0; i < (int)(sizeof(struct pt_regs) / 8); i++)
		regs->r[i] = ((const volatile __u64 *)ctx)[i];
#pragma unroll
	for (int i = 0; i < n && i < BPF_USDT_MAX_ARG_CNT; i++) {
		struct __bpf_usdt_arg_spec *a = &spec->args[i];
		__u64 v;

		if (i >= need && i >= spec->arg_cnt) {
			out[i] = 0;
			continue;
		}
		if (a->arg_type == BPF_USDT_ARG_CONST) {
			v = a->val_off;
		} else if (a->arg_type == BPF_USDT_ARG_REG ||
			   a->arg_type == BPF_USDT_ARG_REG_DEREF) {
			v = regs->r[((__u32)a->reg_off / 8) & 31];
			if (a->arg_type == BPF_USDT_ARG_REG_DEREF &&
			    bpf_probe_read_user(&v, sizeof(v), (void *)(v + a->val_off)))
				return -1;
		} else {
			/* A kind this decoder does not know (newer libbpf: e.g.
			 * base+index*scale): fail (counted), never a wrong value. */
			return -1;
		}
		v <<= a->arg_bitshift;
		if (a->arg_signed)
			v = (__u64)((__s64)v >> a->arg_bitshift);
		else
			v >>= a->arg_bitshift;
		out[i] = v;
	}
	return spec->arg_cnt < n ? spec->arg_cnt : n;
}
#else
static __always_inline int usdt_args_min(struct pt_regs *ctx, __u64 *out, const int need,
					 const int n)
{
	int cnt = bpf_usdt_arg_cnt(ctx);

	if (cnt < need)
		return -1;
	for (int i = 0; i < n && i < BPF_USDT_MAX_ARG_CNT; i++) {
		out[i] = 0;
		if (i < cnt && bpf_usdt_arg(ctx, i, (long *)&out[i]))
			return -1;
	}
	return cnt < n ? cnt : n;
}
#endif

/* All n arguments: 0, or -1 (unknown spec, fewer than n, unreadable). */
static __always_inline int usdt_args(struct pt_regs *ctx, __u64 *out, const int n)
{
	return usdt_args_min(ctx, out, n, n) < 0 ? -1 : 0;
}

#endif /* JOBQ_USDT_ARGS_H */
