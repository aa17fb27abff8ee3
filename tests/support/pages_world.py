"""A year in progress for the page tests: cycle_2554 loaded, agreements at every queue step,
ticked (without sending) so the outbox holds a few thousand letters, and signed-in sessions.

| agreement | what happened |
|---|---|
| TH-50 | proposed, agreed, signed (Nov 2010); nothing since: its KPI Template is missed |
| TH-51 | proposed a KPI off the approved list: waits for negotiation |
| TH-52 | proposed approved KPIs: waits for the committee to agree |
| north-upper-1 | proposed, agreed: waits for signing |
| TH-58 | signed, sent its KPI Template: waits for the KPI audit; a change request is open |
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import insert, select

from tests.conftest import kpi_set
from tests.support.served import prepare
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.tables import SessionRow, UserRow
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.tick import tick
from workflow.web.session import hash_id

ROLES = {
    "opdc": "admin",
    "board": "committee",
    "judge": "evaluator",
    "watch": "auditor",
    "chiang": "province:TH-50",
    "lamphun": "province:TH-51",
    "north": "group:north-upper-1",
}
SPRING = "2011-04-20T12:00"  # SAR 6 (due Sat 30 Apr 2011) is next; 7 business days left
AUTUMN = "2011-11-10T12:00"  # SAR 12 (due Mon 31 Oct 2011) is 8 business days late


def _story() -> list[tuple[str, str, str, str, Any]]:
    change = {"reason": "budget", "explanation": "งบประมาณไม่ได้รับการจัดสรร", **kpi_set()}
    return [
        ("2010-09-10T10:00", "TH-50", "propose_kpis", "province:TH-50", kpi_set()),
        ("2010-09-10T11:00", "TH-51", "propose_kpis", "province:TH-51", kpi_set(approved=False)),
        ("2010-09-10T12:00", "TH-52", "propose_kpis", "province:TH-52", kpi_set()),
        ("2010-09-10T13:00", "north-upper-1", "propose_kpis", "group:north-upper-1", kpi_set()),
        ("2010-09-10T14:00", "TH-58", "propose_kpis", "province:TH-58", kpi_set()),
        ("2010-09-20T10:00", "TH-50", "agree", "committee", None),
        ("2010-09-20T11:00", "north-upper-1", "agree", "committee", None),
        ("2010-09-20T12:00", "TH-58", "agree", "committee", None),
        ("2010-11-26T10:00", "TH-50", "sign", "admin", None),
        ("2010-11-26T11:00", "TH-58", "sign", "admin", None),
        ("2011-01-20T10:00", "TH-58", "submit_kpi_template", "province:TH-58", None),
        ("2011-03-01T10:00", "TH-58", "request_change", "province:TH-58", change),
    ]


def build(url: str, now: str) -> tuple[VirtualClock, dict[str, str]]:
    """Load, play the story, tick (no sending) to ``now``; the clock stands at ``now``."""
    clock = VirtualClock(parse_instant("2010-08-01"))
    tokens = prepare(url, clock, ROLES)
    db = Database(url)
    try:
        for when, agreement, event, role, data in _story():
            clock.set(parse_instant(when))
            fire(db, clock, FireRequest(agreement, event, role, data=data))
        clock.set(parse_instant(now))
        tick(db, clock, parse_instant(now))
    finally:
        db.dispose()
    return clock, tokens


def session_id(url: str, name: str) -> str:
    """A live dashboard session for user ``name`` (the ``rubrong_session`` cookie's value),
    made as :func:`workflow.web.session.start_session` makes one."""
    users = UserRow.__table__  # type: ignore[attr-defined]
    sessions = SessionRow.__table__  # type: ignore[attr-defined]
    db = Database(url)
    try:
        with db.write() as conn:
            query = select(users.c.id).where(users.c.name == name, users.c.revoked_at.is_(None))
            user_id = conn.execute(query).scalar_one()
            secret = secrets.token_urlsafe(32)
            now = int(time.time())
            conn.execute(
                insert(sessions).values(
                    id_hash=hash_id(secret),
                    user_id=user_id,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + 3600,
                    revoked_at=None,
                    user_agent="tests",
                )
            )
    finally:
        db.dispose()
    return secret


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    """An element of a parsed page: its tag, attributes and text (descendants' included)."""

    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The element's text with whitespace collapsed."""
        return " ".join("".join(self.parts).split())


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Element] = []
        self.open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.found.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.parts.append(data)


def parse(html: str) -> list[Element]:
    """Every element of ``html``, in document order."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.found


def find(elements: list[Element], tag: str | None = None, **attrs: str) -> list[Element]:
    """The elements with ``tag`` (any when None) whose attributes include ``attrs``
    (``data_step="x"`` means ``data-step="x"``; ``class_`` a class among the element's)."""
    out = []
    for element in elements:
        if tag is not None and element.tag != tag:
            continue
        ok = True
        for key, value in attrs.items():
            if key == "class_":
                ok = value in element.attrs.get("class", "").split()
            else:
                ok = element.attrs.get(key.replace("_", "-")) == value
            if not ok:
                break
        if ok:
            out.append(element)
    return out


def by_id(elements: list[Element], ident: str) -> Element | None:
    """The element with ``id=ident``, if any."""
    found = find(elements, id=ident)
    return found[0] if found else None
