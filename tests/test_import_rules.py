"""The direction of the arrows between the packages (DESIGN.md, "Layout"), read from the code.

Every ``.py`` file of the packages below is parsed with ``ast``; every import is collected,
wherever it stands (module level, inside a function, under ``if TYPE_CHECKING``, in a
``try``), ``import x`` and ``from x import y`` alike, relative imports resolved against the
file's package, and ``importlib.import_module("literal")`` too. The rules are the data just
below; a new exception is a line there, in review, not a drift.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Where imports are read. The three code packages, plus what may not be imported by them.
SCANNED = ("states", "notifications", "workflow", "bench", "scenarios", "tests")

# states/: the declared machine as data. Besides itself, only these (and the standard library).
STATES_MAY_IMPORT = frozenset({"states", "transitions"})

# Top-level packages a package may never import, whatever it imports through.
NEVER = {
    "notifications": ("workflow", "states"),  # letters and transport: given plain records
    "states": ("workflow", "notifications"),  # (also implied by STATES_MAY_IMPORT)
    "workflow": (),
}

# The interfaces: nothing outside them imports them, but for these (importer, imported) pairs.
INTERFACES = ("workflow.cli", "workflow.web")
INTERFACE_EXCEPTIONS = frozenset(
    {
        ("workflow.cli", "workflow.web"),  # ``rubrong run --web`` serves the dashboard
    }
)

# The tests drive the interfaces as users do (the CLI runner, the web app).
INTERFACE_DRIVERS = frozenset({"tests"})

# Imported only from inside themselves, but for these (importer, imported) pairs.
PRIVATE = ("tests", "bench")
PRIVATE_EXCEPTIONS = frozenset({("tests", "bench.cyclegen")})  # generated cycles for tests too

# workflow/ in layers (docs/ARCHITECTURE.md): a module imports its own layer and the ones
# before it, never one after it. Rules (and the cycle model) < store < use cases < interfaces.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("workflow.rules", "workflow.config", "workflow.resources"),
    ("workflow.store",),
    ("workflow.usecases",),
    ("workflow.cli", "workflow.web"),
)
LAYER_NAMES = ("rules", "store", "use cases", "interfaces")

# The fast read path (``status``/``milestones`` on the bare driver, workflow/store/dbapi.py): these
# import the standard library, each other and the PostgreSQL driver only, so those commands
# never load SQLAlchemy or the schema (tests/test_cli_loading.py checks a real run too).
LIGHT = frozenset(
    {
        "workflow.store.dbapi",
        "workflow.store.read_views",
        "workflow.store.read_history",
        "workflow.store.chain",
        "workflow.rules.records",
        "workflow.rules.errors",
        "workflow.rules.timeutil",
    }
)
LIGHT_MAY_IMPORT = frozenset({"psycopg"})


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` (a module) imports ``target`` (a module name) at ``line``."""

    source: str
    path: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    """``workflow/usecases/dispatch.py`` → ``workflow.usecases.dispatch``; a package's
    ``__init__.py``
    → the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``source``, the module called ``module``.

    ``from x import y`` yields ``x.y`` (``y`` may be a submodule; a name inside ``x`` still
    starts with ``x``, which is all the rules look at). Relative imports are resolved.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def arrows() -> list[Arrow]:
    """Every import of every scanned file."""
    found: list[Arrow] = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            module = module_name(path)
            text = path.read_text(encoding="utf-8")
            is_package = path.name == "__init__.py"
            for line, target in imports_of(text, module, is_package):
                found.append(Arrow(module, path, line, target))
    return found


def within(module: str, package: str) -> bool:
    """``module`` is ``package`` or inside it."""
    return module == package or module.startswith(package + ".")


def broken_rules(found: list[Arrow]) -> list[str]:
    """Every arrow against the rules above, as ``file:line: a imports b (rule)``."""
    stdlib = sys.stdlib_module_names
    broken: list[str] = []
    for arrow in found:
        top, target_top = arrow.source.split(".")[0], arrow.target.split(".")[0]
        if top == "states" and target_top not in STATES_MAY_IMPORT | stdlib:
            broken.append(f"{arrow} (states imports only the standard library and transitions)")
        if target_top in NEVER.get(top, ()):
            broken.append(f"{arrow} ({top} never imports {target_top})")
        for interface in INTERFACES:
            if not within(arrow.target, interface) or within(arrow.source, interface):
                continue
            importer = next((i for i in INTERFACES if within(arrow.source, i)), arrow.source)
            if top not in INTERFACE_DRIVERS and (importer, interface) not in INTERFACE_EXCEPTIONS:
                broken.append(f"{arrow} ({interface} is imported only from inside itself)")
        if arrow.source in LIGHT and not (
            target_top in stdlib | LIGHT_MAY_IMPORT
            or any(within(arrow.target, light) for light in LIGHT)
        ):
            broken.append(f"{arrow} (the fast read path imports no database library)")
        for private in PRIVATE:
            excepted = any(
                top == importer and within(arrow.target, allowed)
                for importer, allowed in PRIVATE_EXCEPTIONS
            )
            if target_top == private and top != private and not excepted:
                broken.append(f"{arrow} ({private} is imported by nothing outside it)")
        low, high = layer_of(arrow.source), layer_of(arrow.target)
        if low is not None and high is not None and high > low:
            broken.append(
                f"{arrow} (workflow's layers point down: {LAYER_NAMES[low]} never imports "
                f"{LAYER_NAMES[high]})"
            )
    return broken


def layer_of(module: str) -> int | None:
    """The index in ``LAYERS`` of the layer ``module`` belongs to (None: not layered)."""
    for index, packages in enumerate(LAYERS):
        if any(within(module, package) for package in packages):
            return index
    return None


def test_every_arrow_points_the_allowed_way() -> None:
    """No import against DESIGN.md's layout, anywhere in the code, tests, bench or scenarios."""
    found = arrows()
    for top in ("states", "notifications", "workflow"):
        assert any(arrow.source.split(".")[0] == top for arrow in found), f"nothing read in {top}"
    broken = broken_rules(found)
    assert not broken, "imports against the layout (tests/test_import_rules.py):\n" + "\n".join(
        broken
    )


