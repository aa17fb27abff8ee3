"""The page tests' served site and HTML helpers (:mod:`tests.test_pages`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Cli
from tests.support.pages_world import Element, build, by_id, find, parse, session_id
from tests.support.served import serve
from workflow.web import create_app


@dataclass
class Site:
    """A served app over a year in progress, the operator's view of its outbox, sessions."""

    url: str
    client: httpx.Client
    cli: Cli
    letters: list[dict[str, Any]]  # every outbox row, as ``rubrong outbox --json`` lists them
    sessions: dict[str, str]

    def get(self, path: str, who: str | None, **kw: Any) -> httpx.Response:
        """GET ``path`` in ``who``'s session (None: signed out)."""
        headers = {} if who is None else {"Cookie": f"rubrong_session={self.session(who)}"}
        self.client.cookies.clear()
        return self.client.get(path, headers=headers, **kw)

    def session(self, who: str) -> str:
        """``who``'s session id (made once)."""
        if who not in self.sessions:
            self.sessions[who] = session_id(self.url, who)
        return self.sessions[who]

    def page(self, path: str, who: str) -> list[Element]:
        """The parsed elements of an HTML page that must answer 200."""
        response = self.get(path, who)
        assert response.status_code == 200, (path, who, response.text[:500])
        assert response.headers["content-type"].startswith("text/html; charset=utf-8")
        return parse(response.text)


def serve_site(url: str, tmp: Path, now: str) -> Iterator[Site]:
    """Build the year at ``now`` in ``url`` and serve it (a generator for module fixtures)."""
    clock, _ = build(url, now)
    cli = Cli(url, tmp)
    letters = cli("outbox", "--json").json()
    with serve(create_app(url, clock)) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield Site(url, client, cli, letters, {})


def table_rows(elements: list[Element], table: str) -> list[Element]:
    """The body rows of the table with id ``table``."""
    found = [i for i, e in enumerate(elements) if e.attrs.get("id") == table]
    if not found:
        return []  # the page says the list is empty instead of drawing the table
    start = found[0]
    rows = []
    for element in elements[start + 1 :]:
        if element.tag == "table":
            break
        if element.tag == "tr" and ({"data-agreement", "data-key"} & set(element.attrs)):
            rows.append(element)
    return rows


def one(elements: list[Element], ident: str) -> Element:
    """The element with id ``ident``, which must be there."""
    found = by_id(elements, ident)
    assert found is not None, f"no #{ident}"
    return found


def outbox_keys(site: Site, who: str, query: str = "") -> list[str]:
    """Every key the outbox page lists to ``who``, following the "next" links to the end."""
    keys: list[str] = []
    path = f"/outbox?{query}"
    for _ in range(500):
        elements = site.page(path, who)
        rows = table_rows(elements, "outbox")
        assert len(rows) <= 50
        keys += [row.attrs["data-key"] for row in rows]
        following = find(elements, "a", rel="next")
        if not following:
            return keys
        path = following[0].attrs["href"]
    raise AssertionError("the outbox never reached its last page")


def inside(elements: list[Element], ident: str) -> list[Element]:
    """The elements inside the element with id ``ident`` (itself first)."""
    start = next(i for i, e in enumerate(elements) if e.attrs.get("id") == ident)
    tag = elements[start].tag
    out = [elements[start]]
    for element in elements[start + 1 :]:
        if element.tag == tag and element.attrs.get("id"):
            break
        out.append(element)
    return out


def in_cell(elements: list[Element], cell: Element) -> list[Element]:
    """The elements inside a table cell."""
    start = next(i for i, e in enumerate(elements) if e is cell)
    out = []
    for element in elements[start + 1 :]:
        if element.tag in ("td", "tr"):
            break
        out.append(element)
    return out
