"""What a user installs: the built wheel, in fresh virtual environments, used from outside the
checkout.

The wheel is built once and installed twice, without extras and with every extra, each with
its dependencies resolved by pip as a user's would be. From a directory that holds no part of
the checkout, each environment runs the README's examples as doctests, every script in
``examples/`` and the ``lifecyclekit`` command's verbs; without extras, the features that need
one print the one-line install hint and no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import lifecyclekit
import lifecyclekit.machines

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("postgres", "diagrams", "yaml", "dataflow")
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_editable_install_maps_machines_into_the_package() -> None:
    """In the development install, lifecyclekit.machines is the repository's machines/."""
    assert Path(lifecyclekit.machines.__file__).resolve().parent == ROOT / "machines"
    assert Path(lifecyclekit.__file__).resolve().parent == ROOT / "src" / "lifecyclekit"


def _source_packages() -> set[str]:
    """Every package of the source tree, as the installed path it must have in the wheel."""
    wanted = set()
    for root, prefix in (
        (ROOT / "src" / "lifecyclekit", "lifecyclekit"),
        (ROOT / "machines", "lifecyclekit/machines"),
    ):
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).as_posix()
            wanted.add(prefix if relative == "." else f"{prefix}/{relative}")
    return wanted


@dataclass(frozen=True)
class Installed:
    """A fresh virtual environment holding the wheel, and a directory outside the checkout."""

    python: Path
    bin: Path
    home: Path

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LIFECYCLEKIT_", "PYTHON", "VIRTUAL_ENV"))
        }
        environ["PATH"] = f"{self.bin}{os.pathsep}{environ.get('PATH', '')}"
        result = subprocess.run(
            list(args),
            cwd=self.home,
            env={**environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def lifecyclekit(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "lifecyclekit"), *args, check=check)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = dist.glob("lifecyclekit-*.whl")
    return built


def _install(tmp: Path, requirement: str) -> Installed:
    target = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
        check=True,
        capture_output=True,
    )
    home = tmp / "user"
    home.mkdir()
    return Installed(python=python, bin=target / "bin", home=home)


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return _install(tmp_path_factory.mktemp("bare"), str(wheel))


