"""The example shop lives in example_suite/ at the repository root, outside the installed
package: make it importable however pytest was started (``pytest`` script, other cwd)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
