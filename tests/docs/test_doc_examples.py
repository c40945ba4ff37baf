"""Every example of README.md and docs/ runs (conventions: tests/docs/_docblocks.py).

Each page's titled blocks form its example project, written into a temporary directory;
console blocks and the ``pytest`` steps of YAML blocks run there, with the real
``pytest`` of this environment. A page whose project holds tests (``test_*.py``, and
YAML experiments ``chaos_*.yaml``/``chaos_*.yml``) that no console block runs (no command
names it, and no command runs the whole folder) get a ``pytest`` run of their own. A YAML
block that is an experiment (``apiVersion: pytest-chaos/v1``) is loaded as one. Services
come from the bundled provider so that no Docker engine is needed.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import json
import os
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from _docblocks import (
    EXAMPLES,
    ROOT,
    Block,
    all_blocks,
    output_matches,
    split_console,
)

BLOCKS = all_blocks()
#: project files pytest collects as tests (pytest's default and pytest-chaos's YAML globs)
TEST_FILES = ("test_*.py", "chaos_*.yaml", "chaos_*.yml")
EXPERIMENT_API = "apiVersion: pytest-chaos/v1"
EXAMPLE_BLOCKS = [b for b in BLOCKS if b.lang in EXAMPLES]
TIMEOUT = 120.0


def _id(block: Block) -> str:
    kind = f"-{block.kind}" if block.kind and block.kind != "exit" else ""
    return f"{block.where}-{block.lang}{kind}"


def _project(page: Path) -> list[Block]:
    return [b for b in BLOCKS if b.page == page and b.title]


def _runs_pytest(block: Block) -> bool:
    if block.kind in ("not-run", "fragment", "compile-only"):
        return False
    if block.lang == "console":
        return any(_is_pytest(cmd) for cmd, _ in split_console(block.source))
    if block.lang == "yaml":
        return any(_is_pytest(cmd) for cmd in _yaml_commands(block))
    return False


def _is_pytest(command: str) -> bool:
    words = [w for w in shlex.split(command) if "=" not in w.split("/")[0]]
    return bool(words) and (words[0] == "pytest" or words[:3] == ["python", "-m", "pytest"])


def _is_experiment(block: Block) -> bool:
    """A YAML block that is a pytest-chaos experiment file (not CI steps)."""
    return block.lang == "yaml" and EXPERIMENT_API in block.source


def _yaml_commands(block: Block) -> list[str]:
    if _is_experiment(block):
        return []
    steps = yaml.safe_load(block.source)
    return [step["run"] for step in steps if isinstance(step, dict) and "run" in step]


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PYTHONPATH")) and k != "COVERAGE_PROCESS_START"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTEST_CHAOS_SERVICES"] = "bundled"  # no Docker, whatever the machine has
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _write_project(page: Path, where: Path) -> None:
    for block in _project(page):
        path = where / block.title  # type: ignore[operator]
        if path.exists():
            raise AssertionError(f"{block.where}: a second block titled {block.title!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.source, encoding="utf-8")


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _check_pip_install(command: str) -> None:
    """``pip install`` is not run (no network in tests): what it names must exist."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for word in shlex.split(command)[2:]:
        if word.startswith("-") or word in (".", "/work/main"):
            continue
        name, _, rest = word.partition("[")
        if name in (".", "pytest-chaos"):
            for extra in rest.rstrip("]").split(",") if rest else []:
                assert extra in extras, f"{command!r}: pytest-chaos has no extra {extra!r}"
        else:
            metadata.distribution(name)  # installed here (the dev extra pulls it in)


def _check_make(command: str) -> None:
    """``make TARGET`` is not run (it would run the whole suite): the target must exist."""
    target = shlex.split(command.split("#")[0])[1:]
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), *target], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{command!r}: {done.stderr}"


def _check_experiment(block: Block) -> None:
    """A YAML experiment block loads as one; a block the page shows failing (a console
    block of the page runs it and expects an exit status) must fail to load."""
    from pytest_chaos.experiments._loader import ExperimentError, load_file

    assert block.title and _is_test_file(block.title), (
        f"{block.where}: an experiment block needs a title such as chaos_x.yaml"
    )
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"docs-{os.getpid()}-{block.title}"
    path.write_text(block.source, encoding="utf-8")
    try:
        documents = load_file(path)
    except ExperimentError as exc:
        assert block.title in _failing_files(block.page), f"{block.where}: {exc}"
    else:
        assert documents, f"{block.where}: no document"
        assert block.title not in _failing_files(block.page), (
            f"{block.where}: shown failing, but it loads"
        )
    finally:
        path.unlink()


def _failing_files(page: Path) -> set[str]:
    """Files named by a console block of ``page`` that is expected to exit non-zero with
    a collection error (an experiment that loads and then fails its checks is valid)."""
    named: set[str] = set()
    for block in BLOCKS:
        if (
            block.page == page
            and block.lang == "console"
            and block.expected_exit
            and "ERROR collecting" in block.source
        ):
            for command, _ in split_console(block.source):
                named |= _pytest_files(command) or set()
    return named


