"""The package as users install it (CONTRACT.md, "Installed package").

The wheel is built from a copy of the checkout with the environment's setuptools (no build
isolation, no index: no network), so the checkout gets no ``build/`` directory. The tests check
that it holds every package of the code, the templates and the bundled cycle with the
repository's bytes, that the unpacked wheel finds its data inside itself, and that the real
console script prints the version written in ``pyproject.toml``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, RUBRONG

TOP_LEVEL = ("workflow", "states", "notifications")
# What a build reads: the code, the data the links in workflow/bundled/ point at, and every
# plain file at the top (pyproject.toml, README.md, cycle_2554.toml, and any setup.py,
# MANIFEST.in or licence file someone adds).
COPIED_FOLDERS = (*TOP_LEVEL, "templates")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this checkout (relative symbolic links kept as links)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for path in ROOT.iterdir():
        if path.is_file() and not path.name.startswith("rubrong.db"):
            shutil.copy2(path, source / path.name)
    for folder in COPIED_FOLDERS:
        shutil.copytree(
            ROOT / folder,
            source / folder,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "--quiet", "-w", str(base / "dist"), str(source)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"pip wheel failed (is '.[dev]' installed?):\n{proc.stderr}"
    built = sorted((base / "dist").glob("rubrong-*.whl"))
    assert len(built) == 1, built
    assert built[0].name.startswith(f"rubrong-{VERSION}-")
    return built[0]


def _names(wheel: Path) -> set[str]:
    """Every file name in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _packages() -> list[Path]:
    """Every directory of the code with an ``__init__.py`` (relative to the repository)."""
    found: list[Path] = []
    for top in TOP_LEVEL:
        found += [init.parent.relative_to(ROOT) for init in (ROOT / top).rglob("__init__.py")]
    return sorted(found)


def test_the_wheel_holds_every_package_and_module(wheel: Path) -> None:
    """cli, config, web and the migrations (scripts, env.py, script.py.mako) are all in."""
    names = _names(wheel)
    packages = {package.as_posix() for package in _packages()}
    for required in (
        "workflow/cli",
        "workflow/config",
        "workflow/web",
        "workflow/store/migrations",
    ):
        assert required in packages  # the repository scan itself still sees them
    assert "workflow/store/migrations/versions" in packages
    for package in _packages():
        for module in (ROOT / package).glob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, f"{module} is not in the wheel"
    for extra in ("workflow/store/migrations/env.py", "workflow/store/migrations/script.py.mako"):
        assert extra in names
    assert any(name.startswith("workflow/store/migrations/versions/0004_") for name in names)
    assert not any(name.split("/")[0] in {"tests", "bench", "scenarios"} for name in names)
    assert f"rubrong-{VERSION}.dist-info/entry_points.txt" in names


def test_the_wheel_holds_the_templates_and_the_bundled_cycle(wheel: Path) -> None:
    """Every mail and web template and ``cycle_2554.toml``, byte for byte as in the repository."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        templates = sorted(path for path in (ROOT / "templates").rglob("*") if path.is_file())
        kinds = {path.relative_to(ROOT / "templates").parts[0] for path in templates}
        assert kinds == {"mail", "web"}
        for path in templates:
            relative = path.relative_to(ROOT / "templates")
            # Web templates are workflow's data, mail templates notifications' (once each).
            home = (
                "workflow/bundled/templates"
                if relative.parts[0] == "web"
                else "notifications/bundled"
            )
            inside = f"{home}/{relative.as_posix()}"
            assert inside in names, f"{inside} is not in the wheel"
            assert archive.read(inside) == path.read_bytes()
        assert not any(name.startswith("workflow/bundled/templates/mail/") for name in names)
        cycle = archive.read("workflow/bundled/cycle_2554.toml")
        assert cycle == (ROOT / "cycle_2554.toml").read_bytes()


def test_the_unpacked_wheel_finds_its_data_inside_itself(wheel: Path, tmp_path: Path) -> None:
    """Imported from the unpacked wheel (not the checkout), every data path points inside it."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = """
import json
import workflow, workflow.store.migrate
from workflow.resources import bundled_cycle, template_dir
from notifications.render import TEMPLATES_DIR, environment
from workflow.web.dashboard import templates
environment().get_template("mail/reminder.txt.j2")
templates.get_template("base.html.j2")
print(json.dumps({"package": workflow.__file__, "templates": str(template_dir()),
                  "mail": str(TEMPLATES_DIR),
                  "cycle": str(bundled_cycle()), "migrations":
                  str(workflow.store.migrate.MIGRATIONS)}))
"""
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    paths = {key: Path(value).resolve() for key, value in json.loads(proc.stdout).items()}
    for key, path in paths.items():
        assert site.resolve() in path.parents, f"{key}: {path} is not inside the unpacked wheel"
    assert (paths["templates"] / "web" / "base.html.j2").is_file()
    assert (paths["mail"] / "mail" / "reminder.txt.j2").is_file()
    assert (paths["migrations"] / "versions").is_dir()

    validate = "from workflow.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", validate, "validate", str(paths["cycle"])],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "93 agreements" in proc.stdout + proc.stderr
    assert list(empty.iterdir()) == []  # validate writes nothing


def test_version_is_printed_by_the_console_script() -> None:
    """``rubrong --version`` (the real command) prints the version of ``pyproject.toml``."""
    proc = subprocess.run(
        [str(RUBRONG), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"rubrong {VERSION}\n"
    assert proc.stderr == ""
