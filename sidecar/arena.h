/*
 * arena.h - bump allocator for building one OTLP request.
 *
 * A request is thousands of small protobuf-c structs that all die together
 * after packing; one arena per request makes that a handful of mallocs and
 * one free, and lets a size limit bound the whole build.
 */
#ifndef SC_ARENA_H
#define SC_ARENA_H

#include <stddef.h>

struct sc_arena_chunk;

struct sc_arena {
	struct sc_arena_chunk *head;
	size_t used;  /* bytes handed out, over all chunks */
	size_t limit; /* sc_arena_alloc fails beyond this; 0 = no limit */
};

void sc_arena_init(struct sc_arena *a, size_t limit);
/* Zeroed, 16-byte aligned memory, or NULL (limit reached or ENOMEM). */
void *sc_arena_alloc(struct sc_arena *a, size_t n);
char *sc_arena_strndup(struct sc_arena *a, const char *s, size_t n);
void sc_arena_free(struct sc_arena *a);

/* A protobuf-c allocator over an arena (free is a no-op): decoding a frame
 * then costs a few large blocks that go back to the system together. */
#include <protobuf-c/protobuf-c.h>
void sc_arena_pb_allocator(struct sc_arena *a, ProtobufCAllocator *out);

#endif
