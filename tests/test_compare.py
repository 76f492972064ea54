"""Comparison rules: numpy's isclose semantics, exact ints/bools/strings, clear messages."""

from __future__ import annotations

import numpy as np
import pytest

from tfinterop.compare import compare
from tfinterop.errors import UserError
from tfinterop.fixtures import Tolerance

EXACT = Tolerance(0.0, 0.0)


def test_identical_floats_pass_with_zero_error() -> None:
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    result = compare("y", x.copy(), x, EXACT)
    assert result.passed and result.max_abs == 0.0 and result.mismatches == 0


def test_rule_is_atol_plus_rtol_times_expected() -> None:
    expected = np.array([100.0, 1.0], dtype=np.float32)
    actual = np.array([100.0 + 1.5e-3, 1.0], dtype=np.float32)
    # allowed at [0] = 1e-3 + 1e-5*100 = 2e-3 > 1.5e-3
    assert compare("y", actual, expected, Tolerance(atol=1e-3, rtol=1e-5)).passed
    # allowed = 1e-4 + 1e-6*100 = 2e-4 < 1.5e-3
    result = compare("y", actual, expected, Tolerance(atol=1e-4, rtol=1e-6))
    assert not result.passed and result.mismatches == 1
    assert result.worst[0].index == [0]


def test_rule_matches_numpy_isclose_on_random_data() -> None:
    rng = np.random.default_rng(0)
    expected = rng.standard_normal(1000)
    actual = expected + rng.standard_normal(1000) * 1e-5
    tolerance = Tolerance(atol=1e-6, rtol=1e-5)
    result = compare("y", actual, expected, tolerance)
    assert result.mismatches == int((~np.isclose(actual, expected, rtol=1e-5, atol=1e-6)).sum())


def test_nan_at_same_positions_passes_and_elsewhere_fails() -> None:
    expected = np.array([1.0, np.nan, 3.0])
    assert compare("y", expected.copy(), expected, EXACT).passed
    moved = np.array([np.nan, 2.0, 3.0])
    result = compare("y", moved, expected, Tolerance(1.0, 1.0))
    assert not result.passed
    assert "NaN positions differ (1 unexpected NaN, 1 expected NaN missing)" in result.summary()
    assert result.min_atol is None  # no tolerance makes a NaN equal a number


def test_signed_zeros_are_equal_and_infinities_must_match() -> None:
    assert compare("y", np.array([-0.0]), np.array([0.0]), EXACT).passed
    assert compare("y", np.array([np.inf, -np.inf]), np.array([np.inf, -np.inf]), EXACT).passed
    result = compare("y", np.array([np.inf]), np.array([-np.inf]), Tolerance(1e9, 1e9))
    assert not result.passed and result.max_abs == np.inf


def test_integers_and_bools_are_exact() -> None:
    expected = np.array([[1, 2], [3, 4]], dtype=np.int64)
    actual = expected.copy()
    actual[1, 0] = 30
    result = compare("labels", actual, expected, Tolerance(1e6, 1e6))  # tolerances ignored
    assert not result.passed and result.mismatches == 1
    assert result.worst[0].index == [1, 0] and result.max_abs == 27.0
    assert compare("m", np.array([True, False]), np.array([True, False]), EXACT).passed
    assert not compare("m", np.array([True, True]), np.array([True, False]), EXACT).passed


def test_strings_compare_bytes_exactly() -> None:
    expected = np.array([b"cat", b"a\x00b", b"\xff" * 30], dtype=object)
    assert compare("label", expected.copy(), expected, EXACT).passed
    actual = expected.copy()
    actual[1] = b"a\x00c"
    result = compare("label", actual, expected, EXACT)
    assert not result.passed and result.worst[0].index == [1]


@pytest.mark.parametrize(
    ("actual", "problem"),
    [
        (np.zeros((2, 3), np.float32), "shape (2, 3) != expected (3, 2)"),
        (np.zeros((3, 2), np.float64), "dtype float64 != expected float32"),
        (np.zeros((3, 2), np.int32), "dtype int32 != expected float32"),
    ],
)
def test_shape_and_dtype_must_match_exactly(actual: np.ndarray, problem: str) -> None:
    result = compare("y", actual, np.zeros((3, 2), np.float32), Tolerance(1.0, 1.0))
    assert not result.passed and result.problems == [problem]
    assert problem in result.summary()