SAMPLE = """
import json
from . import sibling
from .. import rules
from ..store import database
import importlib

def late():
    from workflow.cli.app import main
    importlib.import_module("tests.conftest")

if TYPE_CHECKING:
    import notifications.render as render
"""


def test_the_reader_sees_every_kind_of_import() -> None:
    """Relative, function-local, guarded and by-name imports are all read and resolved."""
    seen = {target for _, target in imports_of(SAMPLE, "workflow.usecases.dispatch", False)}
    assert seen == {
        "json",
        "workflow.usecases.sibling",
        "workflow.rules",
        "workflow.store.database",
        "importlib",
        "workflow.cli.app.main",
        "tests.conftest",
        "notifications.render",
    }
    package = {target for _, target in imports_of("from . import x", "workflow.store", True)}
    assert package == {"workflow.store.x"}


@pytest.mark.parametrize(
    ("source", "target", "rule"),
    [
        ("states.machine", "workflow.rules.errors", "states imports only"),
        ("states.machine", "sqlalchemy", "states imports only"),
        ("notifications.render", "workflow.resources", "notifications never imports workflow"),
        ("workflow.usecases.fire", "workflow.cli.app", "workflow.cli is imported only"),
        ("workflow.web.api", "workflow.cli.app", "workflow.cli is imported only"),
        ("workflow.usecases.tick", "tests.conftest", "tests is imported by nothing"),
        ("scenarios.build_demo", "bench.sweep", "bench is imported by nothing"),
        ("workflow.store.read_views", "sqlalchemy", "the fast read path"),
        ("workflow.store.dbapi", "workflow.store.database", "the fast read path"),
        ("workflow.store.history", "workflow.usecases.fire", "store never imports use cases"),
        ("workflow.rules.kpis", "workflow.store.database", "rules never imports store"),
        ("workflow.config.model", "workflow.usecases.tick", "rules never imports use cases"),
        ("workflow.usecases.tick", "workflow.web.app", "use cases never imports interfaces"),
        ("bench.year", "tests.conftest", "tests is imported by nothing"),
        ("tests.test_year_mail", "bench.year", "bench is imported by nothing"),
    ],
)
def test_a_wrong_arrow_is_reported(source: str, target: str, rule: str) -> None:
    """Each rule fires on an arrow that breaks it."""
    arrow = Arrow(source, ROOT / "x.py", 1, target)
    assert any(rule in line for line in broken_rules([arrow]))


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("states.machine", "transitions"),
        ("states.machine", "dataclasses"),
        ("workflow.cli.run", "workflow.web.app"),
        ("workflow.web.api", "workflow.web.schemas"),
        ("workflow.usecases.fire", "notifications.render"),
        ("tests.test_tick", "tests.conftest"),
        ("tests.test_api", "workflow.web.app"),
        ("workflow.store.dbapi", "psycopg"),
        ("workflow.store.read_views", "workflow.rules.records.Agreement"),
        ("workflow.usecases.fire", "workflow.store.history"),
        ("workflow.store.repository", "workflow.config.validate"),
        ("workflow.rules.calendar", "workflow.config.model"),
        ("tests.test_generated_cycles", "bench.cyclegen"),
    ],
)
def test_an_allowed_arrow_passes(source: str, target: str) -> None:
    """The rules leave the allowed directions alone."""
    assert broken_rules([Arrow(source, ROOT / "x.py", 1, target)]) == []
