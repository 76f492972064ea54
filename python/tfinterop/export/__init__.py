"""Export stage: fixture -> frozen GraphDef + SavedModel (+ TFLite) + inputs + Python
reference + manifest.

Exports are cached by content: the key hashes the fixture file and its data, the seed, the
TensorFlow version, the oneDNN setting and this exporter's own source. A cache entry is
built in a temporary directory and renamed into place, so an interrupted run never leaves a
half-written entry that a later run would trust.

Modules: ``cache`` (keys, lock, atomic swap), ``writer`` (one fixture into one directory),
``formats/`` (one writer per model format), ``prebuilt`` (models exported elsewhere),
``artifacts`` (the entry's layout, tensor files and manifest).
"""

from __future__ import annotations

from .cache import (
    ExportOutcome,
    cache_key,
    cached_manifest,
    export_environment,
    export_fixtures,
    exporter_digest,
)
from .writer import export_fixture

__all__ = [
    "ExportOutcome",
    "cache_key",
    "cached_manifest",
    "export_environment",
    "export_fixture",
    "export_fixtures",
    "exporter_digest",
]