def _is_test_file(name: str) -> bool:
    return any(fnmatch.fnmatch(Path(name).name, glob) for glob in TEST_FILES)


# -- every example is valid: compiled or parsed -----------------------------------------


@pytest.mark.parametrize("block", EXAMPLE_BLOCKS, ids=_id)
def test_example_is_valid(block: Block) -> None:
    if block.lang == "python":
        ast.parse(block.source, filename=block.where)
        compile(block.source, block.where, "exec", dont_inherit=True)
    elif _is_experiment(block):
        _check_experiment(block)
    elif block.lang == "yaml":
        yaml.safe_load(block.source)
    elif block.lang == "ini":
        configparser.ConfigParser().read_string(block.source)
    elif block.lang == "toml":
        tomllib.loads(block.source)
    elif block.lang == "json":
        json.loads(block.source)
    elif block.lang == "console":
        assert split_console(block.source), f"{block.where}: no '$ ' command"
    if block.kind in ("fragment", "compile-only"):
        assert block.lang == "python", f"{block.where}: {block.kind} is for Python blocks"
    if block.kind == "compile-only":
        assert block.reason, f"{block.where}: compile-only needs a reason"


# -- scripts, console blocks, YAML steps and page projects run ----------------------------

SCRIPTS = [b for b in EXAMPLE_BLOCKS if b.lang == "python" and not b.title and not b.kind]
CONSOLES = [b for b in EXAMPLE_BLOCKS if b.lang == "console" and b.kind in ("", "exit")]
YAML_RUNS = [b for b in EXAMPLE_BLOCKS if b.lang == "yaml" and _runs_pytest(b)]


def _commands(block: Block) -> list[str]:
    if block.kind in ("not-run", "fragment", "compile-only"):
        return []
    if block.lang == "console":
        return [cmd for cmd, _ in split_console(block.source)]
    if block.lang == "yaml":
        return _yaml_commands(block)
    return []


def _pytest_files(command: str) -> set[str] | None:
    """The test files a pytest command names; ``None`` when it names none (runs all)."""
    files = {
        w.split("::")[0]
        for w in shlex.split(command)
        if w.split("::")[0].endswith((".py", ".yaml", ".yml")) and "=" not in w
    }
    return files or None


def _untested(page: Path) -> list[str]:
    """The page's test files that none of its console or YAML pytest commands runs."""
    tests = {b.title for b in _project(page) if b.title and _is_test_file(b.title)}
    for block in BLOCKS:
        if block.page != page:
            continue
        for command in _commands(block):
            if not _is_pytest(command):
                continue
            named = _pytest_files(command)
            if named is None:
                return []
            tests -= named
    return sorted(tests)


PROJECTS = sorted(page for page in {b.page for b in BLOCKS} if _untested(page))


@pytest.mark.parametrize("block", SCRIPTS, ids=_id)
def test_script_runs(block: Block, tmp_path: Path) -> None:
    _write_project(block.page, tmp_path)
    (tmp_path / "_example.py").write_text(block.source, encoding="utf-8")
    done = _run(f"{shlex.quote(sys.executable)} _example.py", tmp_path)
    assert done.returncode == 0, f"{block.where}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block", CONSOLES, ids=_id)
def test_console_block(block: Block, tmp_path: Path) -> None:
    _write_project(block.page, tmp_path)
    steps = split_console(block.source)
    for index, (command, expected) in enumerate(steps):
        if command.startswith("pip install"):
            _check_pip_install(command)
            continue
        if command.startswith("make "):
            _check_make(command)
            continue
        done = _run(command, tmp_path)
        output = done.stdout + done.stderr
        status = block.expected_exit if index == len(steps) - 1 else 0
        assert done.returncode == status, (
            f"{block.where}: {command!r} exited {done.returncode}, not {status}:\n{output}"
        )
        missing = output_matches(expected, output)
        assert missing is None, f"{block.where}: {command!r} did not print {missing!r}:\n{output}"


@pytest.mark.parametrize("block", YAML_RUNS, ids=_id)
def test_yaml_steps_run(block: Block, tmp_path: Path) -> None:
    _write_project(block.page, tmp_path)
    for command in _yaml_commands(block):
        if command.startswith("pip install"):
            _check_pip_install(command)
            continue
        done = _run(command, tmp_path)
        assert done.returncode == 0, f"{block.where}: {command!r}:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("page", PROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_project_passes(page: Path, tmp_path: Path) -> None:
    """The page's test files that no command on the page runs, run here."""
    _write_project(page, tmp_path)
    files = " ".join(shlex.quote(name) for name in _untested(page))
    done = _run(f"{shlex.quote(sys.executable)} -m pytest -p no:cacheprovider -q {files}", tmp_path)
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"


def test_every_block_is_known() -> None:
    """Each block is an example (run or compiled), shown output, or a diagram."""
    assert EXAMPLE_BLOCKS
    for block in BLOCKS:
        if block.kind == "not-run":
            assert block.lang == "console" and block.reason, f"{block.where}: needs a reason"
