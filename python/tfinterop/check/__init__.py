"""``tfinterop check PATH``: run someone else's model through every consumer and compare.

The reference is Python: the first run of the model by the registry's ``REFERENCE``
consumer, ``python`` (TensorFlow's Python API is what the model was written and tested with). Every consumer that loads the
format, ``python`` included, runs it and is compared with that reference exactly as
``interop`` compares with an export's reference. The reference and the ``python`` row come
from one Python process (one ``import tensorflow``): when no checked signature writes state
the row is a later run of the reference's load, so a model that does not reproduce itself
(random ops, state leaking between runs) shows there; otherwise each job loads afresh. With
``--expected FILE.npz`` (values recorded elsewhere: by whoever trained the model, or a
published test value) every consumer, Python included, is also compared with those, in rows
labelled ``<model> vs expected``. When the reference cannot be produced, the consumers that
ran are compared with each other instead (``<model> consensus`` rows, one per pair), and
their own rows say there is no Python reference.

Python loads TF1 SavedModels (no object graph) in a v1 Session over the MetaGraph, as TF1
serving and the C API do, and falls back to that when ``tf.saved_model.load`` cannot revive
a TF2 SavedModel's objects (``--python-loader`` forces either way). Inspecting the model
needs no ``import tensorflow`` in this process, so the consumers start within a second.

Each consumer loads the model afresh, so a stateful signature (one that applies a training
step) starts from the same restored state in every consumer; the outputs compared are
those of each consumer's first run. Working files (generated inputs, the reference, the
consumers' outputs) go under ``build/check/``.

Modules: ``options`` (what a check is asked: ``CheckOptions``, defaults and limits),
``inputs`` (``.npz`` files, dtype fitting, generated inputs), ``specs`` (what each case feeds
and fetches, from the inspection), ``prepare`` (cases with their inputs written, the work
directory), ``reference`` (the reference consumer's run), ``consensus`` (rows comparing the
consumers with each other), ``run`` (``run_check``), ``result`` (``CheckResult``), ``notes``
(lines under the table, option warnings, key checks), ``save_fixture`` (``--save-fixture``).
"""

from __future__ import annotations

from .notes import notes
from .options import (
    DEFAULT_DIM,
    DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_SIGNATURE,
    DEFAULT_TOLERANCE,
    GRAPH_SIGNATURE,
    MAX_GENERATED_BYTES,
    MAX_INPUT_BYTES_VARIABLE,
    CheckOptions,
    FeatureSpec,
)
from .prepare import PreparedCase
from .result import CheckResult
from .run import default_label, run_check
from .save_fixture import FIXTURE_TEMPLATE, save_fixture

__all__ = [
    "DEFAULT_DIM", "DEFAULT_MAX_INPUT_BYTES", "DEFAULT_SIGNATURE", "DEFAULT_TOLERANCE",
    "FIXTURE_TEMPLATE", "GRAPH_SIGNATURE", "MAX_GENERATED_BYTES", "MAX_INPUT_BYTES_VARIABLE",
    "CheckOptions", "CheckResult", "FeatureSpec", "PreparedCase", "default_label", "notes",
    "run_check", "save_fixture",
]  # fmt: skip
