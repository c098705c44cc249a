"""gadgetsmith runtime: from gadget artifacts to events."""
