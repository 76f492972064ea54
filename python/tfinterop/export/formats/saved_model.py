"""SavedModel writer: one directory for every signature, then one case per tag set x
signature, with the tensor names read back from the written MetaGraphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ... import tensors
from ...errors import UserError
from ...fixtures import ExportSpec, Fixture
from ...formats import SAVED_MODEL
from ...manifest import Case, TensorEntry
from ..artifacts import SAVED_MODEL_DIR, sha256, tensor_path


def export_saved_model(
    fixture: Fixture,
    spec: ExportSpec,
    out: Path,
    input_entries: dict[str, list[TensorEntry]],
    output_entries: dict[str, list[TensorEntry]],
) -> list[Case]:
    import keras
    import tensorflow as tf

    saved_model_dir = out / SAVED_MODEL_DIR
    if spec.saved_model_writer is not None:
        spec.saved_model_writer(str(saved_model_dir))
    elif isinstance(spec.module, keras.Model) and _export_archive(keras) is not None:
        # tf.saved_model.save of a Keras 3 model reloads in Python but fails in the C API
        # ("Could not find variable ..."); Keras' own ExportArchive writes a usable one.
        # Keras 2 before 2.13 (TensorFlow 2.12, `interop --export-tf`) has none, and needs
        # none: its models are tf.Modules that tf.saved_model.save writes as the C API loads.
        archive = _export_archive(keras)()
        archive.track(spec.module)
        for signature_key, signature in spec.signatures.items():
            archive.add_endpoint(name=signature_key, fn=signature.function)
        # Keras 3 prints a summary unless told not to; Keras 2 (TensorFlow < 2.16, under
        # `interop --export-tf`) has no such argument.
        quiet = {"verbose": False} if "verbose" in _parameters(archive.write_out) else {}
        archive.write_out(str(saved_model_dir), **quiet)
    else:
        tf.saved_model.save(
            spec.module,
            str(saved_model_dir),
            signatures={k: s.function.get_concrete_function() for k, s in spec.signatures.items()},
        )
    return _saved_model_cases(fixture, spec, saved_model_dir, input_entries, output_entries, out)


def _export_archive(keras: Any) -> Any:
    return getattr(getattr(keras, "export", None), "ExportArchive", None)


def _parameters(function: Any) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)


def _saved_model_cases(
    fixture: Fixture,
    spec: ExportSpec,
    saved_model_dir: Path,
    input_entries: dict[str, list[TensorEntry]],
    output_entries: dict[str, list[TensorEntry]],
    out: Path,
) -> list[Case]:
    """One case per tag set x signature it holds; every signature must be in some MetaGraph."""
    from ...inspect.savedmodel import read_saved_model

    info = read_saved_model(saved_model_dir)
    cases = []
    found: set[str] = set()
    for tag_set in spec.all_tag_sets:
        tags = list(tag_set)
        meta_graph = info.meta_graph(tags)
        for signature_key in spec.signatures:
            if signature_key not in meta_graph.signatures:
                continue
            found.add(signature_key)
            signature_def = meta_graph.signature(signature_key)
            inputs = _entries_for_signature(
                fixture, signature_key, "input", signature_def.inputs, out
            )
            given = {e.key: e for e in input_entries[signature_key]}
            inputs = [
                TensorEntry(
                    **{
                        **e.__dict__,
                        "image": given[e.key].image if e.key in given else "",
                        "photo": given[e.key].photo if e.key in given else "",
                    }
                )
                for e in inputs
            ]
            cases.append(
                Case(
                    format=SAVED_MODEL,
                    signature=signature_key,
                    model=SAVED_MODEL_DIR,
                    inputs=inputs,
                    outputs=_entries_for_signature(
                        fixture, signature_key, "output", signature_def.outputs, out
                    ),
                    tags=tags,
                    method=signature_def.method_name,
                )
            )
    missing = [k for k in spec.signatures if k not in found]
    if missing:
        sets = "; ".join(",".join(t) for t in spec.all_tag_sets)
        raise UserError(
            f"fixture {fixture.name}: signature(s) {missing} are in no MetaGraph of tag sets {sets}"
        )
    return cases


def _entries_for_signature(
    fixture: Fixture, signature_key: str, kind: str, tensor_infos: dict[str, Any], out: Path
) -> list[TensorEntry]:
    """The SavedModel's own tensor names for the arrays the fixture's function was run on."""
    folder = "inputs" if kind == "input" else "reference"
    entries = []
    for key, info in sorted(tensor_infos.items()):
        path = tensor_path(out, folder, signature_key, key)
        if not path.exists():
            raise UserError(
                f"fixture {fixture.name}: SavedModel signature {signature_key} has {kind} {key!r} "
                f"that the fixture's function does not {'take' if kind == 'input' else 'return'}"
            )
        array = tensors.read_tensor(path)
        entries.append(
            TensorEntry(
                key=key,
                tensor=info.name,
                dtype=tensors.dtype_name(array),
                shape=list(array.shape),
                file=str(path.relative_to(out)),
                sha256=sha256(path),
            )
        )
    return entries
