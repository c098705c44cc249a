"""Every `gadget` command: its name, where it lives, and the line `gadget --help` shows.

A command module is imported only when its command runs, so ``gadget list`` never pays for
the registry client, the signer or the compiler driver. The help text is the first
paragraph of the command's docstring (tests/unit/test_cli_registry.py checks that they match), so
the command list is printed without importing any command module.

``target`` is ``module:attribute`` inside :mod:`gadgetsmith.toolchain.cli`; the attribute
is a command function (typer reads its signature) or, for a command group, a
``typer.Typer``. To add a command: write the function in a command module and add a row.
"""

from __future__ import annotations

#: the environment variable a completion script sets when it asks `gadget` for candidates
COMPLETE_VAR = "_GADGET_COMPLETE"


class Command:
    """One row. A plain class: a frozen dataclass costs every `gadget` start ~5 M
    instructions (its methods are generated and compiled at import)."""

    __slots__ = ("name", "target", "help", "hidden", "extra_options")

    def __init__(self, name: str, target: str, help: str, hidden: bool = False,
                 extra_options: bool = False) -> None:
        self.name = name
        self.target = target
        self.help = help
        #: an alias: it runs, but `gadget --help` does not list it
        self.hidden = hidden
        #: options click does not know are the command's to read (``ctx.args``): the params
        #: of `gadget run IMAGE --failed`, which exist only once the image is known
        self.extra_options = extra_options


_LIST_HELP = "List images in the local store."
_RM_HELP = "Remove images (untag; blobs no image uses any more are deleted)."

#: in the order `gadget --help` lists them
COMMANDS: tuple[Command, ...] = (
    Command("init", "scaffold:init",
            "Create a gadget project: program, gadget.yaml, tests and a CI workflow, from a "
            "template."),
    Command("build", "build:build",
            "Compile a gadget for amd64 and arm64 and store it as an OCI image index."),
    Command("list", "images:list_", _LIST_HELP),
    Command("ls", "images:list_", _LIST_HELP, hidden=True),
    Command("inspect", "inspect:inspect",
            "Show an image: index, per-arch manifests, layers, data sources and params."),
    Command("tag", "images:tag", "Give an image another name."),
    Command("rm", "images:rm", _RM_HELP),
    Command("remove", "images:rm", _RM_HELP, hidden=True),
    Command("prune", "images:prune",
            "Remove blobs no image uses and temporary data that killed commands left behind."),
    Command("validate", "metadata:validate",
            "Check gadget.yaml against the schema and against the compiled object."),
    Command("run", "run:run", "Run a gadget here: load, attach, decode and print its events.",
            extra_options=True),
    Command("test", "testing:test",
            "Run a gadget's declarative tests (*.test.yaml) and report like a test runner."),
    Command("publish", "publish:publish_cmd",
            "Build, validate, test, sign and push a gadget: the CI pipeline in one command."),
    Command("push", "registry:push",
            "Push an image (index, all architectures, and its signature tags) to a registry."),
    Command("pull", "pull:pull",
            "Pull an image with all architectures (and its cosign signature tags) into the store."),
    Command("copy", "registry:copy",
            "Copy an image between registries without the local store (blobs are streamed)."),
    Command("login", "login:login",
            "Check credentials against a registry and save them (Docker config format)."),
    Command("logout", "login:logout", "Remove the saved credentials of a registry."),
    Command("export", "archive:export_",
            "Write images (and their signature tags) to a plain tar of an OCI layout, like ig's."),
    Command("import", "archive:import_",
            "Import the images of an OCI layout tar; all or nothing, checked before anything is "
            "stored."),
    Command("registry-check", "login:registry_check",
            "Check a registry: reachable, accepts gadget media types, OCI 1.1 referrers API or tag "
            "fallback."),
    Command("keygen", "signing:keygen",
            "Create an ECDSA P-256 key pair in cosign's format (encrypted .key, PKIX .pub)."),
    Command("sign", "signing:sign",
            "Sign an image: a cosign signature tagged sha256-<digest>.sig next to it."),
    Command("verify", "signing:verify",
            "Verify an image's cosign signature and that its content matches the signed digest."),
    Command("containers", "containers:containers",
            "List the containers gadgets can see, with their namespaces."),
    Command("metadata", "metadata:metadata_app",
            "Generate gadget.yaml from a gadget's compiled object, and show its JSON Schema."),
    Command("check", "btf:check_cmd",
            "On which kernels does the gadget load, and why not (exit 1 when one fails)."),
    Command("btf", "btf:btf_app",
            "Kernel BTF archives in btfhub's layout, for 'gadget build --btfgen' and 'gadget "
            "check'."),
    Command("builder", "builder:builder_app",
            "The builder image 'gadget build --builder' compiles in (Debian's clang-19, libbpf, "
            "bpftool and this SDK)."),
    Command("version", "about:version",
            "Show the versions of gadget, the IG API it follows, clang, bpftool, libbpf and the "
            "kernel."),
    Command("completion", "about:completion", "Print a shell completion script for bash, zsh or fish."),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
