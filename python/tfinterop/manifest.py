"""The export manifest: what was exported, how to feed it, and what Python computed.

Written by the export stage as ``manifest.json`` beside the artifacts; read by every later
stage without importing TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass
class TensorEntry:
    key: str
    """Signature key (SavedModel) or tensor name (frozen graph)."""
    tensor: str
    """Graph tensor name the key resolves to (``serving_default_x:0``, ``Identity:0``)."""
    dtype: str
    shape: list[int]
    file: str
    """Relative to the export directory."""
    sha256: str = ""
    image: str = ""
    """Inputs only: a PNG (relative path) that decodes to ``file`` (see ``images.py``)."""
    photo: str = ""
    """Inputs only: the photo (relative path) the fixture preprocessed into ``file``
    (``Signature.photos``), for consumers that preprocess it themselves (``photo_input``)."""


@dataclass
class Case:
    """One model entry point in one format: the unit consumers run and the report shows."""

    format: str
    signature: str
    model: str
    inputs: list[TensorEntry]
    outputs: list[TensorEntry]
    tags: list[str] = field(default_factory=list)
    method: str = ""

    def input(self, key: str) -> TensorEntry:
        return next(entry for entry in self.inputs if entry.key == key)


@dataclass
class Manifest:
    fixture: str
    cache_key: str
    tf_version: str
    keras_version: str
    seed: int
    environment: dict[str, str]
    tolerance: dict[str, float]
    output_tolerances: dict[str, dict[str, float]]
    cases: list[Case]
    artifacts: dict[str, str]
    export_seconds: float
    manifest_version: int = MANIFEST_VERSION
    directory: Path = field(default=Path(), compare=False, repr=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("directory")
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_NAME
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(
                f"{path} is missing: run the export stage (`tfinterop export`)"
            ) from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc}); delete it to re-export") from None
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise UserError(
                f"{path} has manifest version {data.get('manifest_version')}, expected {MANIFEST_VERSION}"
            )
        try:
            cases = [
                Case(
                    **{
                        **case,
                        "inputs": [TensorEntry(**entry) for entry in case["inputs"]],
                        "outputs": [TensorEntry(**entry) for entry in case["outputs"]],
                    }
                )
                for case in data.pop("cases")
            ]
            return cls(**data, cases=cases, directory=directory)
        except (TypeError, KeyError) as exc:  # hand-edited, or written by another version
            raise UserError(
                f"{path} does not have the manifest layout ({exc}); delete it to re-export"
            ) from None
