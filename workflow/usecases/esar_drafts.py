"""e-SAR Card drafts: a card saved any number of times before it is submitted.

One draft per agreement and round (``sar6``, ``esar9``, ``sar12``) in ``esar_drafts``, with the
KPI version it was made for (a draft made for an older version is shown with a warning) and,
optionally, a document already checked and stored (:mod:`workflow.store.documents`). Submitting
fires ``submit_sar6`` / ``submit_esar9`` / ``submit_sar12`` with the card as data (through
:func:`workflow.usecases.fire.fire`, never from here) and then marks the draft with the history seq.

The card is checked by the engine's own rules (:func:`workflow.usecases.esar.card_problems`); the
problems come back per field (``card[0].result`` → message, in English and Thai) so that the
web form and the API show them next to what was typed. A draft may leave a row's result empty.
Drafts are not public: who may read them is :mod:`workflow.rules.access` (``Resource.ESAR_DRAFTS``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from workflow.rules.errors import BadInput, NotAllowed
from workflow.rules.timeutil import format_instant
from workflow.store.history import HISTORY
from workflow.store.repository import Agreement
from workflow.store.tables import EsarDraftRow
from workflow.usecases.esar import card_problems

DRAFTS = EsarDraftRow.__table__  # type: ignore[attr-defined]
ROUND_EVENTS = {"sar6": "submit_sar6", "esar9": "submit_esar9", "sar12": "submit_sar12"}
_FIELD = re.compile(r"^(card(?:\[\d+\](?:\.[a-z]+)?)?): ?(.*)$", re.DOTALL)


class CardInvalid(BadInput):
    """A card with problems (exit 2, HTTP 422); ``errors`` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors.items()))
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        super().__init__(f"{first[0]}: {first[1]}{more}")
        self.errors = errors


@dataclass(frozen=True)
class Draft:
    """A saved card: its rows as given, the KPI version it was made for, its document."""

    agreement_pk: int
    round: str
    card: list[dict[str, Any]]
    kpi_version: int
    document: dict[str, Any] | None
    updated_at: int
    updated_by: str
    submitted_seq: int | None

    def as_json(self, agreement: Agreement) -> dict[str, Any]:
        """The draft as the API answers it (``stale``: made for an older KPI version)."""
        return {
            "agreement": agreement.org_id,
            "round": self.round,
            "event": ROUND_EVENTS[self.round],
            "card": self.card,
            "kpi_version": self.kpi_version,
            "current_kpi_version": agreement.kpi_version,
            "stale": self.kpi_version != agreement.kpi_version,
            "document": self.document,
            "updated_at": format_instant(self.updated_at),
            "updated_by": self.updated_by,
            "submitted_seq": self.submitted_seq,
        }


def check_round(round_id: str) -> str:
    """The submit event of a round; exit 2 for anything but ``sar6``, ``esar9``, ``sar12``."""
    event = ROUND_EVENTS.get(round_id)
    if event is None:
        raise BadInput(f"unknown round {round_id[:40]!r} (rounds: {', '.join(ROUND_EVENTS)})")
    return event


def kpi_ids(agreement: Agreement) -> list[str]:
    """The ids of the agreement's current KPI set, in order."""
    return [str(kpi["id"]) for kpi in agreement.kpis or ()]


def field_errors(card: object, ids: list[str], *, draft: bool) -> dict[str, str]:
    """The card's problems by field (``card``, ``card[i]``, ``card[i].result`` …); ``{}`` when
    good. The engine's own checks; a draft may leave out rows and a row's result."""
    errors: dict[str, str] = {}
    for problem in card_problems(card, ids):
        match = _FIELD.match(problem)
        field, message = (match.group(1), match.group(2)) if match else ("card", problem)
        if draft and _may_wait(card, field):
            continue
        errors.setdefault(field, message)
    return errors


def _may_wait(card: object, field: str) -> bool:
    """Whether a draft may leave this out for now: an empty card, or a row's missing result."""
    if field == "card":
        return isinstance(card, list) and not card
    match = re.fullmatch(r"card\[(\d+)\]\.result", field)
    if match is None or not isinstance(card, list):
        return False
    row = card[int(match.group(1))]
    return isinstance(row, dict) and row.get("result") is None


def load_draft(conn: Connection, agreement_pk: int, round_id: str) -> Draft | None:
    """The saved draft of one round, or None."""
    row = conn.execute(
        select(DRAFTS).where(DRAFTS.c.agreement_pk == agreement_pk, DRAFTS.c.round == round_id)
    ).first()
    return None if row is None else _draft(row)


