"""Rules and records: what the cycle means, with no SQL and no I/O.

Calendars and business days, clocks, times, KPI sets, scoring, roles and the permission table,
when notices fall (``notice_days``), the records the store maps rows into (``records``),
ranking, scenario lines, defaults and the error types with their exit codes. May import the
standard library, third-party libraries, ``states``, ``notifications`` and ``workflow.config``
(the cycle model), never ``workflow.store`` or ``workflow.usecases``.
"""
