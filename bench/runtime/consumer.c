/* Minimal libbpf ring-buffer consumer for bench/runtime.py: load OBJ, attach every
 * program, count records of map "events" for SECONDS (after printing "ready"). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <bpf/libbpf.h>

static long count;

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx; (void)data; (void)size;
	count++;
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct ring_buffer *rb;
	double end;

	if (argc < 3)
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
	end = now() + atof(argv[2]);
	while (now() < end)
		ring_buffer__poll(rb, 50);
	printf("%ld\n", count);
	return 0;
}
