"""Packaging: a built wheel installs lifecyclekit and lifecyclekit.machines into a fresh venv."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import lifecyclekit
import lifecyclekit.machines

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_maps_machines_into_the_package() -> None:
    """In the development install, lifecyclekit.machines is the repository's machines/."""
    assert Path(lifecyclekit.machines.__file__).resolve().parent == ROOT / "machines"
    assert Path(lifecyclekit.__file__).resolve().parent == ROOT / "src" / "lifecyclekit"


@pytest.mark.slow
def test_wheel_installs_and_imports_machines(tmp_path: Path) -> None:
    """Build the wheel, install it alone into a new venv, import both packages from it."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("lifecyclekit-*.whl")
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    # Dependencies (pydantic, python-statemachine) come from this environment's
    # site-packages, added as a plain path: .pth files there (the editable install of the
    # checkout) are not processed, so lifecyclekit can only come from the wheel.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import json, lifecyclekit, lifecyclekit.machines, importlib.resources as r;"
        "print(json.dumps([lifecyclekit.__file__, lifecyclekit.machines.__file__,"
        " r.files('lifecyclekit').joinpath('py.typed').is_file()]))"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    package_file, machines_file, typed = json.loads(out)
    assert package_file.startswith(purelib)
    assert machines_file.startswith(str(Path(purelib) / "lifecyclekit" / "machines"))
    assert typed is True
