"""Tests that need no root, podman or registry and run in seconds: `make test-unit`."""
