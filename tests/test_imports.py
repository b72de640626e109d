"""Every module of the package imports first, in a fresh interpreter: an import cycle that only
works in one order (the tests' order, the CLI's) fails here for the order that breaks it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import cidash

CHECK = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "cidash" or m.startswith("cidash.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-1).strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first() -> None:
    names = [info.name for info in pkgutil.walk_packages(cidash.__path__, "cidash.")]
    assert len(names) > 50
    result = subprocess.run([sys.executable, "-c", CHECK, *names], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
