"""Export stage: fixture -> frozen GraphDef + SavedModel + inputs + Python reference + manifest.

Exports are cached by content: the key hashes the fixture file and its data, the seed, the
TensorFlow version, the oneDNN setting and this exporter's own source. A cache entry is
built in a temporary directory and renamed into place, so an interrupted run never leaves a
half-written entry that a later run would trust.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..errors import UserError
from ..fixtures import (
    ALL_FORMATS,
    TFLITE,
    BuildContext,
    ExportSpec,
    Fixture,
    PrebuiltSpec,
    Signature,
    check_key,
)
from ..images import decode_png
from ..manifest import MANIFEST_NAME, Case, Manifest, TensorEntry
from ..tfenv import find_tensorflow

FROZEN_DIR = "frozen"
SAVED_MODEL_DIR = "saved_model"
TFLITE_DIR = "tflite"
_EXPORTER_SOURCES = (
    "export/*.py",
    "export/*/*.py",
    "fixtures.py",
    "tensors.py",
    "manifest.py",
    "inspect/savedmodel.py",
    "images.py",
)
"""What an export depends on (globs under the package): a change re-exports every fixture."""


def exporter_digest() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for pattern in _EXPORTER_SOURCES:
        for path in sorted(package.glob(pattern)):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(fixture: Fixture, tf_version: str, environment: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (
        fixture.source_digest(),
        str(fixture.seed),
        tf_version,
        json.dumps(environment, sort_keys=True),
        exporter_digest(),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def export_environment() -> dict[str, str]:
    """Settings that change what Python computes; recorded and part of the cache key."""
    return {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")}


@dataclass
class ExportOutcome:
    fixture: str
    manifest: Manifest | None
    cached: bool
    error: str | None = None
    seconds: float = 0.0


def cached_manifest(fixture: Fixture, root: Path, key: str) -> Manifest | None:
    directory = root / fixture.name
    if not (directory / MANIFEST_NAME).exists():
        return None
    try:
        manifest = Manifest.load(directory)
    except UserError:  # unreadable, or written by another version: re-export
        return None
    if manifest.cache_key != key:
        return None
    # Entries are renamed into place whole, so a file missing here was removed by hand.
    if not all((directory / name).is_file() for name in manifest.artifacts):
        return None
    return manifest


def export_fixtures(
    fixtures: list[Fixture],
    root: Path,
    *,
    force: bool = False,
    on_start: Callable[[Fixture, bool], None] | None = None,
) -> list[ExportOutcome]:
    """Export every fixture whose cache entry is missing or stale; returns one outcome each."""
    tf_version = find_tensorflow().version
    environment = export_environment()
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / ".lock", "w")  # closed by the with block below
    except OSError as exc:
        raise UserError(
            f"cannot write exports under {root}: {exc.strerror or exc} (choose another --build-dir)"
        ) from None
    # One exporter at a time per cache: a second run waits, then finds the entries fresh.
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _export_locked(fixtures, root, force, on_start, tf_version, environment)


def _export_locked(
    fixtures: list[Fixture],
    root: Path,
    force: bool,
    on_start: Callable[[Fixture, bool], None] | None,
    tf_version: str,
    environment: dict[str, str],
) -> list[ExportOutcome]:
    # Under the lock no other exporter is working, so staging dirs left here were abandoned.
    for stale in [*root.glob(".tmp-*"), *root.glob(".old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    outcomes = []
    for fixture in fixtures:
        key = cache_key(fixture, tf_version, environment)
        manifest = None if force else cached_manifest(fixture, root, key)
        if on_start:
            on_start(fixture, manifest is not None)
        if manifest is not None:
            outcomes.append(ExportOutcome(fixture.name, manifest, cached=True))
            continue
        started = time.perf_counter()
        try:
            manifest = _export_atomically(fixture, root, key, environment)
            outcomes.append(
                ExportOutcome(fixture.name, manifest, False, seconds=time.perf_counter() - started)
            )
        except Exception as exc:  # one broken fixture must not stop the others
            outcomes.append(
                ExportOutcome(
                    fixture.name,
                    None,
                    False,
                    error=_describe(exc, fixture),
                    seconds=time.perf_counter() - started,
                )
            )
    return outcomes


def _describe(exc: BaseException, fixture: Fixture) -> str:
    """One line: the exception and the innermost line of the fixture's file it passed."""
    if isinstance(exc, UserError):
        return str(exc)
    source = str(fixture.source)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}{where}: {message[0] if message else ''}"


