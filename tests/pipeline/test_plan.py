"""Which file an input's plan record names: the array the reference ran on, or the image / the
photo to consumers that decode or preprocess it themselves (by capability, never by name)."""

from __future__ import annotations

from pathlib import Path

from tfinterop.consumers import PHOTO_INPUT, PNG_INPUT
from tfinterop.consumers.base import Consumer
from tfinterop.fixtures import Tolerance
from tfinterop.manifest import Case, TensorEntry
from tfinterop.pipeline.cases import CaseRef
from tfinterop.pipeline.plan import build_plan


def test_images_and_photos_go_only_to_the_consumers_declaring_them(tmp_path: Path) -> None:
    entry = {"tensor": "x:0", "dtype": "float32", "shape": [1, 4, 4, 3]}
    case = Case(
        "frozen", "serving_default", "frozen/serving_default.pb",
        inputs=[
            TensorEntry("decoded", file="inputs/decoded.npy", image="inputs/decoded.png", **entry),
            TensorEntry("photo", file="inputs/photo.npy", photo="inputs/photo.photo.png", **entry),
            TensorEntry("plain", file="inputs/plain.npy", **entry),
        ],
        outputs=[TensorEntry("y", "y:0", "float32", [1], "reference/y.npy")],
    )  # fmt: skip
    ref = CaseRef(
        "f", case, tmp_path / "export", lambda *_: Tolerance(), lambda *_: None, requires={}
    )
    sent = {}
    for capability in (None, PNG_INPUT, PHOTO_INPUT):
        consumer = Consumer(
            "probe", "", frozenset({"frozen", *([capability] if capability else [])})
        )
        (job,) = build_plan(
            consumer, [ref], tmp_path / "runs" / str(capability), warmup=0, repeat=1, threads=(0, 0)
        ).jobs
        sent[capability] = {t.key: (Path(t.file).name, t.image) for t in job.inputs}
    assert sent[None] == {
        "decoded": ("decoded.npy", False), "photo": ("photo.npy", False),
        "plain": ("plain.npy", False),
    }  # fmt: skip
    assert sent[PNG_INPUT]["decoded"] == ("decoded.png", True)
    assert sent[PNG_INPUT]["photo"] == ("photo.npy", False)
    assert sent[PHOTO_INPUT]["photo"] == ("photo.photo.png", True)
    assert sent[PHOTO_INPUT]["decoded"] == ("decoded.npy", False)
    assert sent[PHOTO_INPUT]["plain"] == ("plain.npy", False)
