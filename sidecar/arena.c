/* arena.c - bump allocator (see arena.h). */
#include "sidecar/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (256 * 1024)

struct sc_arena_chunk {
	struct sc_arena_chunk *next;
	size_t size, off;
	_Alignas(16) unsigned char mem[];
};

void sc_arena_init(struct sc_arena *a, size_t limit)
{
	a->head = NULL;
	a->used = 0;
	a->limit = limit ? limit : SIZE_MAX;
}

void *sc_arena_alloc(struct sc_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	if (n > a->limit - a->used)
		return NULL;
	struct sc_arena_chunk *c = a->head;
	if (!c || c->size - c->off < n) {
		size_t size = n > CHUNK_MIN ? n : CHUNK_MIN;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->off = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->mem + c->off;
	c->off += n;
	a->used += n;
	memset(p, 0, n);
	return p;
}

char *sc_arena_strndup(struct sc_arena *a, const char *s, size_t n)
{
	char *p = sc_arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void sc_arena_free(struct sc_arena *a)
{
	struct sc_arena_chunk *c = a->head;
	while (c) {
		struct sc_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
}

static void *pb_alloc(void *data, size_t n)
{
	return sc_arena_alloc(data, n);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void sc_arena_pb_allocator(struct sc_arena *a, ProtobufCAllocator *out)
{
	out->alloc = pb_alloc;
	out->free = pb_free;
	out->allocator_data = a;
}
