"""Errors a user can cause: reported as one actionable line and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, model or environment (not a bug in tfinterop)."""

    exit_code = 2
