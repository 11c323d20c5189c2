"""What a checkout without ../shared or without the compiled word-cache module does: on a laptop the
tests that need them skip, saying why; with CI=true the run fails at collection, naming both.

Each case is pytest in a subprocess (marked slow): CORPUSFORGE_SHARED points at an empty folder, and a
plugin loaded with ``-p`` before the conftest hides the compiled modules (``sys.modules[name] = None``
makes both ``importlib.util.find_spec`` and the import itself answer "not here")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import COMPILED_MODULES
from tests.helpers import REPO

pytestmark = pytest.mark.slow

# one test that needs the dev corpus, one that needs the compiled module
TARGETS = [
    "tests/transforms/language/test_dev_bars.py",
    "tests/transforms/tokenize/test_word_cache.py::test_the_compiled_path_is_the_default_where_it_was_built",
]


def _pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    plugin = tmp_path / "hide_compiled.py"
    plugin.write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in COMPILED_MODULES))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CORPUSFORGE_SHARED"] = str(tmp_path / "no-shared")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    if ci is not None:
        env["CI"] = ci
    cmd = [sys.executable, "-m", "pytest", "-p", "hide_compiled", "-p", "no:cacheprovider", "-rs", "-q"]
    return subprocess.run([*cmd, *TARGETS], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_on_a_laptop_the_bars_skip_saying_what_is_missing(tmp_path):
    proc = _pytest(tmp_path, ci=None)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    # every case skipped (two dev-bar cases, the compiled-module test), none ran, each says why
    assert sum(int(line.split("[")[1].split("]")[0]) for line in skips) == 3, out
    assert any(str(tmp_path / "no-shared" / "data" / "dev") in line for line in skips), out
    assert any("was not compiled here" in line for line in skips), out


def test_in_ci_the_same_checkout_fails_at_collection_naming_both(tmp_path):
    proc = _pytest(tmp_path, ci="true")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    lines = [line for line in out.splitlines() if "CI=true but missing" in line]
    assert len(lines) == 1, out
    assert "docs.jsonl.gz" in lines[0] and all(m in lines[0] for m in COMPILED_MODULES), out
    assert "SKIPPED" not in out, out  # nothing was collected, let alone skipped
