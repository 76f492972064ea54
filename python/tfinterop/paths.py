"""Where things are: the source checkout (c_consumer/, rust_consumer/, fixtures/) and the
default build directory."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def project_root() -> Path:
    """The source checkout holding c_consumer/ and rust_consumer/."""
    candidates = [Path(__file__).resolve().parents[2], Path.cwd(), *Path.cwd().parents]
    for candidate in candidates:
        if (candidate / "c_consumer").is_dir() and (candidate / "rust_consumer").is_dir():
            return candidate
    raise UserError(
        "cannot find the tfinterop source checkout (c_consumer/, rust_consumer/); run from it"
    )


def default_build_dir() -> Path:
    configured = os.environ.get("TFINTEROP_BUILD_DIR")
    if configured:
        return Path(configured).resolve()
    try:
        return project_root() / "build"
    except UserError:
        return Path.cwd() / "build"


def default_fixtures_dir() -> Path:
    try:
        return project_root() / "fixtures"
    except UserError:
        return Path.cwd() / "fixtures"
