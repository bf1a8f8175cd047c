"""The package's structure, checked: layers (import-linter contracts in pyproject.toml), no import
cycles, small modules and functions, one registry of model names."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "imgsearch_gui"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 120


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """import-linter on the contracts of pyproject.toml, in a fresh process (its own cache off)."""
    script = Path(sys.executable).with_name("lint-imports")
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run([*command, "--no-cache", "--config", str(cwd / "pyproject.toml")],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_the_layer_contracts_are_kept():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("base/types.py", "from imgsearch_gui.app import library", "Layers"),
    ("ml/functional.py", "import PySide6", "Qt only in ui/"),
    ("app/scan.py", "import torch", "torch and OpenVINO only in ml/"),
    ("__main__.py", "import PySide6.QtCore", "Qt only in ui/: the command line"),
    ("ui/main_window.py", "import watchdog.observers", "watchdog only in app/"),
    ("app/indexing.py", "import pillow_heif", "Photo decoders (pillow-heif, rawpy) only in base/"),
])
def test_the_contracts_catch_a_violation(tmp_path, module, line, contract):
    """The checker is not a rubber stamp: one forbidden import in a copy of the package breaks it."""
    copy = tmp_path / "imgsearch_gui"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.png", "*.jpg"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = copy / module
    target.write_text(target.read_text() + f"\n\ndef _injected():\n    {line}\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert f"{contract}" in done.stdout.split("Broken contracts")[-1]


def _package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_import_cycles_between_modules():
    graph = grimp.build_graph("imgsearch_gui")
    cycles = [chain for module in sorted(graph.modules)
              for imported in graph.find_modules_directly_imported_by(module)
              if (chain := graph.find_shortest_chain(imported, module)) is not None]
    assert cycles == []


def test_modules_are_small():
    long = {str(p.relative_to(ROOT)): n for p in _package_modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_functions_are_short():
    long = {}
    for path in _package_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert long == {}


def test_the_registry_and_the_model_code_name_the_same_choices():
    from imgsearch_gui.base import registry
    from imgsearch_gui.ml import backbones, functional

    assert set(backbones.REGISTRY) == set(registry.BACKBONES)
    assert set(functional.POOLINGS) == set(registry.POOLINGS)
    for name, spec in backbones.REGISTRY.items():
        info = registry.BACKBONES[name]
        assert (spec.channels, spec.mean, spec.std, spec.hidden) == (
            info.channels, info.mean, info.std, info.hidden)
    assert registry.DEFAULT_BACKBONE in registry.backbone_names()
    assert registry.DEFAULT_POOLING in registry.POOLINGS
    assert "tiny" not in registry.backbone_names()
