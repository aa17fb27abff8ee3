"""The raw ``sqlite3`` side of ``bench.year``: the same year's writes without the engine.

For every point in time of the year (``RawYear.moment``), in the same order as
``workflow.usecases.simulate``: each action as one transaction (read the agreement and the status
of the
milestone its event meets, the version-checked UPDATE of the agreement, the status UPDATE, the
agreement's pending notices skipped, a receipt INSERTed into the outbox for an organisation's
deliverable, the history entry hash-chained in Python exactly as CONTRACT.md defines it, a
``kpi_versions`` row for a KPI set), then each timer instant at that time as one transaction
(its ``timers_done`` row; ``close``: open windows closed; ``deadline``: pending → missed, the
reminders skipped, one chained entry per agreement in one ``executemany``; a notice: one set-based
``INSERT … SELECT`` into the outbox, or OPDC's digest row), then the cycle's ``last_tick``.

What needs our library (the stored KPI JSON, the results, the subjects, the tier) is prepared
once before timing (``Prepared``): text the raw side writes, not work it does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from notifications.keys import MESSAGE_ID_DOMAIN, message_id, outbox_key
from notifications.render import TEMPLATE_VERSION
from workflow.config.model import Cycle, Milestone
from workflow.rules.scenario import Action
from workflow.rules.timeutil import deadline_instant
from workflow.usecases.tick import Instant

GENESIS = "0" * 64
BANGKOK = dt.timezone(dt.timedelta(hours=7))

# The happy path of the agreement machine (states/machine.py): event → state after it.
NEXT_STATE = {
    "propose_kpis": "proposed",
    "agree": "agreed",
    "sign": "signed",
    "publish": None,  # stays where it is
    "submit_kpi_template": "template_submitted",
    "send_kpi_audit": "audited",
    "submit_sar6": "sar6_submitted",
    "submit_esar9": "esar9_submitted",
    "submit_sar12": "sar12_submitted",
    "evaluate": "evaluated",
    "approve_results": "results_approved",
    "allocate_incentive": "incentive_allocated",
}


@dataclass
class Prepared:
    """Text computed once with our library before timing (what the raw side writes)."""

    kpis: str  # the stored KPI set (normalised JSON)
    results: str  # the stored results of ``evaluate``
    tier: str | None  # what ``allocate_incentive`` records for these results
    receipt_subjects: dict[str, str] = field(default_factory=dict)  # milestone id → subject
    notice_subjects: dict[str, str] = field(default_factory=dict)  # instant key → subject


def _instant(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, BANGKOK).isoformat()


def _payload_hash(prev: str, entry: Mapping[str, Any]) -> str:
    payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()


_READ = (
    "SELECT a.pk, a.state, a.version, a.kpi_version, o.kind, o.email "
    "FROM agreements a JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
    "WHERE a.cycle_id = ? AND a.org_id = ?"
)
_STATUS = "SELECT status FROM milestone_status WHERE agreement_pk = ? AND milestone_id = ?"
_SET_STATUS = (
    "UPDATE milestone_status SET status = ?, met_at = ?, late_business_days = ? "
    "WHERE agreement_pk = ? AND milestone_id = ?"
)
_SKIP = (
    "UPDATE outbox SET status = 'skipped' WHERE cycle_id = ? AND milestone = ? "
    "AND status = 'pending' AND notice IN ('reminder', 'overdue', 'escalation') AND agreement = ?"
)
_OUTBOX_ONE = (
    "INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient, "
    "recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id, template, "
    "template_version, context, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO NOTHING"
)
_HISTORY = (
    "INSERT INTO history (seq, cycle_id, agreement, kind, event, from_state, to_state, actor, "
    "at, recorded_at, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TIP = "SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1"
_UNMET = (
    "s.cycle_id = ? AND s.milestone_id = ? AND o.active = 1 AND (s.status IN "
    "('pending', 'missed') OR (s.status IN ('met', 'late') AND s.met_at > ?))"
)
_NOTICES = (
    "INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient, "
    "recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id, template, "
    "template_version, context, created_at) "
    "SELECT ?1 || o.id || ?2, s.cycle_id, o.id, s.milestone_id, ?3, ?3, "
    "CASE WHEN ?4 = 1 THEN o.supervisor_email ELSE o.email END, "
    "CASE WHEN ?4 = 1 THEN 'supervisor' ELSE o.kind END, ?5, ?6, "
    "CASE WHEN s.status IN ('met', 'late') THEN 'skipped' ELSE 'pending' END, 0, ?6, "
    "'<' || REPLACE(?1 || o.id || ?2, '/', '.') || ?7, ?8, ?9, '{{}}', ?6 "
    "FROM milestone_status s JOIN agreements a ON a.pk = s.agreement_pk "
    "JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
    "WHERE s.cycle_id = ?10 AND s.milestone_id = ?11 AND o.active = 1 AND (s.status IN "
    "('pending', 'missed') OR (s.status IN ('met', 'late') AND s.met_at > ?6)) {receivers} "
    "ON CONFLICT (key) DO NOTHING"
)


class RawYear:
    """A raw connection (WAL, synchronous=NORMAL, as the store) to a copy of our loaded
    database, writing what the engine writes for each action and timer instant."""

    def __init__(self, path: str, cycle: Cycle, prepared: Prepared) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.cycle, self.prepared = cycle, prepared
        self.by_event = {m.event: m for m in cycle.milestones if m.event is not None}
        tip = self.conn.execute(_TIP).fetchone()
        self.seq, self.prev = (0, GENESIS) if tip is None else (int(tip[0]), str(tip[1]))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        yield self.conn
        self.conn.execute("COMMIT")

    def moment(self, at: int, actions: list[Action], due: list[Instant]) -> None:
        """One point of the timeline: its actions, then its timer instants, then last_tick."""
        for action in actions:
            self.fire(action)
        for instant in due:
            self.tick(instant)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE cycles SET last_tick = ? WHERE id = ? AND "
                "(last_tick IS NULL OR last_tick < ?)",
                (at, self.cycle.id, at),
            )

    # ------------------------------------------------------------------ one action

    def fire(self, action: Action) -> None:
        """One event on one agreement, in one transaction."""
        cycle_id, event, at, org = self.cycle.id, action.event, action.at, action.agreement
        with self._transaction() as conn:
            pk, state, version, kpi_version, kind, email = conn.execute(
                _READ, (cycle_id, org)
            ).fetchone()
            milestone = self.by_event.get(event)
            status = None
            if milestone is not None:
                found = conn.execute(_STATUS, (pk, milestone.id)).fetchone()
                status = None if found is None else found[0]
            new_state = NEXT_STATE[event] or state
            values: dict[str, Any] = {"state": new_state, "version": version + 1}
            values["last_event_at"] = at
            data: dict[str, Any] = dict(action.data or {})
            if event == "propose_kpis":
                values["kpis"], values["kpi_version"] = self.prepared.kpis, kpi_version + 1
            elif event == "publish":
                values["published"] = True
            elif event == "evaluate":
                values["results"] = self.prepared.results
            elif event == "allocate_incentive":
                values["tier"] = data["tier"] = self.prepared.tier
            sets = ", ".join(f"{column} = ?" for column in values)
            updated = conn.execute(
                f"UPDATE agreements SET {sets} WHERE pk = ? AND version = ?",
                (*values.values(), pk, version),
            )
            assert updated.rowcount == 1
            if milestone is not None and status in ("pending", "missed"):
                self._meet(conn, milestone, pk, org, kind, email, at)
            role = action.role if action.role != "own" else f"{kind}:{org}"
            seq = self._append(conn, org, "event", event, state, new_state, role, at, data)
            if event == "propose_kpis":
                conn.execute(
                    "INSERT INTO kpi_versions (agreement_pk, version, kpis, source_event, "
                    "history_seq) VALUES (?, ?, ?, ?, ?)",
                    (pk, kpi_version + 1, self.prepared.kpis, event, seq),
                )

    def _meet(
        self,
        conn: sqlite3.Connection,
        milestone: Milestone,
        pk: int,
        org: str,
        kind: str,
        email: str,
        at: int,
    ) -> None:
        late = milestone.due is not None and at >= deadline_instant(milestone.due)
        assert not late, "the bench's year is on time; late days are not computed here"
        conn.execute(_SET_STATUS, ("met", at, 0, pk, milestone.id))
        conn.execute(_SKIP, (self.cycle.id, milestone.id, org))
        if milestone.actor != "organisation":
            return
        due = milestone.due.isoformat() if milestone.due else None
        key = outbox_key(self.cycle.id, org, milestone.id, due, "receipt", 0)
        context = json.dumps({"event_at": at, "late_business_days": 0}, sort_keys=True)
        subject = self.prepared.receipt_subjects[milestone.id]
        conn.execute(
            _OUTBOX_ONE,
            (key, self.cycle.id, org, milestone.id, "receipt", None, email, kind, subject, at,
             at, message_id(key), "mail/receipt", TEMPLATE_VERSION, context, at),
        )  # fmt: skip

    def _append(
        self,
        conn: sqlite3.Connection,
        org: str | None,
        kind: str,
        event: str,
        from_state: str | None,
        to_state: str | None,
        actor: str,
        at: int,
        data: dict[str, Any],
    ) -> int:
        seq, prev = self.seq + 1, self.prev
        when = _instant(at)
        entry = {
            "seq": seq, "cycle": self.cycle.id, "agreement": org, "kind": kind, "event": event,
            "from": from_state, "to": to_state, "actor": actor, "at": when, "recorded_at": when,
            "data": data, "prev_hash": prev,
        }  # fmt: skip
        digest = _payload_hash(prev, entry)
        stored = json.dumps(data, sort_keys=True, ensure_ascii=False) if data else "{}"
        conn.execute(
            _HISTORY,
            (seq, self.cycle.id, org, kind, event, from_state, to_state, actor, at, at, stored,
             prev, digest),
        )  # fmt: skip
        self.seq, self.prev = seq, digest
        return seq

    # ------------------------------------------------------------------ one timer instant

    def tick(self, instant: Instant) -> None:
        """One timer instant, in one transaction with its ``timers_done`` row."""
        milestone, cycle_id = instant.milestone, self.cycle.id
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO timers_done (cycle_id, key, at, processed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (cycle_id, instant.key, instant.at, instant.at),
            )
            if instant.what == "close":
                conn.execute(
                    "UPDATE milestone_status SET status = 'closed' WHERE cycle_id = ? "
                    "AND milestone_id = ? AND status = 'open'",
                    (cycle_id, milestone.id),
                )
            elif instant.what == "deadline":
                self._deadline(conn, instant)
            elif milestone.actor == "organisation":
                self._notices(conn, instant)
            else:
                self._digest(conn, instant)

    def _deadline(self, conn: sqlite3.Connection, instant: Instant) -> None:
        milestone, cycle_id = instant.milestone, self.cycle.id
        assert milestone.due is not None
        rows = conn.execute(
            "SELECT a.org_id, a.state FROM milestone_status s JOIN agreements a "
            "ON a.pk = s.agreement_pk WHERE s.cycle_id = ? AND s.milestone_id = ? "
            "AND s.status = 'pending' ORDER BY a.org_id",
            (cycle_id, milestone.id),
        ).fetchall()
        conn.execute(
            "UPDATE milestone_status SET status = 'missed' WHERE cycle_id = ? "
            "AND milestone_id = ? AND status = 'pending'",
            (cycle_id, milestone.id),
        )
        conn.execute(
            "UPDATE outbox SET status = 'skipped' WHERE cycle_id = ? AND milestone = ? "
            "AND status = 'pending' AND notice IN ('reminder')",
            (cycle_id, milestone.id),
        )
        data = {"milestone": milestone.id, "due": milestone.due.isoformat()}
        stored, when = json.dumps(data, sort_keys=True, ensure_ascii=False), _instant(instant.at)
        seq, prev, entries = self.seq, self.prev, []
        for org, state in rows:
            seq += 1
            entry = {
                "seq": seq, "cycle": cycle_id, "agreement": org, "kind": "timer",
                "event": "missed", "from": state, "to": state, "actor": "system", "at": when,
                "recorded_at": when, "data": data, "prev_hash": prev,
            }  # fmt: skip
            digest = _payload_hash(prev, entry)
            entries.append(
                (seq, cycle_id, org, "timer", "missed", state, state, "system", instant.at,
                 instant.at, stored, prev, digest)
            )  # fmt: skip
            prev = digest
        conn.executemany(_HISTORY, entries)
        self.seq, self.prev = seq, prev

    def _notices(self, conn: sqlite3.Connection, instant: Instant) -> None:
        milestone = instant.milestone
        assert milestone.due is not None
        head, tail = outbox_key(
            self.cycle.id, "@", milestone.id, milestone.due.isoformat(), instant.what,
            instant.offset,
        ).split("@")  # fmt: skip
        receivers = ""
        orgs: tuple[str, ...] = ()
        if instant.only is not None:
            orgs = instant.only
            receivers = f"AND o.id IN ({', '.join('?' * len(orgs))})"
        elif instant.besides:
            orgs = instant.besides
            receivers = f"AND o.id NOT IN ({', '.join('?' * len(orgs))})"
        kind = instant.what
        conn.execute(
            _NOTICES.format(receivers=receivers.replace("?", "?12", 1) if orgs else ""),
            (head, tail, kind, 1 if kind == "escalation" else 0,
             self.prepared.notice_subjects[instant.key], instant.at, f"@{MESSAGE_ID_DOMAIN}>",
             f"mail/{kind}", TEMPLATE_VERSION, self.cycle.id, milestone.id, *orgs),
        )  # fmt: skip

    def _digest(self, conn: sqlite3.Connection, instant: Instant) -> None:
        milestone, cycle_id = instant.milestone, self.cycle.id
        assert milestone.due is not None
        rows = conn.execute(
            "SELECT o.id, o.name_th, o.kind, o.name_en FROM milestone_status s "
            "JOIN agreements a ON a.pk = s.agreement_pk "
            "JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
            f"WHERE {_UNMET} ORDER BY o.id",
            (cycle_id, milestone.id, instant.at),
        ).fetchall()
        if not rows:
            return
        escalation = instant.what == "escalation"
        context = {"pending": [list(row) for row in rows], "digest_of": instant.what}
        key = outbox_key(
            cycle_id, None, milestone.id, milestone.due.isoformat(), f"digest-{instant.what}",
            instant.offset,
        )  # fmt: skip
        recipient = self.cycle.opdc_supervisor_email if escalation else self.cycle.opdc_email
        conn.execute(
            _OUTBOX_ONE,
            (key, cycle_id, None, milestone.id, "digest", instant.what, recipient,
             "supervisor" if escalation else "opdc", self.prepared.notice_subjects[instant.key],
             instant.at, instant.at, message_id(key), "mail/digest", TEMPLATE_VERSION,
             json.dumps(context, ensure_ascii=False, sort_keys=True), instant.at),
        )  # fmt: skip

    def close(self) -> None:
        """Let go of the connection."""
        self.conn.close()
