/*
 * stapsdt.c - parse .note.stapsdt with libelf (see stapsdt.h).
 *
 * Note layout (name "stapsdt", type 3): pc, base, semaphore as 64-bit
 * addresses, then provider\0 name\0 arguments\0.
 */
#include "agent/stapsdt.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT_STAPSDT 3

static int seen(const struct sdt_probe *p, size_t n, const char *prov, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(p[i].provider, prov) && !strcmp(p[i].name, name))
			return 1;
	return 0;
}

/* Adds the probes of one note section; returns the new count. */
static size_t scan_notes(Elf_Data *data, struct sdt_probe *out, size_t n, size_t max)
{
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;

	while (n < max && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *desc = (const char *)data->d_buf + desc_off;
		const char *prov, *name, *end = desc + nh.n_descsz;

		if (nh.n_type != NT_STAPSDT || nh.n_namesz != sizeof("stapsdt") ||
		    memcmp((const char *)data->d_buf + name_off, "stapsdt", nh.n_namesz) ||
		    nh.n_descsz < 3 * 8 + 2)
			continue;
		prov = desc + 3 * 8;
		name = memchr(prov, '\0', (size_t)(end - prov));
		if (!name || ++name >= end || !memchr(name, '\0', (size_t)(end - name)))
			continue; /* malformed note: ignore it */
		if (strlen(prov) >= sizeof(out->provider) || strlen(name) >= sizeof(out->name) ||
		    seen(out, n, prov, name))
			continue;
		strcpy(out[n].provider, prov);
		strcpy(out[n].name, name);
		n++;
	}
	return n;
}

int sdt_list(const char *path, struct sdt_probe **out, size_t max, char *err, size_t errlen)
{
	struct sdt_probe *p = NULL;
	Elf_Scn *scn = NULL;
	Elf *elf = NULL;
	size_t n = 0, shstrndx;
	int fd, rc = -1;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		snprintf(err, errlen, "%s: not an ELF file", path);
		goto out;
	}
	if (elf_getshdrstrndx(elf, &shstrndx)) {
		snprintf(err, errlen, "%s: %s", path, elf_errmsg(-1));
		goto out;
	}
	p = calloc(max ? max : 1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *sname;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		sname = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!sname || strcmp(sname, ".note.stapsdt"))
			continue;
		data = elf_getdata(scn, NULL);
		if (data)
			n = scan_notes(data, p, n, max);
	}
	*out = p;
	p = NULL;
	rc = (int)n;
out:
	free(p);
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}

size_t sdt_count_provider(const struct sdt_probe *p, size_t n, const char *provider)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += !strcmp(p[i].provider, provider);
	return c;
}

void sdt_describe(const struct sdt_probe *p, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return;
	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, len, "none");
		return;
	}
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s:%s", i ? ", " : "", p[i].provider,
				 p[i].name);

		if (w < 0 || (size_t)w >= len - used) {
			if (len > 4)
				strcpy(buf + len - 4, "...");
			return;
		}
		used += (size_t)w;
	}
}
