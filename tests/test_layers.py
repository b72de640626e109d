"""The import direction of the tree (issue 17): data flows Gerrit -> gerrit -> parsing -> store ->
health -> collector/alerts -> live -> api -> service -> cli, and a lower step never imports a higher
one, not even inside a function or under TYPE_CHECKING. Read from the source (ast), so a new
back-arrow fails here whichever order the modules are imported in."""

from __future__ import annotations

import ast
from pathlib import Path

import cidash

SRC = Path(cidash.__file__).resolve().parent

# Lower may not import higher; packages of one rank are peers and may not import each other, except
# the cross-cutting ones (rank 0), which every package may import.
RANK = {
    "cidash": 0,
    "config": 0,
    "errors": 0,
    "metrics": 0,
    "serving": 0,
    "tasks": 0,
    "domain": 1,
    "gerrit": 2,
    "parsing": 3,
    "store": 4,
    "health": 5,
    "collector": 6,
    "alerts": 6,
    "live": 7,
    "api": 8,
    "service": 9,
    "cli": 10,
}
CROSS_CUTTING = {name for name, rank in RANK.items() if rank == 0}
# Beside the stack: what each may import (and the cross-cutting modules); only the composition root
# (service), the CLI and the real-Gerrit harness may import them.
SIDE = {
    "client": {"domain"},
    "sim": {"gerrit", "domain"},
    "realgerrit": {"sim", "gerrit", "service"},
}
SIDE_USERS = {"service", "cli", "realgerrit"}

# Back-arrows still in the tree, each with what removes it. Remove an entry with its back-arrow
# (the test fails while a listed one is gone, so the list stays true).
KNOWN_BACK_ARROWS: dict[tuple[str, str], str] = {}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cidash"


def module_name(path: Path) -> str:
    parts = ("cidash", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every cidash module `path` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "cidash":
                found.update(f"cidash.{alias.name}" for alias in node.names)
            elif node.module.startswith("cidash."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("cidash."))
    return found


def allowed(importer: str, imported: str) -> bool:
    here, there = package_of(importer), package_of(imported)
    if here == there or there in CROSS_CUTTING:
        return True
    if here in SIDE:
        return there in SIDE[here]
    if there in SIDE:
        return here in SIDE_USERS
    return RANK[there] < RANK[here]


def back_arrows() -> set[tuple[str, str]]:
    return {
        (importer, imported)
        for path in sorted(SRC.rglob("*.py"))
        for importer in [module_name(path)]
        for imported in imports_of(path)
        if not allowed(importer, imported)
    }


def test_every_package_has_a_layer() -> None:
    packages = {package_of(module_name(path)) for path in SRC.rglob("*.py")}
    assert packages - RANK.keys() - SIDE.keys() == set(), "place the new package in RANK or SIDE"


def test_no_lower_step_imports_a_higher_one() -> None:
    found = back_arrows()
    new = sorted(found - KNOWN_BACK_ARROWS.keys())
    assert new == [], "lower steps import higher ones: " + ", ".join(f"{a} -> {b}" for a, b in new)
    gone = sorted(KNOWN_BACK_ARROWS.keys() - found)
    assert gone == [], "fixed back-arrows still listed in KNOWN_BACK_ARROWS: " + ", ".join(
        f"{a} -> {b}" for a, b in gone
    )


def test_the_rules_catch_a_back_arrow() -> None:
    assert not allowed("cidash.store.writer", "cidash.api.app")
    assert not allowed("cidash.collector.ingest", "cidash.alerts.engine")  # peers
    assert not allowed("cidash.sim.world", "cidash.store")
    assert not allowed("cidash.domain.views", "cidash.client.http")
    assert allowed("cidash.api.app", "cidash.store")
    assert allowed("cidash.domain.text", "cidash.errors")
    assert allowed("cidash.cli", "cidash.sim.runner")
