"""The wheel carries everything a user needs outside a source checkout: every package, the shipped mini
weights and the notebooks; installed alone, `restyle-lab notebooks` and `restyle-lab reproduce` work."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from restyle_lab.run.notebook_params import NOTEBOOKS

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "restyle_lab").rglob("__init__.py")}
    assert on_disk | {"restyle_lab.notebooks"} == listed


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(root / "dist")], check=True, capture_output=True, timeout=600, cwd=root)
    wheel = next((root / "dist").glob("restyle_lab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(root / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return root, wheel


def test_the_wheel_holds_notebooks_and_weights(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    notebooks = {p.name for p in (REPO / "notebooks").glob("*.ipynb")}
    assert {f"restyle_lab/notebooks/{n}" for n in notebooks} <= names
    assert {f"restyle_lab/assets/mini/{p.name}" for p in (REPO / "restyle_lab/assets/mini").iterdir()} <= names


def test_installed_alone_it_copies_and_runs_the_notebooks(installed):
    root, _ = installed
    away = root / "elsewhere"
    away.mkdir()
    env = dict(os.environ, PYTHONPATH=str(root / "site"), RESTYLE_LAB_DATA=str(root / "cache"))
    where = subprocess.run([sys.executable, "-c", "import restyle_lab; print(restyle_lab.__file__)"], env=env,
                           cwd=away, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(root / "site")), where.stdout + where.stderr
    copied = subprocess.run([sys.executable, "-m", "restyle_lab.cli", "notebooks", str(away / "nb")], env=env,
                            cwd=away, capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0 and f"copied {len(NOTEBOOKS)} notebooks" in copied.stdout, copied.stderr
    assert str(root / "site") in copied.stdout
    res = subprocess.run([sys.executable, "-m", "restyle_lab.cli", "reproduce", "--smoke", "--only", "latent_change",
                          "--out", str(away / "results")], env=env, cwd=away, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert (away / "results" / "mini" / "latent_change" / "latent_change_restyle_psp.csv").exists()
