/*
 * stapsdt.h - list the USDT probes an ELF file declares in .note.stapsdt,
 * so the agent can say what a target offers before attaching (and what it
 * found instead when there are no jobq probes).
 */
#ifndef JOBQ_AGENT_STAPSDT_H
#define JOBQ_AGENT_STAPSDT_H

#include <stddef.h>

struct sdt_probe {
	char provider[64];
	char name[64];
};

/*
 * Reads the probe notes of the ELF file at path into *out (malloc'd, at
 * most max entries, duplicates of one provider:name folded). Returns the
 * number found (0: no stapsdt notes), or -1 with a message in err.
 */
int sdt_list(const char *path, struct sdt_probe **out, size_t max, char *err, size_t errlen);

/* Number of probes of provider in list. */
size_t sdt_count_provider(const struct sdt_probe *p, size_t n, const char *provider);

/* "prov:name, prov:name, ..." (truncated to fit buf); "none" when n == 0. */
void sdt_describe(const struct sdt_probe *p, size_t n, char *buf, size_t len);

#endif
