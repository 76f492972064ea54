"""The predict step, before anything runs: each case checked statically against the op
registry of every runtime a consumer is bound to (``inspect.compat.predict``). A case a
runtime cannot load or run becomes that runtime's expectation ``incompatible`` (with the
op/attr and the runtime), which the cell must then meet: fail at the predicted stage. A cell
that runs anyway is an xpass (the predictor is wrong), an unpredicted load failure an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..consumers import Consumer
from ..errors import UserError
from ..fixtures import Expectation
from ..formats import FROZEN, SAVED_MODEL
from ..runtimes import runtime
from .cases import CaseRef

REASONS_SHOWN = 2


def predict_runtimes(
    refs: list[CaseRef], consumers: Iterable[Consumer], build_dir: Path
) -> dict[str, str]:
    """Set ``ref.predicted`` for every runtime the consumers are bound to (except the pinned
    one, whose registry exported the models). Returns runtime -> why it could not be
    predicted (registry not dumpable: its cells fail on their own, e.g. install failed)."""
    from ..inspect.compat import C_API, model_graphs, predict
    from ..inspect.kernels import load_registry

    versions = sorted({c.runtime for c in consumers if c.runtime is not None})
    targets = [runtime(v) for v in versions]
    targets = [t for t in targets if not t.pinned]
    if not targets:
        return {}
    unpredicted: dict[str, str] = {}
    try:
        producer = load_registry(build_dir)
    except UserError as exc:
        return {t.version: str(exc) for t in targets}
    models: dict[tuple[str, tuple[str, ...]], object] = {}
    for target in targets:
        try:
            registry = load_registry(build_dir, target)
        except UserError as exc:
            unpredicted[target.version] = str(exc)
            continue
        for ref in refs:
            if ref.case.format not in (FROZEN, SAVED_MODEL):
                continue
            path = ref.directory / ref.case.model
            key = (str(path), tuple(ref.case.tags))
            if key not in models:
                try:
                    models[key] = model_graphs(path, ref.case.format, ref.case.tags or None)
                except UserError as exc:
                    unpredicted[target.version] = f"{path}: {exc}"
                    models[key] = None
            model = models[key]
            if model is None:
                continue
            fatal = [p for p in predict(model, registry, producer, loader=C_API) if p.fatal]  # type: ignore[arg-type]
            if fatal:
                reason = "; ".join(p.message for p in fatal[:REASONS_SHOWN])
                if len(fatal) > REASONS_SHOWN:
                    reason += f" (+{len(fatal) - REASONS_SHOWN} more)"
                ref.predicted[target.version] = Expectation(
                    "incompatible", reason, stage=fatal[0].stage or "load"
                )
    return unpredicted
