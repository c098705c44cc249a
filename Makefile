# gadgetsmith: `make demo` and `make test` do all set-up on a fresh Debian 12 machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the toolchain and its tests use (see ../shared environment facts).
APT_PACKAGES := clang-19 llvm-19 bpftool libbpf-dev libbpf1 linux-libc-dev skopeo podman runc busybox-static docker-registry apache2-utils openssl systemtap-sdt-dev lz4 zstd wasi-libc lld-19 libclang-rt-19-dev-wasm32 mmdebstrap

STAMP := $(VENV)/.installed-stamp
DEMO_STORE ?= $(CURDIR)/.demo-store

.PHONY: setup system-deps interop-tools demo test test-unit lint clean

setup: system-deps $(STAMP)

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

demo: setup
	@echo "== building sample-gadgets/trace_open (amd64 + arm64)"
	$(BIN)/gadget --store $(DEMO_STORE) build sample-gadgets/trace_open -t trace_open:dev
	$(BIN)/gadget --store $(DEMO_STORE) list
	@echo "== running it for 5 s; 'cat' opens a few files meanwhile (needs root for eBPF)"
	@(sleep 2; cat /etc/os-release >/dev/null; cat /nonexistent-demo-file 2>/dev/null; true) &
	$(SUDO) $(BIN)/gadget --store $(DEMO_STORE) run trace_open:dev --host --timeout 5 \
	  --filter 'proc.comm==cat' --fields comm,pid,error,flags,fname

# cosign (v2, v3), oras and crane, pinned, for tests/integration/test_interop_tools.py: built with Go
# once per machine into ~/.cache/gadgetsmith/go-bin, a no-op when they are there.
interop-tools:
	@scripts/install-interop-tools.sh

# GADGETSMITH_REQUIRE_PRIVILEGES=1 turns "needs root/BPF" skips into failures.
# tests/unit: no root, podman or registry, seconds; tests/integration: the real thing.
test: setup interop-tools
	GADGETSMITH_REQUIRE_PRIVILEGES=1 $(BIN)/python -m pytest -q -n 2 tests

test-unit: setup
	$(BIN)/python -m pytest -q -n 2 tests/unit

# mypy reads the package through build/typecheck/gadgetsmith/{toolchain,runtime,schemas}: symlinks
# to the source folders (the editable install maps them with an import hook, which mypy
# cannot follow). Configuration: [tool.mypy] in pyproject.toml.
TYPECHECK := build/typecheck/gadgetsmith
MYPY_PACKAGES := gadgetsmith.toolchain gadgetsmith.runtime

lint: setup
	$(BIN)/ruff check toolchain runtime tests bench
	@mkdir -p $(TYPECHECK)
	@ln -sfn ../../../toolchain $(TYPECHECK)/toolchain
	@ln -sfn ../../../runtime $(TYPECHECK)/runtime
	@ln -sfn ../../../schemas $(TYPECHECK)/schemas
	$(BIN)/mypy $(addprefix -p ,$(MYPY_PACKAGES))

clean:
	rm -rf $(VENV) $(DEMO_STORE) build *.egg-info
