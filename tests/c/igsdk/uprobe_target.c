// SPDX-License-Identifier: Apache-2.0
/* The function the uprobe test probes; the test calls it through ctypes. */
__attribute__((noinline, used)) long igsdk_add6(long a, long b, long c, long d, long e, long f)
{
	long r = a + b + c + d + e + f;

	__asm__ volatile("" : "+r"(r));
	return r;
}