def test_failure_message_names_counts_worst_and_minimum_tolerance() -> None:
    expected = np.ones((4, 4), np.float32)
    actual = expected.copy()
    actual[2, 3] += 1e-3
    actual[0, 1] += 2e-4
    result = compare("probabilities", actual, expected, Tolerance(atol=1e-6, rtol=1e-6))
    text = result.summary()
    assert text.startswith(
        "output probabilities: 2/16 elements differ beyond atol=1e-06 rtol=1e-06"
    )
    assert "at (2, 3)" in text and text.index("(2, 3)") < text.index("(0, 1)")  # worst first
    # Rounded up to 3 significant figures: within 1% above the exact bound.
    assert result.min_atol == pytest.approx(1e-3 - 1e-6, rel=1e-2)
    assert result.min_rtol == pytest.approx(1e-3 - 1e-6, rel=1e-2)
    # The suggested tolerance itself passes, and a slightly smaller one does not.
    assert result.min_atol is not None
    assert compare("p", actual, expected, Tolerance(atol=result.min_atol, rtol=1e-6)).passed
    assert not compare(
        "p", actual, expected, Tolerance(atol=result.min_atol * 0.99, rtol=1e-6)
    ).passed


def test_relative_error_against_zero_is_infinite_and_no_rtol_helps() -> None:
    result = compare("y", np.array([1e-3]), np.array([0.0]), Tolerance(0.0, 1e-3))
    assert not result.passed and result.max_rel == np.inf
    assert result.min_rtol is None and result.min_atol == pytest.approx(1e-3)


def test_complex_and_float16_are_compared_in_wide_precision() -> None:
    expected = np.array([1 + 1j, 2 - 1j], dtype=np.complex64)
    assert compare("z", expected.copy(), expected, EXACT).passed
    assert not compare("z", expected + 1e-3j, expected, Tolerance(1e-4, 0)).passed
    half = np.array([0.1, 65504.0], dtype=np.float16)
    assert compare("h", half.copy(), half, EXACT).passed


def test_zero_size_and_scalar_outputs() -> None:
    assert compare(
        "empty", np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), EXACT
    ).passed
    assert compare("s", np.array(2.5), np.array(2.5), EXACT).passed
    assert not compare("s", np.array(2.5), np.array(2.0), EXACT).passed


def test_complex_real_and_imaginary_parts_are_compared_separately() -> None:
    nan = float("nan")
    expected = np.array([complex(nan, 1.0)], dtype=np.complex128)
    assert compare("z", expected.copy(), expected, EXACT).passed
    # A NaN real part must not hide a different imaginary part.
    result = compare("z", np.array([complex(nan, 2.0)]), expected, EXACT)
    assert not result.passed and result.mismatches == 1 and result.max_abs == 1.0
    assert not result.problems  # the NaN sits in the same part of both
    swapped = compare("z", np.array([complex(1.0, nan)]), expected, Tolerance(1e9, 1e9))
    assert not swapped.passed
    assert swapped.problems == ["NaN positions differ (1 unexpected NaN, 1 expected NaN missing)"]
    # Equal infinite parts: the finite parts decide, under the fixture's tolerance.
    inf_expected = np.array([complex(np.inf, 1.0)], dtype=np.complex64)
    inf_actual = np.array([complex(np.inf, 2.0)], dtype=np.complex64)
    assert compare("z", inf_expected.copy(), inf_expected, EXACT).passed
    off = compare("z", inf_actual, inf_expected, EXACT)
    assert not off.passed and off.max_abs == 1.0
    assert compare("z", inf_actual, inf_expected, Tolerance(1.0, 0.0)).passed


def _printed(text: str, name: str) -> float | None:
    import re

    other = "rtol" if name == "atol" else "atol"
    found = re.search(rf"\b{name}>=(\S+) \({other}=", text)
    return float(found.group(1)) if found else None


