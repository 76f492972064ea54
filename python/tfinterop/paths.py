"""Where things are: the consumer sources and fixtures (a checkout's, or the copy in an
installed wheel) and the default build directory."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

BUNDLED = Path(__file__).resolve().parent / "_bundled"
"""Where a wheel install keeps the consumer sources and fixtures (setup.py puts them)."""


def project_root() -> Path:
    """Where the consumer sources (c_consumer/, rust_consumer/) and built-in fixtures are:
    the source checkout this package runs from, else the copy an installed wheel carries."""
    for candidate in (Path(__file__).resolve().parents[2], BUNDLED):
        if (candidate / "c_consumer").is_dir() and (candidate / "rust_consumer").is_dir():
            return candidate
    raise UserError(
        f"cannot find the consumer sources (c_consumer/, rust_consumer/) in a checkout or in "
        f"{BUNDLED}: reinstall tfinterop from its wheel or sdist"
    )


def is_checkout() -> bool:
    """Running from a source checkout (a developer's), not from an installed wheel."""
    return project_root() != BUNDLED


def default_build_dir() -> Path:
    """``TFINTEROP_BUILD_DIR``; else a checkout's build/; else the per-user cache
    (``TFINTEROP_CACHE_DIR``), where consumer builds are keyed by source fingerprint and
    TensorFlow wheel, so every project on the machine shares them."""
    configured = os.environ.get("TFINTEROP_BUILD_DIR")
    if configured:
        return Path(configured).resolve()
    if is_checkout():
        return project_root() / "build"
    from .cached_install import cache_root

    return cache_root() / "build"


def default_fixtures_dir() -> Path:
    return project_root() / "fixtures"
