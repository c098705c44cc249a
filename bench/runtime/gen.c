/* Event generator for bench/runtime.py: getppid(2) in a loop.
 * gen SECONDS [RATE]: as fast as possible, or RATE calls per second in 1 ms steps.
 * Prints the number of calls made. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	long rate = argc > 2 ? atol(argv[2]) : 0;
	long n = 0;
	double start = now(), end = start + secs;

	if (rate <= 0) {
		while (1) {
			for (int i = 0; i < 1000; i++)
				syscall(SYS_getppid);
			n += 1000;
			if (now() >= end)
				break;
		}
	} else {
		struct timespec next;
		clock_gettime(CLOCK_MONOTONIC, &next);
		long ticks = (long)(secs * 1000);
		for (long t = 1; t <= ticks; t++) {
			long target = rate * t / 1000;
			while (n < target) {
				syscall(SYS_getppid);
				n++;
			}
			next.tv_nsec += 1000000;
			if (next.tv_nsec >= 1000000000) {
				next.tv_nsec -= 1000000000;
				next.tv_sec++;
			}
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		}
	}
	printf("%ld %.6f\n", n, now() - start);
	return 0;
}
