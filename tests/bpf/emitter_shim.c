/*
 * emitter_shim.c - a program without probes of its own whose probes come
 * from a shared library (libjobq_emitter.so), like a worker using libjobq.
 */
int emitter_main(int argc, char **argv);

int main(int argc, char **argv)
{
	return emitter_main(argc, argv);
}
