"""The chaos marker: valid forms, selection, and each kind of mistake."""

from __future__ import annotations

import pytest

INVALID = {
    "missing": (
        "@pytest.mark.chaos",
        "::test_it: @pytest.mark.chaos needs blast_radius: the targets this test may fault",
    ),
    "positional": (
        "@pytest.mark.chaos(['redis'])",
        "got positional arguments [['redis']]; it takes only the keyword blast_radius",
    ),
    "unknown_kwarg": (
        "@pytest.mark.chaos(blast_radius=['redis'], max_faults=2)",
        "got unknown argument(s) ['max_faults']; allowed: ['blast_radius']",
    ),
    "wrong_type": (
        "@pytest.mark.chaos(blast_radius='redis')",
        "blast_radius='redis' is a str; allowed are a list of target names or a BlastRadius",
    ),
    "empty": ("@pytest.mark.chaos(blast_radius=[])", "blast_radius is empty"),
    "bad_name": (
        "@pytest.mark.chaos(blast_radius=['re dis'])",
        "BlastRadius targets entry 're dis' is not a target name",
    ),
    "targets_str": (
        "@pytest.mark.chaos(blast_radius=BlastRadius(targets='redis'))",
        "BlastRadius(targets='redis') must be a list of target names, got str",
    ),
    "negative_limit": (
        "@pytest.mark.chaos(blast_radius=BlastRadius(targets=['a'], max_concurrent_faults=-1))",
        "max_concurrent_faults=-1 is not allowed; use a whole number >= 1, or None",
    ),
    "zero_seconds": (
        "@pytest.mark.chaos(blast_radius=BlastRadius(targets=['a'], max_fault_seconds=0))",
        "max_fault_seconds=0 is not allowed; use a number of seconds > 0",
    ),
    "both": (
        "@pytest.mark.chaos(blast_radius=BlastRadius(targets=['a', 'b'], exclude=['b']))",
        "blast_radius names ['b'] both in targets and in exclude",
    ),
}


def test_each_invalid_marker_fails_collection_naming_test_argument_and_fix(
    pytester: pytest.Pytester,
) -> None:
    for name, (decorator, _) in INVALID.items():
        pytester.makepyfile(
            **{
                f"test_{name}": f"""
import pytest
from pytest_chaos import BlastRadius

{decorator}
def test_it():
    pass

def test_unmarked_neighbour():
    pass
"""
            }
        )
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors")
    out = result.stdout.str()
    for name, (_, message) in INVALID.items():
        assert f"ERROR collecting test_{name}.py" in out, name
        assert f"test_{name}.py::test_it: @pytest.mark.chaos" in out, name
        assert message in out, (name, message)
    # a collection error fails the run; nothing of a broken module runs
    result.assert_outcomes(errors=len(INVALID))


def test_valid_forms_strict_markers_and_selection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_chaos import BlastRadius

        @pytest.mark.chaos(blast_radius=["redis"])
        def test_list(chaos):
            assert chaos.spec.blast_radius.targets == ("redis",)

        @pytest.mark.chaos(blast_radius=("redis", "pg"))
        def test_tuple(chaos):
            assert chaos.spec.blast_radius.allows("pg")

        @pytest.mark.chaos(blast_radius=BlastRadius(targets=["*"], exclude=["pg"],
                           max_concurrent_faults=2, max_fault_seconds=1.5))
        def test_object(chaos):
            r = chaos.spec.blast_radius
            assert r.allows("redis") and not r.allows("pg")
            assert r.max_concurrent_faults == 2 and r.max_fault_seconds == 1.5

        @pytest.mark.chaos(blast_radius=["cls"])
        class TestClassLevel:
            def test_inherits(self, chaos):
                assert chaos.spec.blast_radius.targets == ("cls",)

        def test_not_chaos():
            pass
        """
    )
    pytester.makepyfile(
        test_module_level="""
        import pytest

        pytestmark = pytest.mark.chaos(blast_radius=["mod"])

        def test_module_marker(chaos):
            assert chaos.spec.blast_radius.targets == ("mod",)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-m", "chaos")
    result.assert_outcomes(passed=5, deselected=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-m", "not chaos")
    result.assert_outcomes(passed=1, deselected=5)


def test_marker_is_listed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.chaos(blast_radius=*"])