@pytest.fixture(scope="module")
def full(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return _install(tmp_path_factory.mktemp("full"), f"{wheel}[{','.join(EXTRAS)}]")


@pytest.mark.slow
def test_wheel_holds_every_package_the_types_marker_and_the_gallery(wheel: Path) -> None:
    """Each package of src/ and machines/ is in the wheel (the store once was not)."""
    names = zipfile.ZipFile(wheel).namelist()
    inside = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    assert _source_packages() - inside == set()
    assert {"lifecyclekit/store", "lifecyclekit/machines/workmanager"} <= inside
    assert "lifecyclekit/py.typed" in names
    assert "lifecyclekit/machines/README.md" in names


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bare", "full"])
def test_installed_package_imports_from_the_venv(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """lifecyclekit and every subpackage come from the venv, not from the checkout."""
    installed: Installed = request.getfixturevalue(kind)
    probe = (
        "import json, pkgutil, lifecyclekit, lifecyclekit.store, lifecyclekit.machines;"
        "mods = [m.name for m in pkgutil.walk_packages(lifecyclekit.__path__, 'lifecyclekit.')"
        " if m.ispkg];"
        "print(json.dumps([lifecyclekit.__file__, lifecyclekit.store.__file__, sorted(mods)]))"
    )
    out = installed.run(str(installed.python), "-I", "-c", probe).stdout
    package_file, store_file, packages = json.loads(out)
    venv_root = str(installed.python.parent.parent)
    assert package_file.startswith(venv_root)
    assert store_file.startswith(venv_root)
    assert {"lifecyclekit.machines.dataflow", "lifecyclekit.machines.workmanager"} <= set(packages)


@pytest.mark.slow
def test_readme_examples_pass_as_doctests(full: Installed) -> None:
    """Every example of the README works against the installed package."""
    shutil.copy(ROOT / "README.md", full.home / "README.md")
    result = full.run(str(full.python), "-I", "-m", "doctest", "README.md")
    assert result.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bare", "full"])
@pytest.mark.parametrize("script", EXAMPLES, ids=[s.name for s in EXAMPLES])
def test_examples_run_installed(kind: str, script: Path, request: pytest.FixtureRequest) -> None:
    """Every script of examples/ runs with the installed package, with or without extras."""
    installed: Installed = request.getfixturevalue(kind)
    copy = installed.home / "examples"
    if not copy.exists():
        shutil.copytree(ROOT / "examples", copy)
    result = installed.run(str(installed.python), "-I", str(copy / script.name))
    assert result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bare", "full"])
def test_command_verbs_run_installed(kind: str, request: pytest.FixtureRequest) -> None:
    """The console script's verbs, from outside the checkout."""
    installed: Installed = request.getfixturevalue(kind)
    cli = installed.lifecyclekit
    assert "dataflow-job" in cli("list").stdout
    assert "drain [is_streaming] -> draining" in cli("show", "dataflow-job").stdout
    assert "stateDiagram-v2" in cli("diagram", "one-time-work").stdout
    assert json.loads(cli("export", "periodic-work").stdout)["name"] == "periodic-work"
    assert cli("check", "chained-work").stdout == "chained-work: ok\n"
    assert cli("gallery", "--builtin").stdout.startswith("# Lifecycle gallery")
    store = ["--store", "sqlite:///jobs.db"]
    cli("new", "dataflow-job", "--id", "j1", "--set", "job_type=JOB_TYPE_STREAMING", *store)
    cli("send", "j1", "observe", "--data", '{"state": "JOB_STATE_RUNNING"}', *store)
    assert json.loads(cli("status", "j1", "--json", *store).stdout)["state"] == "running"
    assert [r["event"] for r in json.loads(cli("history", "j1", "--json", *store).stdout)] == [
        "discover"
    ]
    assert [s["id"] for s in json.loads(cli("ls", "--json", *store).stdout)] == ["j1"]
    assert cli("--version").stdout.startswith("lifecyclekit, version")


NEEDS_AN_EXTRA = [
    (("diagram", "one-time-work", "-f", "svg"), "lifecyclekit[diagrams]"),
    (("diagram", "one-time-work", "-f", "dot"), "lifecyclekit[diagrams]"),
    (("export", "periodic-work", "-f", "yaml"), "lifecyclekit[yaml]"),
    (("ls", "--store", "postgresql://nobody@127.0.0.1:1/none"), "lifecyclekit[postgres]"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "extra"), NEEDS_AN_EXTRA, ids=lambda v: str(v)[:40])
def test_missing_extra_is_one_line_with_the_install_hint(
    bare: Installed, args: tuple[str, ...], extra: str
) -> None:
    """Without the extra, the verb exits 1 with one line quoting the pip command."""
    result = bare.lifecyclekit(*args, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert f"pip install '{extra}'" in result.stderr


@pytest.mark.slow
def test_the_full_install_has_every_extra(full: Installed) -> None:
    """With every extra, SVG, DOT and YAML work (SVG where Graphviz is installed)."""
    assert full.lifecyclekit("diagram", "one-time-work", "-f", "dot").stdout.startswith("digraph")
    assert full.lifecyclekit("export", "periodic-work", "-f", "yaml").stdout.startswith("name:")
    for module in ("psycopg", "pydot", "yaml", "google.cloud.dataflow_v1beta3"):
        full.run(str(full.python), "-I", "-c", f"import {module}")
    if shutil.which("dot") or os.environ.get("CI"):
        svg = full.lifecyclekit("diagram", "one-time-work", "-f", "svg").stdout
        assert svg.lstrip().startswith("<?xml")
