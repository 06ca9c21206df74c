/*
 * bpf_env.h - shared preconditions of the BPF integration tests. A test
 * that truly cannot run here (not root, no BTF, bpf() unavailable) exits
 * 77 after saying why, loudly.
 */
#ifndef JOBQ_TESTS_BPF_ENV_H
#define JOBQ_TESTS_BPF_ENV_H

/* Returns only if BPF programs can be loaded; else prints and exits 77. */
void bpf_env_require(const char *test_name);

#endif
