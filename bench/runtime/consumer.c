/* The C reference consumer of bench/runtime.py: libbpf's ring buffer reader, as fast as C
 * reads the same records.
 *
 *   consumer OBJ drain   load OBJ, attach every program, print "ready", read N from
 *                        stdin (the records now waiting in map "events"), then read
 *                        until N records came and print "COUNT WALL_SECONDS CPU_SECONDS"
 *                        of the reading.
 *
 * Each record is touched (its bytes summed), as any consumer that uses them must. In
 * drain mode the ring is full before reading starts, so the reader never waits: the
 * figure is its speed, not the generator's. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

static long count;
static unsigned long sum;

static int on_sample(void *ctx, void *data, size_t size)
{
	const unsigned char *p = data;
	unsigned long s = 0;

	(void)ctx;
	for (size_t i = 0; i + 8 <= size; i += 8) {
		unsigned long v;
		memcpy(&v, p + i, 8);
		s += v;
	}
	sum += s;
	count++;
	return 0;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct ring_buffer *rb;
	double wall, cpu;
	long want;

	if (argc < 3 || strcmp(argv[2], "drain") != 0)
		return 2;
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj))
		return 1;
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog))
			return 1;
	}
	rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "events"), on_sample, NULL, NULL);
	if (!rb)
		return 1;
	printf("ready\n");
	fflush(stdout);
	if (scanf("%ld", &want) != 1)
		return 2;
	wall = clock_s(CLOCK_MONOTONIC);
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	while (count < want) {
		if (ring_buffer__consume(rb) <= 0)
			ring_buffer__poll(rb, 10);
	}
	wall = clock_s(CLOCK_MONOTONIC) - wall;
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu;
	printf("%ld %.6f %.6f\n", count, wall, cpu);
	fprintf(stderr, "checksum %lu\n", sum);
	return 0;
}
