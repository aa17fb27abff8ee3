"""Use cases: one module per thing rubrong does, each owning its transaction.

``fire`` (one event), ``tick`` (what happens when timer instants pass: reminders, deadlines
missed, overdue notices, escalations), ``dispatch`` + ``letters`` (sending the outbox),
``load`` + ``load_changes`` + ``load_effects`` (cycle files), ``simulate``, ``service`` +
``leader`` (the long-running service), ``evidence`` + ``checkpoint`` (audit proofs),
``report`` and ``score``, ``esar`` + ``esar_drafts`` (the e-SAR Card), ``ical_feeds``. May
import the store and the rules; only the interfaces (``workflow.cli``, ``workflow.web``) import
them.
"""