def _draft(row: Any) -> Draft:
    document = None
    if row.document_sha256 is not None:
        document = {
            "sha256": row.document_sha256,
            "name": row.document_name,
            "size": row.document_size,
            "type": row.document_type,
        }
    return Draft(
        agreement_pk=row.agreement_pk,
        round=row.round,
        card=json.loads(row.card),
        kpi_version=row.kpi_version,
        document=document,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        submitted_seq=row.submitted_seq,
    )


def save_draft(
    conn: Connection,
    agreement: Agreement,
    round_id: str,
    card: list[dict[str, Any]],
    document: dict[str, Any] | None,
    by: str,
    at: int,
) -> Draft:
    """Check and store (replace) the round's draft, inside the caller's write transaction.

    Exit 2 (:class:`CardInvalid`) for a card with problems, exit 3 once the round's card was
    submitted; nothing is stored then. A
    ``document`` of ``None`` keeps the one already attached to the draft, if any.
    """
    check_round(round_id)
    errors = field_errors(card, kpi_ids(agreement), draft=True)
    if errors:
        raise CardInvalid(errors)
    old = load_draft(conn, agreement.pk, round_id)
    if old is not None and old.submitted_seq is not None:
        raise NotAllowed(
            f"the {round_id} card was already submitted (history entry #{old.submitted_seq}); "
            "it can no longer be changed (ส่งรายงานรอบนี้แล้ว)"
        )
    kept = document if document is not None else (old.document if old else None)
    values = {
        "card": json.dumps(card, ensure_ascii=False),
        "kpi_version": agreement.kpi_version,
        "document_sha256": kept["sha256"] if kept else None,
        "document_name": kept["name"] if kept else None,
        "document_size": kept["size"] if kept else None,
        "document_type": kept.get("type") if kept else None,
        "updated_at": at,
        "updated_by": by,
        "submitted_seq": None,
    }
    if old is None:
        conn.execute(insert(DRAFTS).values(agreement_pk=agreement.pk, round=round_id, **values))
    else:
        conn.execute(update(DRAFTS).where(_key(agreement.pk, round_id)).values(**values))
    return Draft(agreement.pk, round_id, card, agreement.kpi_version, kept, at, by, None)


def _key(agreement_pk: int, round_id: str) -> Any:
    return and_(DRAFTS.c.agreement_pk == agreement_pk, DRAFTS.c.round == round_id)


def mark_submitted(conn: Connection, agreement: Agreement, round_id: str, by: str) -> int | None:
    """Mark the round's draft as submitted with the seq of the submit's history entry (the
    draft is made from that entry when none was saved), so the form shows what was sent."""
    row = conn.execute(
        select(HISTORY.c.seq, HISTORY.c.data, HISTORY.c.at)
        .where(
            HISTORY.c.cycle_id == agreement.cycle_id,
            HISTORY.c.agreement == agreement.org_id,
            HISTORY.c.event == ROUND_EVENTS[round_id],
        )
        .order_by(HISTORY.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    seq = int(row.seq)
    if load_draft(conn, agreement.pk, round_id) is not None:
        conn.execute(update(DRAFTS).where(_key(agreement.pk, round_id)).values(submitted_seq=seq))
        return seq
    data = json.loads(row.data) if row.data else {}
    document = data.get("document") if isinstance(data.get("document"), dict) else None
    conn.execute(
        insert(DRAFTS).values(
            agreement_pk=agreement.pk,
            round=round_id,
            card=json.dumps(data.get("card") or [], ensure_ascii=False),
            kpi_version=agreement.kpi_version,
            document_sha256=document.get("sha256") if document else None,
            document_name=document.get("name") if document else None,
            document_size=document.get("size") if document else None,
            document_type=document.get("type") if document else None,
            updated_at=int(row.at),
            updated_by=by,
            submitted_seq=seq,
        )
    )
    return seq


def submitted_cards(conn: Connection, cycle_id: str, round_id: str) -> dict[str, dict[str, Any]]:
    """Agreement id → the data of its latest submit of the round (card, document), from the
    history (the public record)."""
    query = (
        select(HISTORY.c.agreement, HISTORY.c.data, HISTORY.c.seq)
        .where(
            HISTORY.c.cycle_id == cycle_id,
            HISTORY.c.kind == "event",
            HISTORY.c.event == ROUND_EVENTS[round_id],
        )
        .order_by(HISTORY.c.seq)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query):
        data = json.loads(row.data) if row.data else {}
        found[str(row.agreement)] = {**(data if isinstance(data, dict) else {}), "seq": row.seq}
    return found


def drafts_of(conn: Connection, agreement_pks: list[int], round_id: str) -> dict[int, Draft]:
    """The round's saved drafts of the given agreements, by agreement pk."""
    if not agreement_pks:
        return {}
    query = select(DRAFTS).where(
        DRAFTS.c.round == round_id, DRAFTS.c.agreement_pk.in_(agreement_pks)
    )
    return {row.agreement_pk: _draft(row) for row in conn.execute(query)}
