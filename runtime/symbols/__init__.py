"""Symbol tables: the kernel's (``/proc/kallsyms``) and user-space ELF files', for the
stack formatters."""
