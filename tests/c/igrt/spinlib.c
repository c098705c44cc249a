/* The library the spinner may call (user stacks through a shared object). */
__attribute__((noinline)) void gadgetsmith_lib_spin(void)
{
	volatile unsigned long n = 0;

	for (int i = 0; i < 100000; i++)
		n++;
}
