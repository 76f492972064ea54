"""``tfinterop check --save-fixture NAME``: the checked model, its inputs and the reference
outputs copied under ``fixtures/data/NAME/`` with a ``fixtures/NAME.py`` declaring them, so
the model runs in every later ``interop``."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import tensors
from ..errors import UserError
from ..pipeline.cases import signature_label
from .options import case_folder
from .result import CheckResult

FIXTURE_TEMPLATE = '''"""{name}: a model checked with `tfinterop check --save-fixture` on {date}.

Source: {source}
The model, its inputs and the reference outputs (what TensorFlow Python {tf_version}
computed when the fixture was saved) are data under data/{name}/, copied as they were.
"""

from tfinterop.fixtures import PrebuiltCase, PrebuiltSpec, Tolerance, fixture, require


@fixture(
    {name_literal},
    seed={seed},
    tolerance=Tolerance(atol={atol!r}, rtol={rtol!r}),
    data=(
{data}    ),
    requires=[
{requires}    ],
)
def build(ctx):
    """Prebuilt {kind} (tfinterop check --save-fixture)."""
    return PrebuiltSpec(
        format={fmt},
        model={model},
        tags={tags},
        cases=[
{cases}        ],
    )
'''


def _literal(value: Any) -> str:
    """Python source for str/tuple/dict values, with double quotes (ruff's style)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _format_source(path: Path) -> None:
    """ruff-format a generated fixture when ruff is installed (`nox -s lint` checks fixtures/)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if os.access(ruff, os.X_OK):
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False, capture_output=True)


def save_fixture(result: CheckResult, name: str, fixtures_dir: Path, seed: int) -> Path:
    """Write ``fixtures_dir/NAME.py`` and ``fixtures_dir/data/NAME/`` (model, inputs,
    Python's reference) so the checked model runs in every later ``interop``."""
    from ..fixtures import NAME_PATTERN
    from ..tfenv import find_tensorflow

    if not NAME_PATTERN.match(name):
        raise UserError(f"fixture name {name!r} must match {NAME_PATTERN.pattern}")
    if not fixtures_dir.is_dir():
        raise UserError(f"fixtures directory {fixtures_dir} does not exist")
    source = fixtures_dir / f"{name}.py"
    data_root = fixtures_dir / "data" / name
    if source.exists() or data_root.exists():
        raise UserError(f"{source} or {data_root} already exists: choose another name")
    without = [i for i in result.cases if i.reference_problem]
    if without or not result.cases:
        why = without[0].reference_problem if without else "nothing was checked"
        raise UserError(f"cannot save a fixture without a Python reference: {why}")
    model = result.inspection.path.resolve()
    fmt = result.cases[0].case.format
    staging = fixtures_dir / "data" / f".{name}.tmp{os.getpid()}"
    # The source is written aside and renamed into place last: fixture files are executed
    # when loaded, so an interrupted save must not leave half of one (``_`` files are skipped).
    partial = fixtures_dir / f"_{name}.tmp{os.getpid()}.py"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if fmt == "saved_model":
            model_rel = "saved_model"
            shutil.copytree(model, staging / model_rel)
        else:
            model_rel = f"model{model.suffix or '.pb'}"
            staging.mkdir(parents=True)
            shutil.copy2(model, staging / model_rel)
        case_lines, require_lines = [], []
        for item in result.cases:
            folder = case_folder(item.case.signature)
            entries: dict[str, dict[str, tuple[str, str]]] = {"inputs": {}, "outputs": {}}
            for kind, items in (("inputs", item.case.inputs), ("reference", item.case.outputs)):
                for entry in items:
                    target = staging / kind / folder / Path(entry.file).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(entry.file, target)
                    sidecar = Path(entry.file + tensors.BYTES_SUFFIX)
                    if sidecar.exists():
                        shutil.copy2(sidecar, Path(str(target) + tensors.BYTES_SUFFIX))
                    relative = f"data/{name}/{kind}/{folder}/{target.name}"
                    side = "inputs" if kind == "inputs" else "outputs"
                    entries[side][entry.key] = (entry.tensor, relative)
            case_lines.append(
                f"            PrebuiltCase(\n"
                f"                {_literal(item.case.signature)},\n"
                f"                inputs={_literal(entries['inputs'])},\n"
                f"                outputs={_literal(entries['outputs'])},\n"
                f"            ),\n"
            )
            label = signature_label(item.case)
            for capability, reason in item.requires.items():
                require_lines.append(  # the label is a glob pattern there: escape it
                    f"        require({_literal(capability)}, {_literal(reason)}, "
                    f"signature={_literal(glob.escape(label))}),\n"
                )
        files = sorted(
            f"data/{name}/{p.relative_to(staging)}" for p in staging.rglob("*") if p.is_file()
        )
        text = FIXTURE_TEMPLATE.format(
            name=name,
            name_literal=_literal(name),
            source=str(model).replace('"""', "'''"),
            date=time.strftime("%Y-%m-%d"),
            tf_version=find_tensorflow().version,
            seed=seed,
            atol=result.tolerance.atol,
            rtol=result.tolerance.rtol,
            data="".join(f"        {_literal(f)},\n" for f in files),
            requires="".join(require_lines),
            kind="SavedModel" if fmt == "saved_model" else "GraphDef",
            fmt=_literal(fmt),
            model=_literal(f"data/{name}/{model_rel}"),
            tags=_literal(tuple(result.cases[0].case.tags)),
            cases="".join(case_lines),
        )
        partial.write_text(text)
        _format_source(partial)
        os.replace(staging, data_root)
        os.replace(partial, source)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return source
