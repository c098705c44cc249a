"""Containers on this host: runtime sources (podman, docker, containerd, CRI-O), the collection, selectors."""
