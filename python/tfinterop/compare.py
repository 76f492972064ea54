"""Compare a consumer's output with Python's reference. Returns result objects; never raises.

Rules (numpy's ``isclose``/``assert_allclose`` semantics):

* shape and dtype must match exactly;
* floating point (float16/32/64, complex) passes elementwise when
  ``|actual - expected| <= atol + rtol * |expected|``; NaN must sit at the same positions
  in both (NaN == NaN there); infinities must be equal; ``-0.0 == +0.0``. Complex numbers
  apply the NaN and infinity rules to the real and imaginary parts separately; ``|.|`` is
  the modulus of the parts' differences (and of the finite parts of ``expected``);
* integers, bools and strings (bytes) must be equal (integer differences are exact).

The "would pass with" hints print ``SIGNIFICANT`` figures and are checked against this rule:
the printed value, typed back in, passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

import numpy as np

from .fixtures import Tolerance

WORST_SHOWN = 3
HISTOGRAM_BINS_PER_DECADE = 4
HISTOGRAM_LOG10_RANGE = (-20.0, 20.0)
"""|a-b| outside this range lands in the first/last bin: bounds the JSON size."""
TOP_K = (1, 5)
SIGNIFICANT = 3
"""Significant figures of the printed smallest passing tolerances."""
GRID_NUDGES = 8
"""Grid steps tried when the rounded-up bound still fails (float rounding in the rule)."""


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
    """Smallest atol with SIGNIFICANT figures that passes at the fixture's rtol (checked by
    the comparison rule); None if none would."""
    min_rtol: float | None = None
    """Smallest rtol with SIGNIFICANT figures that passes at the fixture's atol (checked by
    the comparison rule); None if none would."""
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
                hints.append(f"atol>={_hint(self.min_atol)} (rtol={self.tolerance.rtol:g})")
            if self.min_rtol is not None:
                hints.append(f"rtol>={_hint(self.min_rtol)} (atol={self.tolerance.atol:g})")
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


def _hint(value: float) -> str:
    """A grid value from ``_smallest_passing``: this prints it exactly."""
    return f"{value:.{SIGNIFICANT}g}"


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
    key: str,
    actual: np.ndarray,
    expected: np.ndarray,
    tolerance: Tolerance,
    *,
    diagnose: bool = True,
) -> OutputComparison:
    """``actual`` against ``expected`` under ``tolerance``. ``diagnose=False`` gives the verdict,
    mismatch count and max abs/rel only (no histogram, worst elements, top-k or smallest
    passing tolerance): ``locate`` compares every tensor of a graph and reports just those."""
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
        _compare_inexact(result, actual, expected, tolerance, diagnose)
    else:
        _compare_exact(result, actual, expected, diagnose)
    result.passed = not result.problems and result.mismatches == 0
    return result


def _compare_exact(
    result: OutputComparison, actual: np.ndarray, expected: np.ndarray, diagnose: bool = True
) -> None:
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
        diff = _integer_distance(actual, expected)
        result.max_abs = float(diff.max())
        if not diagnose:
            return
        result.histogram = error_histogram(diff.astype(np.float64))
        if result.mismatches:
            # ~diff orders uint64 descending without negation (which would wrap).
            order = np.argsort(~diff, axis=None, kind="stable")[:WORST_SHOWN]
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
    if result.mismatches and diagnose:
        positions = np.argwhere(differs)[:WORST_SHOWN]
        result.worst = [
            WorstElement(
                [int(x) for x in idx],
                _element(actual[tuple(idx)]),
                _element(expected[tuple(idx)]),
                None,
            )
            for idx in positions
        ]


def _integer_distance(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """``|actual - expected|`` as uint64, exact: the distance between two 64-bit integers
    always fits in 64 unsigned bits, where float64 keeps only 53."""
    wide = np.int64 if expected.dtype.kind == "i" else np.uint64
    a = actual.astype(wide).astype(np.uint64)  # two's complement: subtraction mod 2**64
    e = expected.astype(wide).astype(np.uint64)
    return np.where(actual >= expected, a - e, e - a)


def _parts(array: np.ndarray) -> list[np.ndarray]:
    """float64 arrays the rules apply to: real and imaginary part of a complex array."""
    if array.dtype.kind == "c":
        wide = array.astype(np.complex128)
        return [wide.real, wide.imag]
    return [array.astype(np.float64)]


def _failing(diff: np.ndarray, magnitude: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """The comparison rule; NaN differences fail."""
    with np.errstate(invalid="ignore", over="ignore"):
        return ~(diff <= atol + rtol * magnitude)


def _compare_inexact(
    result: OutputComparison,
    actual: np.ndarray,
    expected: np.ndarray,
    tolerance: Tolerance,
    diagnose: bool = True,
) -> None:
    if not diagnose and actual.dtype == expected.dtype and np.array_equal(actual, expected):
        result.mismatches = 0  # bit-for-bit equal up to signed zeros: one pass decides it
        if expected.size:
            result.max_abs = result.max_rel = 0.0
        return
    if not diagnose and expected.dtype.kind == "f" and actual.dtype.kind == "f":
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a - e)
        if np.isfinite(diff).all():
            # All finite (the common case): the rule below without its NaN/inf bookkeeping,
            # in a third of the passes; anything else takes the general path.
            magnitude = np.abs(e)
            result.mismatches = int(
                np.count_nonzero(_failing(diff, magnitude, tolerance.atol, tolerance.rtol))
            )
            if expected.size:
                result.max_abs = float(diff.max())
                with np.errstate(divide="ignore", invalid="ignore"):
                    relative = np.where(
                        magnitude > 0, diff / magnitude, np.where(diff > 0, np.inf, 0.0)
                    )
                result.max_rel = float(relative.max())
            return
    unexpected_nan = np.zeros(expected.shape, dtype=bool)
    missing_nan = np.zeros(expected.shape, dtype=bool)
    part_diffs, part_magnitudes = [], []
    with np.errstate(invalid="ignore", over="ignore"):
        # Part by part: a NaN real part must not hide a different imaginary part.
        for a, e in zip(_parts(actual), _parts(expected), strict=True):
            a_nan, e_nan = np.isnan(a), np.isnan(e)
            unexpected_nan |= a_nan & ~e_nan
            missing_nan |= e_nan & ~a_nan
            # a == e covers equal infinities and signed zeros; NaN == NaN at the same place.
            part_diffs.append(np.where((a == e) | (a_nan & e_nan), 0.0, np.abs(a - e)))
            part_magnitudes.append(np.where(np.isfinite(e), np.abs(e), 0.0))
        nan_mismatch = unexpected_nan | missing_nan
        if nan_mismatch.any():
            extra, lost = int(unexpected_nan.sum()), int(missing_nan.sum())
            result.problems.append(
                f"NaN positions differ ({extra} unexpected NaN, {lost} expected NaN missing)"
            )
        diff = part_diffs[0] if len(part_diffs) == 1 else np.hypot(*part_diffs)
        diff = np.where(nan_mismatch, np.inf, diff)
        magnitude = part_magnitudes[0] if len(part_magnitudes) == 1 else np.hypot(*part_magnitudes)
        failing = _failing(diff, magnitude, tolerance.atol, tolerance.rtol)
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
    if not diagnose:
        return
    result.histogram = error_histogram(diff)
    if expected.dtype.kind == "f":
        result.top_k = top_k_agreement(actual.astype(np.float64), expected.astype(np.float64))
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
        if np.isfinite(diff).all():
            atol, rtol = tolerance.atol, tolerance.rtol
            result.min_atol = _smallest_passing(
                float(np.max(diff - rtol * magnitude).clip(min=0.0)),
                lambda value: not _failing(diff, magnitude, value, rtol).any(),
            )
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                needed_rtol = np.where(
                    diff <= atol, 0.0, (diff - atol) / np.where(magnitude > 0, magnitude, np.nan)
                )
            if not np.isnan(needed_rtol).any():
                result.min_rtol = _smallest_passing(
                    float(needed_rtol.max()),
                    lambda value: not _failing(diff, magnitude, atol, value).any(),
                )


def _smallest_passing(bound: float, passes: Callable[[float], bool]) -> float | None:
    """The smallest value with SIGNIFICANT figures (what the message prints) that ``passes``.

    ``bound`` is the analytic minimum. Rounding it up is not always enough: the rule is
    evaluated in float and may still fail by an ulp, so step up the grid; and ``bound`` may
    have lost precision to cancellation, so step down while a smaller value still passes.
    None when no finite value passes within GRID_NUDGES steps."""
    if not np.isfinite(bound):
        return None
    value: Decimal | None = _grid_ceil(bound)
    for _ in range(GRID_NUDGES):
        if value is None or not np.isfinite(float(value)):
            return None
        if passes(float(value)):
            break
        value = _grid_step(value, 1)
    else:
        return None
    for _ in range(GRID_NUDGES):
        lower = _grid_step(value, -1)
        if lower is None or not passes(float(lower)):
            break
        value = lower
    return float(value)


def _grid_ceil(value: float) -> Decimal:
    """``value`` rounded up to SIGNIFICANT figures, in exact decimal."""
    exact = Decimal(value)
    if exact == 0:
        return exact
    return exact.quantize(_grid_quantum(exact), rounding=ROUND_CEILING)


def _grid_quantum(value: Decimal) -> Decimal:
    return Decimal(1).scaleb(value.adjusted() - SIGNIFICANT + 1)


def _grid_step(value: Decimal, direction: int) -> Decimal | None:
    """The next (direction 1) or previous (-1) positive SIGNIFICANT-figure value."""
    if value <= 0:
        return None
    quantum = _grid_quantum(value)
    stepped = value + direction * quantum
    if stepped.adjusted() < value.adjusted():  # 1.00e5 -> 9.99e4: the finer grid below
        stepped = value - quantum / 10
    return stepped if stepped > 0 else None


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
