/*
 * other_probes.c - a program with USDT probes of another provider, so the
 * agent's "no jobq probes" error can be checked to list what it found.
 */
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	(void)argv;
	STAP_PROBE1(otherprov, hello, argc);
	STAP_PROBE(otherprov, bye);
	return 0;
}
