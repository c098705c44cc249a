"""gadgetsmith toolchain: from gadget sources to signed OCI artifacts."""

__version__ = "0.1.0"
