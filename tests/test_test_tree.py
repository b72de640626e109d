"""The test tree's one import rule: a test module never imports another test module (what tests
share lives in tests/support/, so running or moving one test file never drags in another's tests)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_tests(path: Path) -> set[str]:
    """The ``test_*`` modules of this tree that `path` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(
            name for name in names if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
        )
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS)): sorted(found) for path in TESTS.rglob("*.py") if (found := imported_tests(path))
    }
    assert offenders == {}, "move what they share into tests/support/: " + repr(offenders)


def test_the_rule_catches_a_test_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text("from tests.alerts.test_alerts import rule\nimport tests.store.test_collection\n")
    assert imported_tests(module) == {"tests.alerts.test_alerts", "tests.store.test_collection"}
    module.write_text("from tests.support.alerts_world import rule\n")
    assert imported_tests(module) == set()
