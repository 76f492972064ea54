"""``tfinterop inspect PATH``: what a SavedModel or frozen graph takes, returns and needs.

The first questions about someone else's model are "what are the input and output names?"
(layer names are not op names; TF2 inputs are ``serving_default_x:0``, outputs hide behind
``StatefulPartitionedCall_N:0``; a TF1 signature may feed an ``Identity``) and "will the
runtime I ship load it?" (ops the consumers' libtensorflow does not register, or registers
without a CPU kernel, fail with "Op type not registered" / "No OpKernel was registered").

Modules: ``analyse`` (the inspection records), ``render`` (the console view), ``graphdef``
and ``savedmodel`` (reading the protos without importing TensorFlow), ``kernels`` (the
consumers' op and kernel registry), ``compat`` (what fails in another TensorFlow runtime,
given its registry).
"""

from __future__ import annotations

from ..formats import SAVED_MODEL
from .analyse import (
    FEEDABLE_INPUT_OPS,
    GRAPH_DEF,
    INIT_SIGNATURE_PREFIX,
    Inspection,
    KernelCheck,
    MetaGraphReport,
    SignatureReport,
    format_shape,
    graph_def_versions,
    inspect_graph_def,
    inspect_model,
    inspect_saved_model,
    model_format,
)
from .compat import Incompatibility, ModelGraphs, RuntimeCheck, model_graphs, predict
from .render import render

__all__ = [
    "FEEDABLE_INPUT_OPS",
    "GRAPH_DEF",
    "INIT_SIGNATURE_PREFIX",
    "SAVED_MODEL",
    "Incompatibility",
    "Inspection",
    "KernelCheck",
    "MetaGraphReport",
    "ModelGraphs",
    "RuntimeCheck",
    "SignatureReport",
    "format_shape",
    "graph_def_versions",
    "inspect_graph_def",
    "inspect_model",
    "inspect_saved_model",
    "model_format",
    "model_graphs",
    "predict",
    "render",
]
