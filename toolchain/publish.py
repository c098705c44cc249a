"""`gadget publish`: build, validate, test, sign and push a gadget, with one summary.

This is the pipeline a gadget's CI runs (the composite GitHub Action, ``action.yml``, is a
thin wrapper around it, and any other CI system runs the same command). Every step is a
building block another command uses, with the same options:

=========  ===================================================================
preflight  what needs no build: the reference, the destination against the policy
           (``allowedPush``, exit 3), the test specs (and root, and the policy's rule
           on local sources), the signing key and its passphrase, and when pushing
           that the registry answers and takes the credentials
build      ``gadget build DIR -t REF`` into the local store (all architectures)
validate   ``gadget validate REF [--strict]``: the stored gadget.yaml against the
           schema and the built object
test       ``gadget test REF --spec DIR/tests/*.test.yaml``: the built image, loaded
           from the store, not a second build (``--junit FILE``)
sign       the signature the destination gets, as ``gadget push --sign`` makes it
           (nothing is written to the local store)
push       ``gadget push REF``: the image, all architectures, and that signature
=========  ===================================================================

A step that fails stops the pipeline there: the steps after it do not run, and before
``push`` nothing has been sent to the registry. ``publish()`` returns a
:class:`PublishResult` (``as_dict()`` is the JSON summary); on failure it raises
:class:`PublishFailed`, which carries the same result with the failed step and exits with
that step's code (1 a failure, 2 bad input, 3 refused by policy).

The test step runs the image under the rule ``gadget test DIR`` follows (a policy that
restricts what runs must allow local sources): the image was built from the directory a
moment ago, so it has no signature yet that ``allowedGadgets`` could ask for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from gadgetsmith.runtime.bpf.loader import host_arch
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.oci.reference import InvalidReference, Reference, parse
from gadgetsmith.toolchain.build.driver import ALL_ARCHES, BuildResult
from gadgetsmith.toolchain.build.driver import build as build_gadget
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.metadata import buildspec
from gadgetsmith.toolchain.metadata.validate import display_path, validate_image
from gadgetsmith.toolchain.oci.sigtags import signature_tag
from gadgetsmith.toolchain.policy import PUSH, Policy
from gadgetsmith.toolchain.registry.api import RemoteOptions, push_image
from gadgetsmith.toolchain.registry.auth import Credentials
from gadgetsmith.toolchain.registry.client import RegistryAuthError
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing.cli_helpers import push_signatures
from gadgetsmith.toolchain.signing.keys import read_private_key
from gadgetsmith.toolchain.signing.source import signatures_for
from gadgetsmith.toolchain.testing import SUFFIX, report
from gadgetsmith.toolchain.testing import plan as planning
from gadgetsmith.toolchain.testing.runner import CaseResult, Planned, require_root, run_planned

STEPS = ("preflight", "build", "validate", "test", "sign", "push")
OK, FAILED, SKIPPED, RUNNING, NOT_RUN = "ok", "failed", "skipped", "running", "not run"


@dataclass
class Step:
    """One step's outcome: ``message`` is one line (what it did, why it was skipped, or
    the error), ``detail`` what the JSON summary shows of it."""

    name: str
    status: str = NOT_RUN
    message: str = ""
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message,
                "seconds": round(self.seconds, 3), **self.detail}


@dataclass
class PublishOptions:
    """The options of the single commands each step stands for."""

    # build
    arches: Sequence[str] = ALL_ARCHES
    build_file: Path | None = None
    ig_version: str | None = None
    btfgen: bool = False
    btfhub_archive: Path | None = None
    store: Path | None = None
    # validate
    strict: bool = False
    # test
    test: bool = True
    specs: Sequence[Path] = ()  # default: DIR/tests/*.test.yaml
    keyword: str | None = None
    junit: Path | None = None
    # sign
    key: Path | None = None  # None: no signature
    passphrase: bytes | None = None  # None: GADGET_PASSWORD / COSIGN_PASSWORD, else a prompt
    recursive: bool = False
    # push
    push: bool = True
    remote: RemoteOptions = field(default_factory=RemoteOptions)
    #: for the destination registry, this run only (else the auth file's)
    credentials: Credentials | None = None


@dataclass
class PublishResult:
    directory: str
    reference: str
    steps: dict[str, Step] = field(default_factory=lambda: {n: Step(n) for n in STEPS})
    digest: str | None = None
    #: architecture -> per-arch manifest digest
    architectures: dict[str, str] = field(default_factory=dict)
    #: test counts (cases, passed, failed, error, skipped) when the tests ran
    tests: dict[str, int] | None = None
    junit: str | None = None
    signature_tag: str | None = None
    #: every signature tag the destination gets (the index's first; per-arch with recursive)
    signature_tags: list[str] = field(default_factory=list)
    pushed: bool = False
    failed_step: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    @property
    def pinned(self) -> str | None:
        """``host/repo:tag@sha256:...`` once the image is built."""
        return f"{self.reference}@{self.digest}" if self.digest else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "directory": self.directory, "reference": self.reference,
            "digest": self.digest, "pinned": self.pinned, "architectures": self.architectures,
            "tests": self.tests, "junit": self.junit, "signed": bool(self.signature_tags),
            "signatureTag": self.signature_tag, "signatureTags": self.signature_tags,
            "pushed": self.pushed, "failedStep": self.failed_step, "error": self.error,
            "steps": [s.as_dict() for s in self.steps.values()],
        }


class PublishFailed(GadgetError):
    """A `gadget publish` step failed; ``result`` is the summary, ``cause`` the step's own
    error, whose exit code this one takes (1, 2, or 3 for a policy refusal)."""

    def __init__(self, result: PublishResult, step: str, cause: GadgetError) -> None:
        after = ("the push did not complete" if step == "push"
                 else "nothing was pushed")
        super().__init__(f"{cause.message} (gadget publish stopped at {step}: {after})",
                         detail=cause.detail)
        self.result = result
        self.step = step
        self.cause = cause
        self.exit_code = cause.exit_code


#: ``on_step(step)``: called when a step starts (status "running") and when it ends
#: (or is skipped)
StepCallback = Callable[[Step], None]


def publish(directory: Path | str, reference: str, options: PublishOptions | None = None, *,
            on_step: StepCallback | None = None,
            on_case: Callable[[CaseResult], None] | None = None) -> PublishResult:
    """Build, validate, test, sign and push the gadget in ``directory`` as ``reference``
    (``host/repo[:tag]``). Raises :class:`PublishFailed` at the first step that fails."""
    return _Pipeline(Path(directory), reference, options or PublishOptions(), on_step,
                     on_case).run()


def _as_gadget_error(e: GadgetError | OSError | RuntimeGadgetError) -> GadgetError:
    """A step's error as the one line the CLI prints (an OSError names its file)."""
    if isinstance(e, GadgetError):
        return e
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return GadgetError(f"{where}{e.strerror or e}")
    return GadgetError(str(e))