def test_printed_smallest_tolerances_really_pass_and_are_tight() -> None:
    """Random failing outputs: the atol and rtol the message prints, typed back in, pass; 1%
    less fails (the printed value is the smallest on its 3-significant-figure grid)."""
    rng = np.random.default_rng(20240611)
    checked = {"atol": 0, "rtol": 0}
    dtypes = [
        np.dtype(name) for name in ("float16", "float32", "float64", "complex64", "complex128")
    ]
    for _ in range(600):
        dtype = dtypes[int(rng.integers(len(dtypes)))]
        size = int(rng.integers(1, 20))
        scale = 10.0 ** rng.uniform(-3, 3) if dtype == np.float16 else 10.0 ** rng.uniform(-6, 6)
        expected = rng.standard_normal(size) * scale
        noise = rng.standard_normal(size) * scale * 10.0 ** rng.uniform(-7, -1)
        if dtype.kind == "c":
            expected = expected + 1j * rng.standard_normal(size) * scale
            noise = noise + 1j * rng.standard_normal(size) * scale * 1e-3
        expected = expected.astype(dtype)
        actual = (expected + noise).astype(dtype)
        tolerance = Tolerance(
            atol=float(rng.choice([0.0, scale * 10.0 ** rng.uniform(-9, -3)])),
            rtol=float(rng.choice([0.0, 10.0 ** rng.uniform(-8, -3)])),
        )
        result = compare("y", actual, expected, tolerance)
        if result.passed:
            continue
        text = result.summary()
        for name in ("atol", "rtol"):
            printed = _printed(text, name)
            assert (printed is None) == (getattr(result, f"min_{name}") is None), text
            if printed is None:
                continue
            checked[name] += 1
            given = {"atol": tolerance.atol, "rtol": tolerance.rtol}
            assert compare("y", actual, expected, Tolerance(**{**given, name: printed})).passed, (
                text
            )
            if printed > 0:
                less = Tolerance(**{**given, name: printed * 0.99})
                assert not compare("y", actual, expected, less).passed, text
    assert checked["atol"] > 300 and checked["rtol"] > 300, checked


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_integer_differences_are_exact_beyond_two_to_the_53(dtype: str) -> None:
    base = 2**60
    expected = np.array([base, base, base], dtype=dtype)
    actual = np.array([base + 1, base + 3, base], dtype=dtype)  # float64 sees no difference
    result = compare("ids", actual, expected, EXACT)
    assert not result.passed and result.mismatches == 2 and result.max_abs == 3.0
    assert [w.index for w in result.worst] == [[1], [0]] and result.worst[0].abs_error == 3.0
    assert "max |diff| 3," in result.summary()


def test_integer_differences_across_the_whole_range_do_not_wrap() -> None:
    info = np.iinfo(np.int64)
    result = compare("i", np.array([info.max]), np.array([info.min]), EXACT)
    assert result.max_abs == float(2**64 - 1) and result.worst[0].abs_error == float(2**64 - 1)
    top = np.iinfo(np.uint64).max
    unsigned = compare("u", np.array([0], np.uint64), np.array([top], np.uint64), EXACT)
    assert unsigned.max_abs == float(top)
    small = compare("b", np.array([-128], np.int8), np.array([127], np.int8), EXACT)
    assert small.max_abs == 255.0


@pytest.mark.parametrize(
    ("atol", "rtol"),
    [(float("nan"), 0.0), (0.0, float("nan")), (float("inf"), 0.0), (0.0, float("inf")), (-1, 0)],
)
def test_tolerance_must_be_finite_and_non_negative(atol: float, rtol: float) -> None:
    # NaN would fail identical arrays, inf would pass anything: refuse them where they are given.
    with pytest.raises(UserError, match=r"^tolerances must be finite numbers >= 0, got atol="):
        Tolerance(atol=atol, rtol=rtol)


def _verdict_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((6, 5)).astype(np.float32)
    nan_e = base.copy()
    nan_e[1, 2] = np.nan
    nan_a = nan_e.copy()
    nan_a[3, 3] = np.nan
    inf_e = base.copy()
    inf_e[0, 0] = np.inf
    zeros = base.copy()
    zeros[2, :] = 0.0
    complex_e = (base + 1j * base[::-1]).astype(np.complex64)
    return [
        (base, base.copy()),
        (base + np.float32(1e-6), base),
        (zeros + np.float32(1e-7), zeros),
        (nan_e.copy(), nan_e),
        (nan_a, nan_e),
        (inf_e.copy(), inf_e),
        (-inf_e, inf_e),
        (base.astype(np.float16), base.astype(np.float16) + np.float16(0.01)),
        (complex_e * np.complex64(1 + 1e-6), complex_e),
        (np.arange(12, dtype=np.int64), np.arange(12, dtype=np.int64)[::-1].copy()),
        (np.array([True, False]), np.array([True, True])),
        (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)),
    ]


@pytest.mark.parametrize("case", range(12))
@pytest.mark.parametrize("tolerance", [Tolerance(atol=0.0, rtol=0.0), Tolerance(1e-6, 1e-5)])
def test_verdict_only_comparison_agrees_with_the_full_one(case: int, tolerance: Tolerance) -> None:
    """``locate``'s cheap comparison must reach the full comparison's verdict and figures."""
    actual, expected = _verdict_cases()[case]
    full = compare("x", actual, expected, tolerance)
    quick = compare("x", actual, expected, tolerance, diagnose=False)
    assert (quick.passed, quick.mismatches, quick.problems) == (
        full.passed,
        full.mismatches,
        full.problems,
    )
    assert quick.max_abs == full.max_abs
    assert quick.max_rel == full.max_rel
    assert quick.histogram is None and quick.worst == [] and quick.min_atol is None
