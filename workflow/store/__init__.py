"""The store: every SQL statement rubrong runs, behind one boundary.

``database`` (``Database``: connections, transactions, pragmas), ``tables`` and ``migrate`` /
``migrations`` (the schema), ``repository`` (cycles and agreements), ``history`` (the hash
chain), ``outbox`` and ``leases`` (mail rows and claims), ``users``, ``tokens``, ``security``,
``documents`` (the content-addressed file store), ``views`` (rows as the CLI and the API print
them) and the bare-driver read path (``dbapi``, ``read_views``) that ``status`` uses without
SQLAlchemy. May import ``workflow.rules`` and ``workflow.config``, never ``workflow.usecases``.

This file imports nothing, so the bare-driver path stays light.
"""
