"""Mail on the engine's side: the outbox table's statements, leases, the dispatcher, letters.

``outbox`` enqueues exactly once; ``leases`` says which dispatcher holds a row; ``dispatch``
claims due rows, has ``letters`` turn each into a letter from the cycle's settings, sends it
through a ``notifications.mailers.Mailer`` and records the outcome. Everything a letter is
made of (wording, rendering, MIME, .ics, dates, transport) lives in ``notifications/``, which
gets plain records from here and imports no ``workflow`` module.
"""
