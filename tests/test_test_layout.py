"""The tests are shaped like the code: a test module imports no other test module.

What several test modules share lives in ``tests/support/`` (see its ``__init__``) or, for
fixtures and the CLI runner, in ``tests/conftest.py``. Every ``.py`` file under ``tests/`` is
parsed with ``ast`` and every import read: ``import tests.test_x``, ``from tests.test_x import
y``, ``from tests import test_x``, the relative forms, and ``importlib.import_module`` or
``__import__`` with a literal name. Code a test runs in a child process (``python -c "from
tests.test_x import …"``) is a string, not an import, and is not read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def module_of(path: Path) -> str:
    """The dotted module name of a file under ``tests/`` (``tests.support.smtp``)."""
    parts = path.relative_to(TESTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module name) for every import in ``source`` (the text of ``module``); for
    ``from x import y`` both ``x`` and ``x.y`` (``y`` may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            yield node.lineno, origin
            for alias in node.names:
                yield node.lineno, f"{origin}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def is_test_module(name: str) -> bool:
    """``tests.test_x`` (or anything inside it)."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[0] == "tests" and parts[1].startswith("test_")


def crossings(source: str, module: str, is_package: bool = False) -> list[str]:
    """``line: module`` for each test module ``source`` imports, but for itself."""
    own = module.split(".")[:2]
    return sorted(
        {
            f"{line}: {'.'.join(name.split('.')[:2])}"
            for line, name in imported(source, module, is_package)
            if is_test_module(name) and name.split(".")[:2] != own
        }
    )


def python_files() -> list[Path]:
    """Every module under ``tests/``."""
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_under_tests_imports_a_test_module() -> None:
    """Test modules, ``tests/support/`` and ``conftest.py`` import no ``tests.test_*``."""
    files = python_files()
    assert TESTS / "support" / "__init__.py" in files
    assert len([p for p in files if p.name.startswith("test_")]) > 50  # the scan reads them
    found = [
        f"{path.relative_to(TESTS.parent)}:{crossing}"
        for path in files
        for crossing in crossings(
            path.read_text(encoding="utf-8"), module_of(path), path.name == "__init__.py"
        )
    ]
    assert not found, (
        "a module imports a test module; move what it shares to tests/support/:\n"
        + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from tests.test_mailers import free_port",
        "import tests.test_mailers",
        "import tests.test_mailers as m",
        "from tests import test_mailers",
        "from . import test_mailers",
        "from .test_mailers import free_port",
        "def f():\n    from tests.test_mailers import free_port",
        "try:\n    import tests.test_mailers\nexcept ImportError:\n    pass",
        "import importlib\nimportlib.import_module('tests.test_mailers')",
        "__import__('tests.test_mailers')",
    ],
)
def test_every_form_of_a_crossing_is_seen(source: str) -> None:
    """The reader finds an import of another test module however it is written."""
    assert crossings(source, "tests.test_outage") != []


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from tests.support.smtp import free_port", "tests.test_outage"),
        ("from tests.conftest import Cli", "tests.test_outage"),
        ("from tests import conftest", "tests.test_outage"),
        ("from . import smtp", "tests.support.letters"),
        ("x = 'from tests.test_mailers import free_port'", "tests.test_outage"),
        ("from tests.test_outage import load", "tests.test_outage"),  # itself, in a child
    ],
)
def test_what_is_allowed_passes(source: str, module: str) -> None:
    """Support modules, conftest, strings and a module's own name are not crossings."""
    assert crossings(source, module) == []


def test_module_names() -> None:
    """Files map to the names they are imported by."""
    assert module_of(TESTS / "test_outage.py") == "tests.test_outage"
    assert module_of(TESTS / "support" / "smtp.py") == "tests.support.smtp"
    assert module_of(TESTS / "support" / "__init__.py") == "tests.support"
