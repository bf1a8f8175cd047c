"""The wheel: built offline from a clean copy of the sources, it carries the resources and runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from imgsearch_gui import __version__, resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "imgsearch_gui", src / "imgsearch_gui",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("imgsearch_gui-*.whl")
    return path


def test_wheel_carries_resources_and_entry_points(wheel):
    assert wheel.name.startswith(f"imgsearch_gui-{__version__}-py3-none-any")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = resources.root()
    shipped = {f"imgsearch_gui/resources/{p.relative_to(package).as_posix()}"
               for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= names, sorted(shipped - names)
    assert len([n for n in names if n.startswith("imgsearch_gui/resources/demo/")
                and n.endswith(".jpg")]) == len(resources.demo_photos())
    assert not [n for n in names if n.startswith(("tests/", "bench/", "packaging/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "imgsearch = imgsearch_gui.cli:main" in text
    assert "imgsearch-gui = imgsearch_gui.__main__:main" in text


def test_installed_wheel_runs_and_finds_its_resources(wheel, tmp_path):
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = ("import imgsearch_gui, imgsearch_gui.resources as r; "
             "print(imgsearch_gui.__file__); print(len(r.demo_photos())); "
             "print(r.icon_png(48).is_file(), r.desktop_file().is_file())")
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    location, count, files = done.stdout.splitlines()
    assert Path(location).is_relative_to(target)  # the installed copy, not the checkout
    assert int(count) == len(resources.demo_photos()) and files == "True True"
    done = subprocess.run([sys.executable, "-m", "imgsearch_gui", "--version"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"imgsearch {__version__}"