class _Pipeline:
    def __init__(self, directory: Path, reference: str, opts: PublishOptions,
                 on_step: StepCallback | None,
                 on_case: Callable[[CaseResult], None] | None) -> None:
        self.dir = directory
        self.opts = opts
        self.on_step = on_step or (lambda _s: None)
        self.on_case = on_case
        self.result = PublishResult(display_path(directory), reference)
        self.target: Reference | None = None
        self.planned: list[Planned] = []
        self.key: ec.EllipticCurvePrivateKey | None = None
        self.built: BuildResult | None = None
        self.prepared: dict[str, list[sm.SignatureLayer]] | None = None

    def _skip_reason(self, name: str) -> str | None:
        o = self.opts
        if name == "test" and not o.test:
            return "not asked for (--no-test)"
        if name == "sign" and o.key is None:
            return "no signing key (--key)"
        if name == "push" and not o.push:
            return "not asked for (--no-push)"
        return None

    def run(self) -> PublishResult:
        steps: dict[str, Callable[[Step], str]] = {
            "preflight": self.preflight, "build": self.build, "validate": self.validate,
            "test": self.test, "sign": self.sign, "push": self.push,
        }
        for name, run_step in steps.items():
            step = self.result.steps[name]
            reason = self._skip_reason(name)
            if reason is not None:
                step.status, step.message = SKIPPED, reason
                self.on_step(step)
                continue
            step.status = RUNNING
            self.on_step(step)
            started = time.monotonic()
            try:
                step.message = run_step(step)
            except (GadgetError, OSError, RuntimeGadgetError) as exc:
                e = _as_gadget_error(exc)
                step.status, step.message = FAILED, e.message
                step.seconds = time.monotonic() - started
                self.result.failed_step, self.result.error = name, e.message
                self.on_step(step)
                raise PublishFailed(self.result, name, e) from e
            step.status, step.seconds = OK, time.monotonic() - started
            self.on_step(step)
        return self.result

    # ------------------------------------------------------------------------ preflight
    def preflight(self, step: Step) -> str:
        """Everything that can be refused before the build, cheapest first."""
        o = self.opts
        try:
            self.target = parse(self.result.reference)
        except InvalidReference as e:
            raise UsageError(f"image reference {self.result.reference!r}: {e}") from None
        if self.target.digest:
            raise UsageError(f"{self.result.reference}: give a tag, not a digest (the build "
                             "makes the digest)")
        self.result.reference = str(self.target)
        buildspec.load(self.dir, o.build_file)  # a missing directory or bad build.yaml
        policy = o.remote.policy
        entry = policy.check(PUSH, self.target)
        done = [f"{policy.source} allows pushing to it ({entry.text})" if entry else "no push policy"]
        step.detail["policy"] = policy.source if policy.path else None
        if o.test:
            done.append(self._plan_tests(policy))
            if o.junit is not None:  # a report directory of the CI's (reports/junit.xml)
                o.junit.parent.mkdir(parents=True, exist_ok=True)
            step.detail["cases"] = len(self.planned)
        if o.key is not None:
            self.key = read_private_key(o.key, o.passphrase)
            done.append("signing key read")
        if o.push:
            done.append(self._check_registry())
        return "; ".join(done)

    def _plan_tests(self, policy: Policy) -> str:
        specs = list(self.opts.specs) or sorted((self.dir / planning.TESTS_DIR).glob(f"*{SUFFIX}"))
        if not specs:
            raise UsageError(f"{self.dir}: no {planning.TESTS_DIR}/*{SUFFIX} in this gadget: write "
                             "one (see README, 'Testing gadgets'), give --spec FILE, or publish "
                             "without tests (--no-test)")
        policy.check_local_source("dir", self.dir)  # the image comes from this directory
        pairs = planning.collect([self.result.reference], specs)
        self.planned = planning.plan(pairs, self.opts.keyword)
        if not self.planned:
            raise UsageError(f"no case name contains {self.opts.keyword!r}" if self.opts.keyword
                             else "the test specs have no cases")
        require_root()
        n = len(self.planned)
        return f"{n} test case{'s' * (n != 1)} in {len(specs)} spec{'s' * (len(specs) != 1)}"

    def _check_registry(self) -> str:
        """The destination answers and accepts the credentials (``GET /v2/``)."""
        assert self.target is not None
        host = self.target.domain
        creds = self.opts.credentials
        if creds is not None:
            self.opts.remote.credentials[host] = creds
        client = self.opts.remote.client(host)
        try:
            client.send("GET", "/v2/", scope=None, what=f"push to {host}").close()
        except RegistryAuthError as e:
            if creds is None or "rejected" not in e.message:
                raise
            raise RegistryAuthError(
                f"push to {host}: {host} rejected the credentials of user {creds.username!r} "
                "(--username and the password on stdin): check them") from None
        return f"{host} reachable" + (f" as {creds.username}" if creds else "")

    # ------------------------------------------------------------------------ the steps
    def build(self, step: Step) -> str:
        o = self.opts
        self.built = build_gadget(
            self.dir, tag=self.result.reference, arches=o.arches, store_path=o.store,
            build_file=o.build_file, ig_builder_version=o.ig_version, validate_metadata=False,
            btfgen=o.btfgen, btfhub_archive=o.btfhub_archive)
        r = self.result
        r.digest = self.built.digest
        r.architectures = {str(m["platform"]["architecture"]): str(m["digest"])
                           for m in self.built.image.index["manifests"]}
        step.detail.update(digest=r.digest, architectures=r.architectures)
        if self.built.btfgen is not None:
            step.detail["btfgen"] = self.built.btfgen
        return f"{r.digest} ({', '.join(r.architectures)})"

    def validate(self, step: Step) -> str:
        arches = self.result.architectures
        arch = host_arch() if host_arch() in arches else next(iter(arches), "amd64")
        spec = buildspec.load(self.dir, self.opts.build_file)
        label = display_path(spec.metadata) if spec.metadata else "gadget.yaml"
        rep = validate_image(self.result.reference, self.opts.store, self.opts.strict,
                             arch=arch, label=label)
        step.detail["warnings"] = [d.format() for d in rep.warnings]
        if rep.errors or (self.opts.strict and rep.warnings):
            raise GadgetError(f"{label}: metadata is not valid ({rep.summary()}"
                              f"{'; --strict fails on warnings' if not rep.errors else ''})",
                              detail="\n".join(d.format() for d in rep.diagnostics))
        return rep.summary()

    def test(self, step: Step) -> str:
        o = self.opts
        # the policy's rule on local sources was applied in preflight (the image was just
        # built from the directory, and is not signed yet)
        planning.prepare_all(self.planned, store=o.store, policy=Policy(), remote=o.remote)
        results: list[CaseResult] = []
        try:
            results = run_planned(self.planned, on_result=self._case_done(results))
        finally:
            if o.junit is not None:
                report.write_junit(results, o.junit)
                self.result.junit = str(o.junit)
                step.detail["junit"] = str(o.junit)
            c = report.counts(results)
            self.result.tests = {"cases": len(results), **c}
            step.detail["summary"] = self.result.tests
        text = report.summary(results)
        if any(not r.ok for r in results):
            raise GadgetError(f"gadget test: {text}")
        return text

    def _case_done(self, results: list[CaseResult]) -> Callable[[CaseResult], None]:
        def done(r: CaseResult) -> None:
            results.append(r)
            if self.on_case is not None:
                self.on_case(r)
        return done

    def sign(self, step: Step) -> str:
        assert self.target is not None and self.key is not None and self.result.digest
        self.prepared = push_signatures(self.result.reference, self.target, self.key,
                                        self.opts.recursive, self.opts.store)
        index_tag = signature_tag(self.result.digest)
        tags = [index_tag] + sorted(t for t in self.prepared if t != index_tag)
        self.result.signature_tag, self.result.signature_tags = index_tag, tags
        step.detail.update(signatureTag=index_tag, signatureTags=tags)
        n = len(tags)
        return f"{index_tag}" + (f" and {n - 1} per-arch signature{'s' * (n != 2)}" if n > 1 else "")

    def push(self, step: Step) -> str:
        """The image and its signatures by digest first, the tag last: a push that fails
        (a signature the registry refuses, a cut connection) leaves no tag naming an image
        without its signature. The tag is then one manifest request."""
        assert self.target is not None and self.result.digest
        selector = partial(signatures_for, prepared=self.prepared) if self.prepared else signatures_for
        by_digest = f"{self.target.name}@{self.result.digest}"
        stats = push_image(self.result.reference, dest=by_digest, store_path=self.opts.store,
                           options=self.opts.remote, signatures=selector)
        push_image(self.result.reference, store_path=self.opts.store, options=self.opts.remote,
                   with_signature=False)
        self.result.pushed = True
        step.detail["stats"] = {**stats.as_dict(), "reference": self.result.reference}
        if stats.warnings:
            step.detail["warnings"] = [f"warning: {w}" for w in stats.warnings]
        return (f"{self.result.pinned}: {stats.transferred}/{stats.blobs} blobs, "
                f"{stats.bytes} bytes")


__all__ = ["NOT_RUN", "OK", "FAILED", "RUNNING", "SKIPPED", "STEPS", "PublishFailed", "PublishOptions",
           "PublishResult", "Step", "publish"]
