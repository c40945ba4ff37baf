"""The YAML loader: line numbers, the shipped schema, and one test per kind of mistake."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_chaos.experiments._loader import ExperimentError, load_file, schema

# the yaml extra; jsonschema only checks the shipped schema itself (dev extra)
pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

GOOD = """\
apiVersion: pytest-chaos/v1
kind: Experiment
metadata:
  name: slow-api
spec:
  hypothesis: the API answers within 1s with 100ms latency
  blast_radius:
    targets: [api]
    max_fault_seconds: 30s
  uses: [api]
  targets:
    api: {upstream: "{api.address}"}
    cache: {upstream: "${CACHE_ADDRESS}"}
  probes:
    ping:
      http: {target: api, path: /, expect_status: 200}
    cache_up:
      tcp: cache
  steady_state:
    - {probe: ping, calls: 5, p99: 500ms}
  method:
    - at: 0s
      name: slow
      fault: latency:100ms
      target: api
      for: 1s
      expect: {probe: ping, p99: 1s, max_error_rate: 0%}
  abort_when:
    - {probe: ping, max_error_rate: 5%}
  success_criteria:
    - {recovers: {probe: ping, within: 2s}}
  rollback: [mypkg.ops:flush]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chaos_x.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path: Path, old: str, new: str) -> ExperimentError:
    assert old in GOOD
    with pytest.raises(ExperimentError) as info:
        load_file(_write(tmp_path, GOOD.replace(old, new, 1)))
    return info.value


def test_a_good_file_loads_with_the_line_of_every_value(tmp_path: Path) -> None:
    (doc,) = load_file(_write(tmp_path, GOOD))
    assert (doc.name, doc.kind, doc.line) == ("slow-api", "Experiment", 1)
    assert doc.line_of(("spec", "method", 0, "fault")) == 24
    assert doc.where(("spec", "method", 0, "nothing", "here")).endswith("chaos_x.yaml:22")


def test_two_documents_are_two_experiments(tmp_path: Path) -> None:
    docs = load_file(_write(tmp_path, GOOD + "---\n" + GOOD.replace("slow-api", "second")))
    assert [(d.name, d.line) for d in docs] == [("slow-api", 1), ("second", GOOD.count("\n") + 2)]


def test_the_shipped_schema_is_valid_and_accepts_a_good_document(tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    (doc,) = load_file(_write(tmp_path, GOOD))
    jsonschema.validate(json.loads(json.dumps(doc.data)), schema())


def test_an_unknown_key_under_spec_names_file_line_and_key(tmp_path: Path) -> None:
    exc = _error(tmp_path, "  uses: [api]", "  uses: [api]\n  lods: 3")
    assert exc.line == 11 and exc.key == "spec.lods"
    assert str(exc).startswith(f"{tmp_path / 'chaos_x.yaml'}:11: spec.lods: unknown key 'lods'")
    assert "load" in str(exc)  # the fix: the allowed keys, and the closest


def test_a_bad_unit(tmp_path: Path) -> None:
    exc = _error(tmp_path, "for: 1s", "for: 1")
    assert (exc.line, exc.key) == (26, "spec.method[0].for")
    assert "1" in str(exc) and "30s" in str(exc)
    exc = _error(tmp_path, "max_error_rate: 5%", "max_error_rate: 5 percent")
    assert exc.key == "spec.abort_when[0].max_error_rate" and "5%" in str(exc)


def test_an_unknown_fault(tmp_path: Path) -> None:
    exc = _error(tmp_path, "fault: latency:100ms", "fault: lag:100ms")
    assert (exc.line, exc.key) == (24, "spec.method[0].fault")
    assert "unknown fault 'lag'" in str(exc) and "latency:500ms" in str(exc)


def test_a_missing_target(tmp_path: Path) -> None:
    exc = _error(tmp_path, "      target: api\n", "      target: apii\n")
    assert (exc.line, exc.key) == (25, "spec.method[0].target")
    assert "no target named 'apii'" in str(exc) and "spec.targets" in str(exc)


def test_a_target_outside_the_blast_radius(tmp_path: Path) -> None:
    exc = _error(tmp_path, "      target: api\n", "      target: cache\n")
    assert exc.key == "spec.method[0].target"
    assert "blast_radius does not include 'cache'" in str(exc)
    assert "spec.blast_radius.targets" in str(exc)


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("kind: Experiment", "kind: Test", "kind", "GameDay"),
        ("apiVersion: pytest-chaos/v1", "apiVersion: v2", "apiVersion", "pytest-chaos/v1"),
        (
            "{probe: ping, calls: 5",
            "{probe: pong, calls: 5",
            "spec.steady_state[0].probe",
            "no probe",
        ),
        ("  name: slow-api\n", "  title: x\n", "metadata", "required key 'name'"),
        ("uses: [api]", "uses: api", "spec.uses", "[shop]"),
        ("rollback: [mypkg.ops:flush]", "rollback: [flush]", "spec.rollback[0]", "module:function"),
        (
            "      name: slow\n",
            "      name: slow\n      heal: later\n",
            "spec.method[0].heal",
            "earlier",
        ),
        ("  uses: [api]", "  uses: [api]\n  uses: [api]", "spec.uses", "twice"),
    ],
)
def test_other_mistakes_name_the_key_and_the_fix(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    exc = _error(tmp_path, old, new)
    assert exc.key == key and words in str(exc)


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    exc = _error(tmp_path, "  uses: [api]", "  uses: [api")
    assert exc.key == "(syntax)" and exc.line > 1
