"""Where the files rubrong ships beside its code are: the Jinja2 templates and the FY2554 cycle.

In the repository they live at the top level (``templates/``, ``cycle_2554.toml``);
``workflow/bundled/`` holds two relative symbolic links to them. setuptools copies what the
links point at into the wheel as package data of ``workflow`` (``pyproject.toml``), so the same
``workflow/bundled/…`` paths hold in a checkout, an editable install and an installed wheel,
and this module is the one place that knows them. It imports only the standard library.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

BUNDLED = "bundled"
"""The data directory inside the ``workflow`` package."""


def _bundled(*parts: str) -> Path:
    """A path under ``workflow/bundled`` on the file system (Jinja2 and TOML need real files)."""
    resource = files("workflow").joinpath(BUNDLED, *parts)
    if not isinstance(resource, Path):  # e.g. imported from a zip file
        raise RuntimeError(f"rubrong's package data is not on the file system: {resource}")
    return resource


def template_dir() -> Path:
    """The Jinja2 templates directory of the dashboard (``web/``). The mail templates are
    ``notifications``' own data (``notifications.render.TEMPLATES_DIR``), shipped once."""
    return _bundled("templates")


def bundled_cycle() -> Path:
    """The bundled FY2554 cycle file, ``simulate``'s default CONFIG when no cycle is loaded."""
    return _bundled("cycle_2554.toml")