def _export_atomically(
    fixture: Fixture, root: Path, key: str, environment: dict[str, str]
) -> Manifest:
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{fixture.name}-", dir=root))
    try:
        manifest = export_fixture(fixture, staging, key, environment)
        final = root / fixture.name
        # Swap: the old entry is moved aside first so `final` is never half-written.
        trash = None
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".old-{fixture.name}-", dir=root))
            os.replace(final, trash / "entry")
        os.replace(staging, final)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        manifest.directory = final
        return manifest
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow generators
    tf.random.set_seed(seed)


def export_fixture(fixture: Fixture, out: Path, key: str, environment: dict[str, str]) -> Manifest:
    import keras
    import tensorflow as tf

    started = time.perf_counter()
    _seed_everything(fixture.seed)
    spec = fixture.build(BuildContext(fixture, np.random.default_rng(fixture.seed)))
    if isinstance(spec, PrebuiltSpec):  # a model exported elsewhere (check --save-fixture)
        return _export_prebuilt(fixture, spec, out, key, environment, started)
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
        input_entries[signature_key] = _write_tensors(out, "inputs", signature_key, inputs)
        _ship_images(out, signature_key, signature, input_entries[signature_key])
        output_entries[signature_key] = _write_tensors(
            out, "reference", signature_key, references[signature_key]
        )
        if "frozen" in spec.formats:
            frozen_source = concrete
            if signature.frozen_function is not None:
                frozen_source = _concrete_function(
                    fixture, signature_key, signature.frozen_function
                )
            cases.append(
                _export_frozen(
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
                _export_tflite(
                    out,
                    signature_key,
                    concrete,
                    spec.module,
                    input_entries[signature_key],
                    output_entries[signature_key],
                )
            )

    if "saved_model" in spec.formats:
        saved_model_dir = out / SAVED_MODEL_DIR
        if spec.saved_model_writer is not None:
            spec.saved_model_writer(str(saved_model_dir))
        elif isinstance(spec.module, keras.Model):
            # tf.saved_model.save of a Keras 3 model reloads in Python but fails in the C API
            # ("Could not find variable ..."); Keras' own ExportArchive writes a usable one.
            archive = keras.export.ExportArchive()
            archive.track(spec.module)
            for signature_key, signature in spec.signatures.items():
                archive.add_endpoint(name=signature_key, fn=signature.function)
            archive.write_out(str(saved_model_dir), verbose=False)
        else:
            tf.saved_model.save(
                spec.module,
                str(saved_model_dir),
                signatures={
                    k: s.function.get_concrete_function() for k, s in spec.signatures.items()
                },
            )
        cases += _saved_model_cases(
            fixture, spec, saved_model_dir, input_entries, output_entries, out
        )

    return _write_manifest(fixture, key, environment, cases, out, started)


def _saved_model_cases(
    fixture: Fixture,
    spec: ExportSpec,
    saved_model_dir: Path,
    input_entries: dict[str, list[TensorEntry]],
    output_entries: dict[str, list[TensorEntry]],
    out: Path,
) -> list[Case]:
    """One case per tag set x signature it holds; every signature must be in some MetaGraph."""
    from ..inspect.savedmodel import read_saved_model

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
            images = {e.key: e.image for e in input_entries[signature_key] if e.image}
            inputs = [TensorEntry(**{**e.__dict__, "image": images.get(e.key, "")}) for e in inputs]
            cases.append(
                Case(
                    format="saved_model",
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


def _decode_images(fixture: Fixture, key: str, signature: Signature) -> dict[str, np.ndarray]:
    overlap = set(signature.images) & set(signature.inputs)
    if overlap:
        raise UserError(
            f"fixture {fixture.name}: signature {key} gives {sorted(overlap)} both as an array "
            "and as an image"
        )
    return {name: decode_png(path) for name, path in signature.images.items()}


def _ship_images(
    out: Path, signature_key: str, signature: Signature, entries: list[TensorEntry]
) -> None:
    """Copy each image next to the input it decodes to, for consumers that decode PNGs."""
    for entry in entries:
        if entry.key in signature.images:
            target = (out / entry.file).with_suffix(".png")
            shutil.copyfile(signature.images[entry.key], target)
            entry.image = str(target.relative_to(out))


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


def _write_tensors(
    out: Path, kind: str, signature: str, arrays: dict[str, np.ndarray]
) -> list[TensorEntry]:
    directory = out / kind / signature
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for key, array in arrays.items():
        path = directory / f"{tensors.safe_file_name(key)}.npy"
        dtype = tensors.write_tensor(path, array)
        entries.append(
            TensorEntry(
                key=key,
                tensor="",
                dtype=dtype,
                shape=list(array.shape),
                file=str(path.relative_to(out)),
                sha256=_sha256(path),
            )
        )
    return entries


def _export_frozen(
    out: Path,
    signature_key: str,
    concrete: Any,
    inputs: list[TensorEntry],
    outputs: list[TensorEntry],
    *,
    lower_control_flow: bool = True,
) -> Case:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    # Without this step the graph keeps VarHandleOps and ships without its weights.
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=lower_control_flow)
    graph_def = frozen.graph.as_graph_def()
    name = f"{signature_key}.pb"
    (out / FROZEN_DIR).mkdir(exist_ok=True)
    tf.io.write_graph(graph_def, str(out / FROZEN_DIR), name, as_text=False)

    placeholders = {t.name for t in frozen.inputs}
    frozen_inputs = []
    for entry in inputs:
        tensor = f"{entry.key}:0"
        if tensor not in placeholders:
            raise UserError(
                f"frozen graph has no placeholder {tensor} (has {sorted(placeholders)})"
            )
        frozen_inputs.append(TensorEntry(**{**entry.__dict__, "key": tensor, "tensor": tensor}))
    # Outputs of a dict-returning function are flattened in sorted key order (tf.nest rule).
    output_keys = sorted(concrete.structured_outputs)
    by_key = {entry.key: entry for entry in outputs}
    frozen_outputs = []
    for key, tensor in zip(output_keys, frozen.outputs, strict=True):
        frozen_outputs.append(
            TensorEntry(**{**by_key[key].__dict__, "key": key, "tensor": tensor.name})
        )
    return Case(
        format="frozen",
        signature=signature_key,
        model=f"{FROZEN_DIR}/{name}",
        inputs=frozen_inputs,
        outputs=frozen_outputs,
    )


def _export_tflite(
    out: Path,
    signature_key: str,
    concrete: Any,
    module: Any,
    inputs: list[TensorEntry],
    outputs: list[TensorEntry],
) -> Case:
    """One ``.tflite`` per signature, converted from the same concrete function; the names to
    feed and fetch come from the converted model's own (only) SignatureDef."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], _tflite_trackable(module)
    )
    try:
        flatbuffer = converter.convert()
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if "error" in line.lower()]
        raise UserError(
            f"TFLite conversion of signature {signature_key} failed: "
            f"{(lines or [str(exc).strip() or repr(exc)])[0][:400]} (drop 'tflite' from formats)"
        ) from None
    name = f"{signature_key}.tflite"
    (out / TFLITE_DIR).mkdir(exist_ok=True)
    (out / TFLITE_DIR / name).write_bytes(flatbuffer)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    runners = interpreter.get_signature_list()
    if len(runners) != 1:
        raise UserError(f"converted {name} has {len(runners)} signatures, expected 1")
    runner = interpreter.get_signature_runner(next(iter(runners)))
    details = {"input": runner.get_input_details(), "output": runner.get_output_details()}

    def entries(kind: str, given: list[TensorEntry]) -> list[TensorEntry]:
        found = details[kind]
        if sorted(found) != sorted(e.key for e in given):
            raise UserError(
                f"converted {name}: {kind}s {sorted(found)} differ from the function's "
                f"{sorted(e.key for e in given)}"
            )
        return [TensorEntry(**{**e.__dict__, "tensor": found[e.key]["name"]}) for e in given]

    return Case(
        format=TFLITE,
        signature=signature_key,
        model=f"{TFLITE_DIR}/{name}",
        inputs=entries("input", inputs),
        outputs=entries("output", outputs),
    )


def _tflite_trackable(module: Any) -> Any:
    """What the converter may save: it lowers through tf.saved_model.save(trackable_obj) and
    re-imports the MetaGraph, which on a Keras 3 model is the keras3_save_trap again, silently
    this time: the variables stay uninitialised VAR_HANDLEs and every output is NaN (seen on
    mobilenet_v3). A tf.Module tracking the model's tf.Variables, as Keras' ExportArchive
    does, converts with the weights folded in."""
    import keras
    import tensorflow as tf

    if not isinstance(module, keras.Model):
        return module
    holder = tf.Module()
    holder.tracked_variables = [getattr(v, "value", v) for v in module.variables]
    return holder


def _entries_for_signature(
    fixture: Fixture, signature_key: str, kind: str, tensor_infos: dict[str, Any], out: Path
) -> list[TensorEntry]:
    folder = "inputs" if kind == "input" else "reference"
    entries = []
    for key, info in sorted(tensor_infos.items()):
        path = out / folder / signature_key / f"{tensors.safe_file_name(key)}.npy"
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
                sha256=_sha256(path),
            )
        )
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): _sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }


def _export_prebuilt(
    fixture: Fixture,
    spec: PrebuiltSpec,
    out: Path,
    key: str,
    environment: dict[str, str],
    started: float,
) -> Manifest:
    """Copy a prebuilt model, its inputs and stored reference into the export (no TF run)."""

    def declared(relative: str) -> Path:
        path = fixture.directory / relative
        undeclared = [
            str(p.relative_to(fixture.directory))
            for p in ([path] if path.is_file() else sorted(path.rglob("*")))
            if p.is_file() and str(p.relative_to(fixture.directory)) not in fixture.data
        ]
        if not path.exists() or undeclared:
            raise UserError(
                f"fixture {fixture.name}: {relative} is missing or has files not declared in "
                f"data=(...): {', '.join(undeclared[:3]) or relative}"
            )
        return path

    if spec.format not in ("frozen", "saved_model"):
        raise UserError(f"fixture {fixture.name}: prebuilt format must be frozen or saved_model")
    source = declared(spec.model)
    if spec.format == "saved_model":
        model = SAVED_MODEL_DIR
        shutil.copytree(source, out / model)
    else:
        model = f"{FROZEN_DIR}/{source.name}"
        (out / FROZEN_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out / model)
    cases = []
    for prebuilt in spec.cases:
        entries: dict[str, list[TensorEntry]] = {"inputs": [], "reference": []}
        for folder, tensors_by_key in (
            ("inputs", prebuilt.inputs),
            ("reference", prebuilt.outputs),
        ):
            for tensor_key, (tensor, relative) in tensors_by_key.items():
                path = declared(relative)
                target = out / folder / tensors.safe_file_name(prebuilt.signature) / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                sidecar = path.with_name(path.name + tensors.BYTES_SUFFIX)
                if sidecar.exists():
                    shutil.copy2(
                        declared(str(sidecar.relative_to(fixture.directory))),
                        target.with_name(target.name + tensors.BYTES_SUFFIX),
                    )
                array = tensors.read_tensor(target)
                entries[folder].append(
                    TensorEntry(
                        key=tensor_key,
                        tensor=tensor,
                        dtype=tensors.dtype_name(array),
                        shape=list(array.shape),
                        file=str(target.relative_to(out)),
                        sha256=_sha256(target),
                    )
                )
        cases.append(
            Case(
                format=spec.format,
                signature=prebuilt.signature,
                model=model,
                inputs=entries["inputs"],
                outputs=entries["reference"],
                tags=list(spec.tags) if spec.format == "saved_model" else [],
            )
        )
    return _write_manifest(fixture, key, environment, cases, out, started)


def _write_manifest(
    fixture: Fixture,
    key: str,
    environment: dict[str, str],
    cases: list[Case],
    out: Path,
    started: float,
) -> Manifest:
    import keras
    import tensorflow as tf

    manifest = Manifest(
        fixture=fixture.name,
        cache_key=key,
        tf_version=tf.__version__,
        keras_version=keras.__version__,
        seed=fixture.seed,
        environment=environment,
        tolerance={"atol": fixture.tolerance.atol, "rtol": fixture.tolerance.rtol},
        output_tolerances={
            k: {"atol": t.atol, "rtol": t.rtol} for k, t in fixture.output_tolerances.items()
        },
        cases=cases,
        artifacts=_hash_tree(out),
        export_seconds=round(time.perf_counter() - started, 3),
        directory=out,
    )
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest
