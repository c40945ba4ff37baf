#!/usr/bin/env bash
# Try pytest-chaos as a new user would: a fresh virtualenv, `pip install` of this
# checkout, the README's quick-start test pasted into an empty folder, then
# `pytest -m chaos` and the same with `-n 2`. No Docker, no Toxiproxy needed.
# Usage: scripts/try-quickstart.sh [PYTHON]   (leaves nothing behind but its temp dir on failure)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d -t chaos-quickstart-XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "== fresh venv in $work/venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
echo "== pip install $repo[xdist]"
"$work/venv/bin/python" -m pip install --quiet "$repo[xdist]"

echo "== the README quick-start test, pasted into an empty folder"
mkdir "$work/project"
"$work/venv/bin/python" - "$repo/README.md" "$work/project/test_quickstart.py" <<'PY'
import re
import sys

readme = open(sys.argv[1], encoding="utf-8").read()
section = readme.split("<!-- section: quick start (plugin) -->", 1)[1].split("<!-- section:", 1)[0]
code = re.search(r"```python\n(.*?)```", section, re.S)
if code is None:
    sys.exit("no python block in the README's quick start section")
open(sys.argv[2], "w", encoding="utf-8").write(code.group(1))
PY
cd "$work/project"
echo "== pytest -m chaos"
"$work/venv/bin/python" -m pytest -m chaos -p no:cacheprovider
echo "== pytest -m chaos -n 2"
"$work/venv/bin/python" -m pytest -m chaos -n 2 -p no:cacheprovider
echo "== quick start OK"
