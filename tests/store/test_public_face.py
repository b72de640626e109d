"""The store's public face: code outside ``cidash.store`` imports what ``cidash.store`` exports
(its ``__all__``), never one of its modules, so the store's modules can move without its users
noticing."""

from __future__ import annotations

import ast
from pathlib import Path

import cidash
import cidash.store

SRC = Path(cidash.__file__).parent
STORE = SRC / "store"


def _store_imports(path: Path) -> list[str]:
    """Each import of the store in `path`, as ``line: what``, that bypasses its public face."""
    bypasses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("cidash.store."):
                bypasses.append(f"{node.lineno}: from {node.module} import ...")
            elif node.module == "cidash.store":
                hidden = [alias.name for alias in node.names if alias.name not in cidash.store.__all__]
                bypasses += [f"{node.lineno}: {name} is not in cidash.store.__all__" for name in hidden]
        elif isinstance(node, ast.Import):
            bypasses += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.startswith("cidash.store.")]
    return bypasses


def test_code_outside_the_store_imports_only_its_public_face() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if path.is_relative_to(STORE):
            continue
        if bypasses := _store_imports(path):
            found[relative] = bypasses
    assert found == {}


def test_every_exported_name_exists() -> None:
    missing = [name for name in cidash.store.__all__ if not hasattr(cidash.store, name)]
    assert missing == []
    assert "Store" in cidash.store.__all__


def test_the_checker_sees_a_bypass(tmp_path: Path) -> None:
    module = tmp_path / "bypass.py"
    module.write_text(
        "from cidash.store.facade import Store\nfrom cidash.store import bulk_io\nimport cidash.store.engine\n"
    )
    assert _store_imports(module) == [
        "1: from cidash.store.facade import ...",
        "2: bulk_io is not in cidash.store.__all__",
        "3: import cidash.store.engine",
    ]
