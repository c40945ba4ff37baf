"""The statistics behind compare, against hand-computed and reference values.

Reference p-values were computed by hand where the arithmetic is short (the exact U
distribution, Fisher's hypergeometric sum, the pooled z) and checked once against
scipy 1.17 (``mannwhitneyu(x, y, alternative="greater")``, ``fisher_exact(...,
alternative="greater")``, ``norm.sf``) outside this repository; scipy is not a
dependency.
"""

from __future__ import annotations

import math
import random

import pytest

from pytest_chaos.checks._statistics import (
    cliffs_delta,
    effect_label,
    histogram,
    mann_whitney_u,
    normal_sf,
    quantile,
    summarize,
    two_proportions,
)


def test_normal_sf_known_values() -> None:
    assert normal_sf(0.0) == pytest.approx(0.5)
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, abs=1e-12)
    assert normal_sf(-1.6448536269514722) == pytest.approx(0.95, abs=1e-12)


def test_exact_mann_whitney_small_samples() -> None:
    # U = pairs with x > y: 19 > 3 of y, 22 > 4, 16 > 2, 29 > 4, 24 > 4 -> 17 of 20.
    # Of the C(9, 4) = 126 equally likely arrangements, 7 give U >= 17: p = 7/126.
    result = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert result.method == "exact"
    assert result.u == 17
    assert result.p_value == pytest.approx(7 / 126)
    assert result.delta == pytest.approx(2 * 17 / 20 - 1)


def test_exact_mann_whitney_extremes() -> None:
    # every x above every y: the one most extreme arrangement of C(10, 5) = 252
    top = mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert top.u == 25 and top.p_value == pytest.approx(1 / 252)
    # every x below every y: U = 0, P(U >= 0) = 1
    bottom = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert bottom.u == 0 and bottom.p_value == pytest.approx(1.0)
    assert bottom.delta == -1.0


def test_normal_mann_whitney_with_ties_matches_the_reference() -> None:
    x = [1.1, 2.2, 2.2, 3.0, 4.5, 4.5, 5.0, 6.1]
    y = [0.5, 1.1, 2.0, 2.2, 2.9, 3.0, 3.3]
    result = mann_whitney_u(x, y)
    assert result.method == "normal"  # ties rule the exact distribution out
    assert result.u == 42.0
    # tie groups {1.1 x2, 2.2 x3, 3.0 x2, 4.5 x2}: sum(t^3 - t) = 6 + 24 + 6 + 6 = 42
    variance = 8 * 7 / 12 * (16 - 42 / (15 * 14))
    z = (42 - 28 - 0.5) / math.sqrt(variance)
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(0.057954587773279304, rel=1e-9)  # scipy 1.17


def test_exact_and_normal_agree_on_larger_samples() -> None:
    rng = random.Random(7)
    x = [rng.gauss(1.2, 1) for _ in range(20)]
    y = [rng.gauss(1.0, 1) for _ in range(20)]
    exact = mann_whitney_u(x, y, method="exact")
    normal = mann_whitney_u(x, y, method="normal")
    assert exact.u == normal.u
    assert exact.p_value == pytest.approx(normal.p_value, abs=0.01)


def test_mann_whitney_all_equal_is_no_evidence() -> None:
    result = mann_whitney_u([1.0] * 6, [1.0] * 6)
    assert result.p_value == 1.0 and result.delta == 0.0


def test_mann_whitney_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError, match="without ties"):
        mann_whitney_u([1.0, 2.0], [2.0, 3.0], method="exact")
    with pytest.raises(ValueError, match="choose 'auto'"):
        mann_whitney_u([1.0], [2.0], method="fast")


def test_cliffs_delta_equals_the_rank_biserial_of_u() -> None:
    x, y = [3, 4, 4, 8, 9], [1, 4, 5, 6]
    # pairs x > y: 3>1; 4>1; 4>1; 8>1,4,5,6; 9>1,4,5,6 -> 11; x < y: 3<4,5,6; 4<5,6 (x2);
    # 8, 9 none -> 7; ties 4=4 (x2) -> delta = (11 - 7) / 20
    assert cliffs_delta(x, y) == pytest.approx(0.2)
    assert mann_whitney_u(x, y).delta == pytest.approx(0.2)


def test_effect_labels() -> None:
    assert [effect_label(d) for d in (0.1, -0.2, 0.4, 0.9)] == [
        "negligible",
        "small",
        "medium",
        "large",
    ]


def test_two_proportion_z_test() -> None:
    # 30/100 vs 20/100: pooled 0.25, se = sqrt(0.25 * 0.75 * 0.02), z = 0.1 / se
    result = two_proportions(30, 100, 20, 100)
    assert result.method == "z"
    assert result.z == pytest.approx(0.1 / math.sqrt(0.25 * 0.75 * 0.02))
    assert result.p_value == pytest.approx(0.051235217429874684, rel=1e-9)  # scipy 1.17
    assert result.diff == pytest.approx(0.1)


def test_fisher_exact_for_few_errors() -> None:
    # 3/10 vs 1/10: P(X >= 3), X hypergeometric with 4 errors among 20 calls, 10 drawn:
    # (C(10,3) C(10,1) + C(10,4) C(10,0)) / C(20,4) = (1200 + 210) / 4845
    result = two_proportions(3, 10, 1, 10)
    assert result.method == "fisher"
    assert result.p_value == pytest.approx(1410 / 4845)
    assert two_proportions(3, 10, 1, 10, method="fisher").p_value == pytest.approx(
        0.2910216718266254, rel=1e-9
    )  # scipy 1.17


def test_no_variation_in_errors_is_no_evidence() -> None:
    assert two_proportions(0, 30, 0, 30).p_value == 1.0
    assert two_proportions(30, 30, 30, 30).method == "none"


def test_two_proportions_bad_input() -> None:
    with pytest.raises(ValueError, match="0 <= x <= n"):
        two_proportions(5, 4, 0, 4)
    with pytest.raises(ValueError, match="choose 'auto'"):
        two_proportions(1, 4, 0, 4, method="chi2")


def test_quantiles_summary_and_histogram() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 50) == 50.0 and quantile(values, 99) == 99.0
    summary = summarize(values)
    assert summary["p90"] == 90.0 and summary["max"] == 100.0 and summary["mean"] == 50.5
    assert "min" not in summary
    assert summarize([]) == {}
    hist = histogram([[0.0, 0.5, 1.0], [1.0, 1.0]], bins=2)
    assert hist["edges"] == [0.0, 0.5, 1.0]
    assert hist["counts"] == [[1, 2], [0, 2]]
    assert histogram([[2.0], [2.0]], bins=4)["counts"] == [[1, 0, 0, 0], [1, 0, 0, 0]]
