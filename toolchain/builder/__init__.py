"""The container builder: a builder image of Debian packages, and builds run in it (Docker API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gadgetsmith.toolchain import __version__

#: the image `gadget builder create` makes and `gadget build --builder` uses by default
DEFAULT_IMAGE = f"localhost/gadgetsmith-builder:{__version__}"

PullPolicy = Literal["always", "missing", "never"]
PULL_POLICIES: tuple[PullPolicy, ...] = ("always", "missing", "never")


@dataclass(frozen=True)
class BuilderOptions:
    """`gadget build --builder`: which image, and when to pull it (``missing`` by default:
    the default image is made locally by `gadget builder create`, not pulled)."""

    image: str = DEFAULT_IMAGE
    pull: PullPolicy = "missing"
