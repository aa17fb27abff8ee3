"""What several test modules share, one subject per module. A test module imports from here
(or, for the fixtures, the CLI runner and the paths, from ``tests/conftest.py``) and never from
another test module (``tests/test_test_layout.py`` checks).

- ``cycles``: cycle_2554.toml as text and edits of it for the ``load`` tests (``TEXT``,
  ``GROUP_NE1``, ``BUENG_KAN``, ``without_organisation``, ``write``).
- ``documents``: document files made in memory (``pdf_bytes``, ``docx_bytes``, ``xlsx_bytes``,
  ``WORD_MAIN``) and bad ones (``ELF``, ``PASSWD``).
- ``history``: the hash chain recomputed as an auditor would (``recompute``, ``GENESIS``), a
  short year in two halves (``first_part``, ``year_goes_on``), ``fire_ok``, ``KPIS``, and the
  attacker's tools (``raw_sql``, ``rewrite_chain``).
- ``letters``: a sample reminder for mailers (``outgoing``, ``DUE``, ``SENT_AT``) and what a
  reader reads of a letter (``running_text``) with the patterns it must not hold
  (``DOUBLED_TH``, ``DOUBLED_EN``, ``INTERNAL_ID``).
- ``multiprocess``: several ``rubrong run`` processes on one clock (``shared_clock``), an SMTP
  server that records who sent what (``Sink``, ``Letter``), waits (``wait_any``,
  ``wait_until``) and the oracle (``check_mail``, ``check_timers``,
  ``assert_one_leader_at_a_time``, ``timers``, ``pending``, ``stamp``).
- ``pages_site``: the served site of the page tests (``Site``, ``serve_site``) and HTML
  queries (``table_rows``, ``one``, ``inside``, ``in_cell``, ``outbox_keys``).
- ``pages_world``: a year in progress for the page tests (``build``, ``SPRING``, ``AUTUMN``,
  ``session_id``) and an HTML parser (``parse``, ``find``, ``by_id``, ``Element``).
- ``postgres``: a private PostgreSQL server to stop and restart (``PrivatePostgres``) and its
  fixtures ``private_pg`` and ``pg`` (imported by name, ``# noqa: F401``, where used).
- ``served``: the web app under uvicorn in a thread (``serve``), a loaded database with users
  (``prepare``) and an API client (``Api``).
- ``service``: one ``rubrong run`` subprocess and its log (``Service``), an SMTP server that
  counts Message-IDs (``Sink``), the propose_kpis instants (``R14``, ``R7``, ``R1``,
  ``DEADLINE``, ``OVERDUE``, ``ESCALATION``, ``INSTANTS``, ``CATCH_UP``) and ``expected``,
  ``lateness``, ``ticked``.
- ``signin``: signing in through the dashboard's forms (``csrf_of``, ``password_signin``,
  ``ask_link``, ``link_in``, ``CSRF``).
- ``smtp``: in-process SMTP servers that keep what they receive (``MailSink``, ``text_of``;
  ``RecordingHandler``, ``Received``, ``smtp_server``, ``free_port``).
- ``store``: the store contract tests' cycle, concurrent-writer harness and outbox helpers
  (``together``, ``notice``, ``enqueue_all``, ``outbox``, ``claim_in``, ``set_rows``).
- ``validate``: a small valid cycle file and ``rubrong validate`` runs (``BASE``, ``edit``,
  ``line``, ``validate``, ``problems``, ``only_problem``).
- ``webforms``: a client signed in with an API token (``signed_in``), form CSRF tokens
  (``csrf_of``), a signed TH-50 (``signed_th50``), ``ROLES``, ``PDF``, ``CARD``.
- ``year``: a small simulated year (``SCENARIO``, ``write_inputs``).
"""
