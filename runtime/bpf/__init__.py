"""The kernel side: libbpf through ctypes, ELF and BTF readers, the object model, loading and
attaching, the ring buffer read from its pages."""
