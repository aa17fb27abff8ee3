"""Defaults that several modules share: mail batches, the service's wake-ups, outbox leases.

Written once here and imported by the dispatcher, the service and the CLI options, so that the
``--help`` text, the library defaults and the tests cannot drift apart.
"""

from __future__ import annotations

# The database when neither --db nor RUBRONG_DB says otherwise (CONTRACT.md).
DEFAULT_URL = "sqlite:///rubrong.db"

# A batch is one SMTP session per connection: 1,000 rows keep set-up and the claim/record
# transactions under a few per cent of the time at ~2,000 mails/s (bench/mail.py: 200 cost
# ~8 %). ``tick`` and library callers dispatch in batches of this size.
BATCH = 1000
# ``rubrong run --batch``: several service processes share the letters of one instant, so each
# claims fewer at a time.
RUN_BATCH = 200

# ``rubrong run --poll``: wall seconds between checks for mail queued by other processes.
POLL_SECONDS = 60.0
# ``rubrong run --leader-retry``: wall seconds between a follower's tries to lead the timers.
LEADER_RETRY_SECONDS = 2.0

# Outbox leases (workflow.store.leases), wall-clock seconds. A claimed row is held for
# LEASE_SECONDS; while its dispatcher lives a heartbeat renews the lease every
# LEASE_RENEW_SECONDS, so a dispatcher that died (on any host) holds rows one lease at most.
LEASE_SECONDS = 30
LEASE_RENEW_SECONDS = 5.0
