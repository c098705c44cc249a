/* A process that spends its time in functions of its own and of a library it loads:
 * the target of the user-stack tests. argv[1]: seconds to run; argv[2] (optional): a
 * shared library with gadgetsmith_lib_spin() to call instead. */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) void gadgetsmith_spin_inner(volatile unsigned long *n)
{
	for (int i = 0; i < 100000; i++)
		(*n)++;
}

__attribute__((noinline)) void gadgetsmith_spin(double seconds, void (*lib)(void))
{
	volatile unsigned long n = 0;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		if (lib)
			lib();
		else
			gadgetsmith_spin_inner(&n);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
}

int main(int argc, char **argv)
{
	void (*lib)(void) = NULL;

	if (argc > 2) {
		void *h = dlopen(argv[2], RTLD_NOW);
		if (!h || !(lib = (void (*)(void))dlsym(h, "gadgetsmith_lib_spin")))
			return 2;
	}
	gadgetsmith_spin(argc > 1 ? atof(argv[1]) : 5, lib);
	return 0;
}
