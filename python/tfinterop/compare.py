"""Compare a consumer's output with Python's reference. Returns result objects; never raises.

Rules (numpy's ``isclose``/``assert_allclose`` semantics):

* shape and dtype must match exactly;
* floating point (float16/32/64, complex) passes elementwise when
  ``|actual - expected| <= atol + rtol * |expected|``; NaN must sit at the same positions
  in both (NaN == NaN there); infinities must be equal; ``-0.0 == +0.0``;
* integers, bools and strings (bytes) must be equal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .fixtures import Tolerance

WORST_SHOWN = 3
HISTOGRAM_BINS_PER_DECADE = 4
HISTOGRAM_LOG10_RANGE = (-20.0, 20.0)
"""|a-b| outside this range lands in the first/last bin: bounds the JSON size."""
TOP_K = (1, 5)


@dataclass
class WorstElement:
    index: list[int]
    actual: Any
    expected: Any
    abs_error: float | None


@dataclass
class ErrorHistogram:
    """Counts of |actual - expected| per log10 bin, so a report can plot it from JSON alone.

    Bin ``i`` covers ``[10**(log10_start + i*step), 10**(log10_start + (i+1)*step))``;
    exactly equal elements and non-finite differences (NaN/inf mismatches) are counted apart.
    """

    log10_start: float
    step: float
    counts: list[int]
    exact: int
    non_finite: int

    @property
    def edges_log10(self) -> list[float]:
        return [self.log10_start + i * self.step for i in range(len(self.counts) + 1)]


@dataclass
class TopKAgreement:
    """For [batch, classes] float outputs: fraction of rows whose top-k classes match.

    Top-1 compares the argmax; top-k (k > 1) compares the sets of the k largest scores."""

    rows: int
    classes: int
    agreement: dict[str, float]
    """``{"top1": 1.0, "top5": 0.75}``; only k < classes are listed (k >= classes always agrees)."""


@dataclass
class OutputComparison:
    key: str
    passed: bool
    tolerance: Tolerance
    expected_dtype: str
    actual_dtype: str
    expected_shape: list[int]
    actual_shape: list[int]
    problems: list[str] = field(default_factory=list)
    """Shape/dtype/NaN-position problems, in the order a reader should fix them."""
    total: int = 0
    mismatches: int = 0
    max_abs: float | None = None
    max_rel: float | None = None
    worst: list[WorstElement] = field(default_factory=list)
    min_atol: float | None = None
    """Smallest atol (at the fixture's rtol) that would have passed; None if none would."""
    min_rtol: float | None = None
    """Smallest rtol (at the fixture's atol) that would have passed; None if none would."""
    histogram: ErrorHistogram | None = None
    """Per-element |a-b| on log10 bins (numeric outputs of equal shape)."""
    top_k: TopKAgreement | None = None
    """Classifier-style agreement, for 2-D float outputs with at least 2 columns."""

    def summary(self) -> str:
        """One paragraph naming the output, then problems, mismatch count, worst indices, fix."""
        if self.passed:
            return f"output {self.key}: ok ({self._errors()})"
        parts = [f"output {self.key}:"]
        parts += self.problems
        if self.total:
            parts.append(f"{self.mismatches}/{self.total} elements differ beyond {self.tolerance}")
            if self.max_abs is not None:
                parts.append(self._errors())
            for worst in self.worst:
                error = f" |diff|={worst.abs_error:.3g}" if worst.abs_error is not None else ""
                parts.append(
                    f"at {tuple(worst.index)} actual={_show(worst.actual)} expected={_show(worst.expected)}{error}"
                )
            hints = []
            if self.min_atol is not None:
                hints.append(f"atol>={self.min_atol:.3g} (rtol={self.tolerance.rtol:g})")
            if self.min_rtol is not None:
                hints.append(f"rtol>={self.min_rtol:.3g} (atol={self.tolerance.atol:g})")
            if hints:
                parts.append("would pass with " + " or ".join(hints))
        return "; ".join([parts[0] + " " + parts[1], *parts[2:]]) if len(parts) > 1 else parts[0]

    def _errors(self) -> str:
        if self.max_abs is None:
            return "exact"
        rel = "n/a" if self.max_rel is None else f"{self.max_rel:.3g}"
        return f"max |diff| {self.max_abs:.3g}, max rel {rel}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tolerance"] = {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol}
        data["worst"] = [
            {
                **asdict(w),
                "actual": _jsonable(w.actual),
                "expected": _jsonable(w.expected),
                # as the message shows them: the shortest repr in the tensor's own precision
                "actual_text": _show(w.actual),
                "expected_text": _show(w.expected),
            }
            for w in self.worst
        ]
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, complex | np.complexfloating):
        return [float(value.real), float(value.imag)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _dtype_label(array: np.ndarray) -> str:
    return "string" if array.dtype.kind in "OSU" else array.dtype.name


def _element(value: Any) -> Any:
    """Keep numpy scalars (their str() is the shortest repr for their own precision)."""
    return value


def _show(value: Any) -> str:
    return str(value) if isinstance(value, np.generic) else repr(value)


def compare(
    key: str, actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance
) -> OutputComparison:
    result = OutputComparison(
        key=key,
        passed=False,
        tolerance=tolerance,
        expected_dtype=_dtype_label(expected),
        actual_dtype=_dtype_label(actual),
        expected_shape=list(expected.shape),
        actual_shape=list(actual.shape),
    )
    if result.actual_shape != result.expected_shape:
        result.problems.append(f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    if result.actual_dtype != result.expected_dtype:
        result.problems.append(f"dtype {result.actual_dtype} != expected {result.expected_dtype}")
    if result.problems:
        return result
    result.total = int(expected.size)
    if expected.dtype.kind in "fc":
        _compare_inexact(result, actual, expected, tolerance)
    else:
        _compare_exact(result, actual, expected)
    result.passed = not result.problems and result.mismatches == 0
    return result


def _compare_exact(result: OutputComparison, actual: np.ndarray, expected: np.ndarray) -> None:
    if expected.dtype.kind == "O":
        differs = np.fromiter(
            (a != e for a, e in zip(actual.reshape(-1), expected.reshape(-1), strict=True)),
            dtype=bool,
            count=expected.size,
        ).reshape(expected.shape)
    else:
        differs = actual != expected
    result.mismatches = int(np.count_nonzero(differs))
    if expected.dtype.kind in "iu" and expected.size:
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        result.max_abs = float(diff.max())
        result.histogram = error_histogram(diff)
        if result.mismatches:
            order = np.argsort(-diff, axis=None, kind="stable")[:WORST_SHOWN]
            indices = [np.unravel_index(i, expected.shape) for i in order if differs.reshape(-1)[i]]
            result.worst = [
                WorstElement(
                    [int(x) for x in idx],
                    _element(actual[idx]),
                    _element(expected[idx]),
                    float(diff[idx]),
                )
                for idx in indices
            ]
        return
    if result.mismatches:
        indices = np.argwhere(differs)[:WORST_SHOWN]
        result.worst = [
            WorstElement(
                [int(x) for x in idx],
                _element(actual[tuple(idx)]),
                _element(expected[tuple(idx)]),
                None,
            )
            for idx in indices
        ]


def _compare_inexact(
    result: OutputComparison, actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance
) -> None:
    wide = np.complex128 if expected.dtype.kind == "c" else np.float64
    a = actual.astype(wide)
    e = expected.astype(wide)
    a_nan, e_nan = np.isnan(a), np.isnan(e)
    nan_mismatch = a_nan != e_nan
    if nan_mismatch.any():
        extra, lost = int((a_nan & ~e_nan).sum()), int((e_nan & ~a_nan).sum())
        result.problems.append(
            f"NaN positions differ ({extra} unexpected NaN, {lost} expected NaN missing)"
        )
    both_nan = a_nan & e_nan
    with np.errstate(invalid="ignore", over="ignore"):
        same_inf = np.isinf(a) & np.isinf(e) & (a == e)
        diff = np.abs(a - e)
        diff = np.where(both_nan | same_inf, 0.0, diff)
        diff = np.where(nan_mismatch, np.inf, diff)
        magnitude = np.abs(e)
        magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
        allowed = tolerance.atol + tolerance.rtol * magnitude
        failing = ~(diff <= allowed)
        relative = np.where(
            magnitude > 0,
            diff / np.where(magnitude > 0, magnitude, 1.0),
            np.where(diff > 0, np.inf, 0.0),
        )
    result.mismatches = int(np.count_nonzero(failing))
    if not expected.size:
        return
    result.max_abs = float(diff.max())
    result.max_rel = float(relative.max())
    result.histogram = error_histogram(diff)
    if expected.dtype.kind == "f":
        result.top_k = top_k_agreement(a.real, e.real)
    if result.mismatches:
        order = np.argsort(-np.where(failing, diff, -1.0), axis=None, kind="stable")[:WORST_SHOWN]
        for flat in order:
            idx = np.unravel_index(flat, expected.shape)
            if not failing[idx]:
                break
            result.worst.append(
                WorstElement(
                    [int(x) for x in idx],
                    _element(actual[idx]),
                    _element(expected[idx]),
                    float(diff[idx]),
                )
            )
        finite = np.isfinite(diff)
        if finite.all():
            result.min_atol = float(np.max(diff - tolerance.rtol * magnitude).clip(min=0.0))
            needed_rtol = np.where(
                diff <= tolerance.atol,
                0.0,
                (diff - tolerance.atol) / np.where(magnitude > 0, magnitude, np.nan),
            )
            if not np.isnan(needed_rtol).any():
                result.min_rtol = float(needed_rtol.max())


def error_histogram(diff: np.ndarray) -> ErrorHistogram:
    """Bin |a-b| by log10 over the span the data covers (HISTOGRAM_BINS_PER_DECADE per decade)."""
    flat = diff.reshape(-1)
    finite = np.isfinite(flat)
    nonzero = flat[finite & (flat > 0)]
    step = 1.0 / HISTOGRAM_BINS_PER_DECADE
    exact = int(np.count_nonzero(finite & (flat == 0)))
    non_finite = int(np.count_nonzero(~finite))
    if not nonzero.size:
        return ErrorHistogram(0.0, step, [], exact, non_finite)
    low, high = HISTOGRAM_LOG10_RANGE
    logs = np.clip(np.log10(nonzero), low, high - step)
    start = float(np.floor(logs.min() / step) * step)
    bins = np.floor((logs - start) / step + 1e-9).astype(np.int64)
    counts = np.bincount(bins, minlength=int(bins.max()) + 1)
    return ErrorHistogram(start, step, [int(c) for c in counts], exact, non_finite)


def top_k_agreement(actual: np.ndarray, expected: np.ndarray) -> TopKAgreement | None:
    """Top-k agreement when the output looks like class scores: 2-D [batch, classes>=2]."""
    if expected.ndim != 2 or expected.shape[0] == 0 or expected.shape[1] < 2:
        return None
    rows, classes = expected.shape
    # NaN sorts as the largest in argsort; treat it as the smallest score instead.
    a = np.where(np.isnan(actual), -np.inf, actual)
    e = np.where(np.isnan(expected), -np.inf, expected)
    agreement: dict[str, float] = {}
    for k in TOP_K:
        if k >= classes:
            continue
        if k == 1:
            same = np.argmax(a, axis=1) == np.argmax(e, axis=1)
        else:
            top_a = np.sort(np.argpartition(-a, k - 1, axis=1)[:, :k], axis=1)
            top_e = np.sort(np.argpartition(-e, k - 1, axis=1)[:, :k], axis=1)
            same = (top_a == top_e).all(axis=1)
        agreement[f"top{k}"] = float(np.count_nonzero(same)) / rows
    return TopKAgreement(rows, classes, agreement) if agreement else None
