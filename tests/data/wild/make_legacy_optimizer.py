"""Write ``legacy_optimizer_tf212.tar.xz`` and ``legacy_optimizer_io.npz`` (see README.md).

Run with TensorFlow 2.12 (Keras 2.12) in its own environment, never the project's:

    uv venv /tmp/tf212 -p 3.11 && uv pip install -p /tmp/tf212 tensorflow-cpu==2.12.0
    /tmp/tf212/bin/python tests/data/wild/make_legacy_optimizer.py

A Keras-2-era ``model.save()`` SavedModel whose optimizer is the pre-2.11 ``OptimizerV2``
(``tf.keras.optimizers.legacy.Adam``), fitted one epoch: TensorFlow >= 2.16's
``tf.saved_model.load`` cannot revive that optimizer ("'_UserObject' object has no attribute
'add_slot'"), while the serving signature runs through the MetaGraph (C API, v1 Session).
"""

from __future__ import annotations

import io
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE / "legacy_optimizer_tf212.tar.xz"
VALUES = HERE / "legacy_optimizer_io.npz"


def main() -> int:
    if not tf.__version__.startswith("2.12."):
        print(f"needs TensorFlow 2.12 (this is {tf.__version__})", file=sys.stderr)
        return 2
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((3,), name="x"),
            tf.keras.layers.Dense(2, activation="relu"),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.legacy.Adam(), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 3)).astype(np.float32)
    model.fit(x, x.sum(axis=1, keepdims=True), epochs=1, verbose=0)
    probe = rng.uniform(-1, 1, (4, 3)).astype(np.float32)
    predicted = model(probe).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "legacy_optimizer"
        model.save(saved)  # Keras 2.12: SavedModel format, the optimizer included
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
            for path in sorted(saved.rglob("*")):
                info = archive.gettarinfo(path, str(path.relative_to(saved.parent)))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if path.is_file():
                    with open(path, "rb") as handle:
                        archive.addfile(info, handle)
                else:
                    archive.addfile(info)
        ARCHIVE.write_bytes(buffer.getvalue())
    # Keys as `tfinterop check --inputs/--expected` takes them (the serving signature's).
    np.savez(VALUES, x=probe, dense_1=predicted)
    print(f"wrote {ARCHIVE} ({ARCHIVE.stat().st_size} bytes) and {VALUES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
