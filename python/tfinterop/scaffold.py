"""``tfinterop new-fixture NAME``: write a working fixture file to start from."""

from __future__ import annotations

import zlib
from pathlib import Path

from .errors import UserError
from .fixtures import NAME_PATTERN

TEMPLATE = '''"""{name}: one line on what this fixture checks (replace the model below with yours)."""

from __future__ import annotations

import numpy as np

from tfinterop.fixtures import ALL_FORMATS, BuildContext, ExportSpec, Tolerance, fixture


# Choose the tolerance from measurement: run `tfinterop interop --fixture {name}`, read the
# "max abs" / "max rel" columns and write the numbers here, next to the rule you pick.
@fixture("{name}", seed={seed}, tolerance=Tolerance(atol=1e-6, rtol=1e-6))
def build(ctx: BuildContext) -> ExportSpec:
    """y = x @ w + b on a tf.Module with seeded weights."""
    import tensorflow as tf  # inside build(): loading fixtures stays cheap

    class Model(tf.Module):
        def __init__(self, w: np.ndarray, b: np.ndarray) -> None:
            super().__init__()
            self.w = tf.Variable(w, name="w")
            self.b = tf.Variable(b, name="b")

        # The TensorSpec names become the input keys, the returned dict's keys the outputs.
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {{"y": tf.matmul(x, self.w) + self.b}}

    module = Model(
        ctx.rng.standard_normal((4, 3)).astype(np.float32),  # ctx.rng is seeded
        ctx.rng.standard_normal(3).astype(np.float32),
    )
    x = ctx.rng.standard_normal((5, 4)).astype(np.float32)
    # frozen GraphDef + SavedModel + TFLite; drop "tflite" if your graph does not convert.
    return ExportSpec.single(module, module.serve, {{"x": x}}, formats=ALL_FORMATS)
'''


def new_fixture(name: str, directory: Path, *, force: bool = False) -> Path:
    """Write ``directory/NAME.py`` from the template; refuses to overwrite unless ``force``."""
    if not NAME_PATTERN.match(name) or name.startswith("_"):
        raise UserError(
            f"fixture name {name!r} must match {NAME_PATTERN.pattern} and not start with '_'"
        )
    if not directory.is_dir():
        raise UserError(f"fixtures directory {directory} does not exist")
    path = directory / f"{name}.py"
    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to overwrite it)")
    seed = zlib.crc32(name.encode()) % 10_000  # stable per name, different between fixtures
    path.write_text(TEMPLATE.format(name=name, seed=seed), encoding="utf-8")
    return path
