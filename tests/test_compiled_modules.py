"""setup.py's list of compiled modules and the suite's (tests/conftest.py: COMPILED_MODULES) are one list.

CI fails at collection when a module of COMPILED_MODULES was not built; a module added to setup.py but
not to that tuple would never be checked, and one named there but dropped from setup.py would fail
every CI run with a message about a compiler. Read from setup.py's source, not imported: importing it
would run setuptools."""

from __future__ import annotations

import ast

from tests.conftest import COMPILED_MODULES
from tests.helpers import REPO


def _setup_py_compiled() -> tuple[str, ...]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["COMPILED"]:
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED tuple")


def test_every_module_setup_py_builds_is_checked_by_ci_and_has_its_source():
    built = _setup_py_compiled()
    assert tuple("corpusforge." + path.replace("/", ".") for path in built) == COMPILED_MODULES
    for path in built:
        assert (REPO / f"{path}.c").is_file(), f"setup.py builds {path}.c, which does not exist"
