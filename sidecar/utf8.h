/*
 * utf8.h - make byte strings valid UTF-8 before they are packed.
 *
 * Protobuf `string` fields and JSON must be UTF-8; tenant ids and job types
 * come from users through the kernel and may be anything. Every maximal
 * invalid subsequence is replaced by U+FFFD (the WHATWG / Unicode "best
 * practice"), so valid text passes through byte for byte.
 */
#ifndef SC_UTF8_H
#define SC_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool sc_utf8_valid(const char *s, size_t n);
/* Worst case output size of sc_utf8_repair for n input bytes. */
#define SC_UTF8_REPAIR_MAX(n) ((n) * 3)
/* Writes the repaired string to out (capacity >= SC_UTF8_REPAIR_MAX(n)),
 * returns its length. out is not NUL-terminated. */
size_t sc_utf8_repair(const char *s, size_t n, char *out);

#endif
