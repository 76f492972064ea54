"""The model formats, named once. A fixture exports them, a plan job names one, a consumer
declares the ones it loads as capabilities (consumers/base.py)."""

from __future__ import annotations

FROZEN = "frozen"
"""A frozen GraphDef (variables folded into constants), loaded by tensor names."""
SAVED_MODEL = "saved_model"
"""A SavedModel directory, loaded by tag set and signature key."""
TFLITE = "tflite"
"""A TFLite flatbuffer converted from the SavedModel."""

TENSORFLOW_FORMATS = (FROZEN, SAVED_MODEL)
"""What every fixture exports (TFLite is opt-in per fixture)."""
ALL = (FROZEN, SAVED_MODEL, TFLITE)
