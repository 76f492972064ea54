"""Exporting one fixture into a directory: seed everything, build the model, run each
signature on its inputs for the Python reference, write the tensors, hand the model to the
format writers, and record it all in the manifest."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..errors import UserError
from ..fixtures import (
    ALL_FORMATS,
    BuildContext,
    ExportSpec,
    Fixture,
    PrebuiltSpec,
    Signature,
    check_key,
)
from ..formats import FROZEN, SAVED_MODEL, TFLITE
from ..images import decode_png
from ..manifest import Case, Manifest, TensorEntry
from .artifacts import write_manifest, write_tensors
from .formats.frozen import export_frozen
from .formats.saved_model import export_saved_model
from .formats.tflite import export_tflite
from .prebuilt import export_prebuilt


def _seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow generators
    tf.random.set_seed(seed)


def export_fixture(fixture: Fixture, out: Path, key: str, environment: dict[str, str]) -> Manifest:
    import tensorflow as tf

    started = time.perf_counter()
    _seed_everything(fixture.seed)
    spec = fixture.build(BuildContext(fixture, np.random.default_rng(fixture.seed)))
    if isinstance(spec, PrebuiltSpec):  # a model exported elsewhere (check --save-fixture)
        return export_prebuilt(fixture, spec, out, key, environment, started)
    if not isinstance(spec, ExportSpec):
        raise UserError(
            f"fixture {fixture.name}: build() returned {type(spec).__name__}, not ExportSpec"
        )
    unknown = set(spec.formats) - set(ALL_FORMATS)
    if unknown:
        raise UserError(f"fixture {fixture.name}: unknown format(s) {sorted(unknown)}")

    cases: list[Case] = []
    references: dict[str, dict[str, np.ndarray]] = {}
    input_entries: dict[str, list[TensorEntry]] = {}
    output_entries: dict[str, list[TensorEntry]] = {}
    for signature_key, signature in spec.signatures.items():
        check_key(fixture.name, "signature key", signature_key)
        concrete = _concrete_function(fixture, signature_key, signature.function)
        arg_names = _input_names(concrete)
        for name in arg_names:
            check_key(fixture.name, f"signature {signature_key}: input name", name)
        given = {**signature.inputs, **_decode_images(fixture, signature_key, signature)}
        inputs = _check_inputs(fixture, signature_key, arg_names, given)
        reference = signature.function(
            **{name: tf.constant(value) for name, value in inputs.items()}
        )
        if not isinstance(reference, dict):
            raise UserError(
                f"fixture {fixture.name}: signature {signature_key} must return a dict of named "
                f"outputs, got {type(reference).__name__}"
            )
        for output_key in reference:
            check_key(fixture.name, f"signature {signature_key}: output key", output_key)
        references[signature_key] = {k: tensors.from_tensorflow(v) for k, v in reference.items()}
        input_entries[signature_key] = write_tensors(out, "inputs", signature_key, inputs)
        _ship_images(out, signature, input_entries[signature_key])
        _ship_photos(fixture, out, signature_key, signature, input_entries[signature_key])
        output_entries[signature_key] = write_tensors(
            out, "reference", signature_key, references[signature_key]
        )
        if FROZEN in spec.formats:
            frozen_source = concrete
            if signature.frozen_function is not None:
                frozen_source = _concrete_function(
                    fixture, signature_key, signature.frozen_function
                )
            cases.append(
                export_frozen(
                    out,
                    signature_key,
                    frozen_source,
                    input_entries[signature_key],
                    output_entries[signature_key],
                    lower_control_flow=spec.lower_control_flow,
                )
            )
        if TFLITE in spec.formats:
            cases.append(
                export_tflite(
                    out,
                    signature_key,
                    concrete,
                    spec.module,
                    input_entries[signature_key],
                    output_entries[signature_key],
                )
            )

    if SAVED_MODEL in spec.formats:
        cases += export_saved_model(fixture, spec, out, input_entries, output_entries)

    return write_manifest(fixture, key, environment, cases, out, started)


def _decode_images(fixture: Fixture, key: str, signature: Signature) -> dict[str, np.ndarray]:
    overlap = set(signature.images) & set(signature.inputs)
    if overlap:
        raise UserError(
            f"fixture {fixture.name}: signature {key} gives {sorted(overlap)} both as an array "
            "and as an image"
        )
    return {name: decode_png(path) for name, path in signature.images.items()}


def _ship_images(out: Path, signature: Signature, entries: list[TensorEntry]) -> None:
    """Copy each image next to the input it decodes to, for consumers that decode PNGs."""
    for entry in entries:
        if entry.key in signature.images:
            target = (out / entry.file).with_suffix(".png")
            shutil.copyfile(signature.images[entry.key], target)
            entry.image = str(target.relative_to(out))


def _ship_photos(
    fixture: Fixture, out: Path, key: str, signature: Signature, entries: list[TensorEntry]
) -> None:
    """Copy each photo next to the array the fixture preprocessed from it, for consumers that
    preprocess it themselves; the array stays the input of every other consumer."""
    strays = sorted(set(signature.photos) - set(signature.inputs))
    if strays:
        raise UserError(
            f"fixture {fixture.name}: signature {key} gives photos for {strays} but no array "
            "(inputs=) preprocessed from them"
        )
    for entry in entries:
        if entry.key in signature.photos:
            source = Path(signature.photos[entry.key])
            if not source.is_file():
                raise UserError(f"fixture {fixture.name}: photo {source} does not exist")
            target = (out / entry.file).with_name(f"{Path(entry.file).stem}.photo{source.suffix}")
            shutil.copyfile(source, target)
            entry.photo = str(target.relative_to(out))


def _concrete_function(fixture: Fixture, key: str, function: Any) -> Any:
    if getattr(function, "input_signature", None) is None:
        raise UserError(
            f"fixture {fixture.name}: signature {key} needs a tf.function with input_signature="
            "[tf.TensorSpec(..., name=...)] so its inputs are named"
        )
    return function.get_concrete_function()


def _input_names(concrete: Any) -> list[str]:
    import tensorflow as tf

    specs = tf.nest.flatten(concrete.structured_input_signature)
    names = [spec.name for spec in specs]
    if any(not name for name in names):
        raise UserError(
            "every TensorSpec in input_signature needs a name= (it becomes the input key)"
        )
    return names


def _check_inputs(
    fixture: Fixture, key: str, names: list[str], inputs: Any
) -> dict[str, np.ndarray]:
    given = dict(inputs)
    if sorted(given) != sorted(names):
        raise UserError(
            f"fixture {fixture.name}: signature {key} takes inputs {sorted(names)} but the fixture "
            f"provides {sorted(given)}"
        )
    return {name: np.asarray(given[name]) for name in names}
