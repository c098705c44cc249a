"""Read access to gadget images: the OCI layout of the store, references, media types, configs."""
