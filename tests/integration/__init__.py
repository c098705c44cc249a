"""Tests against the real thing: root and BPF, clang, podman, docker-registry, the
interop tools. `make test` runs them with tests/unit (a missing capability fails there)."""
