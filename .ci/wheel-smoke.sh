#!/usr/bin/env bash
# The installed package, as a user gets it: build rubrong's wheel from this checkout, install it
# (not editable) into a fresh venv under a temporary directory, and run a smoke path from an
# empty directory: --version, validate, load, tick, simulate (the bundled cycle) and the web
# service (OpenAPI fetched, then SIGTERM and a clean exit). Needs Python 3.11+ and the package
# index (for the wheel's dependencies). `.ci/run` calls it; run it alone with
#   bash .ci/wheel-smoke.sh            (PYTHON=python3.12 bash .ci/wheel-smoke.sh for another)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/rubrong-wheel.XXXXXX")
server=""

cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "wheel-smoke: $*"; }
die() {
  echo "wheel-smoke: FAILED: $*" >&2
  exit 1
}

# 1. Build from a copy of the checkout: the checkout gets no build/ directory, and no stale
#    build output can slip into the wheel.
say "building the wheel"
mkdir "$work/src" "$work/dist"
tar -C "$repo" \
  --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./demo-out \
  --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache \
  --exclude=.pytest_cache --exclude=.hypothesis --exclude='rubrong.db*' --exclude=./mail \
  -cf - . | tar -C "$work/src" -xf -
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" wheel --quiet --no-deps -w "$work/dist" "$work/src"
wheels=("$work"/dist/rubrong-*.whl)
[ "${#wheels[@]}" = 1 ] && [ -f "${wheels[0]}" ] || die "expected one wheel in $work/dist"
say "installing $(basename "${wheels[0]}") into a fresh venv"
"$work/venv/bin/pip" install --quiet "${wheels[0]}"
rm -rf "$work/src" # nothing may come from the sources any more

rubrong="$work/venv/bin/rubrong"
py="$work/venv/bin/python"
mkdir "$work/run" "$work/sim"
cd "$work/run"

# 2. The version, and package data found inside the installed package.
expected=$("$PYTHON" -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")
version=$("$rubrong" --version)
[ "$version" = "rubrong $expected" ] || die "--version printed '$version', not 'rubrong $expected'"
say "$version"
"$py" - "$work/venv" <<'EOF'
import sys
from pathlib import Path

from notifications.render import TEMPLATES_DIR
from workflow.resources import bundled_cycle, template_dir

venv = Path(sys.argv[1]).resolve()
for path in (TEMPLATES_DIR / "mail" / "reminder.txt.j2", template_dir() / "web" / "base.html.j2",
             bundled_cycle()):
    assert path.is_file(), f"missing: {path}"
    assert venv in path.resolve().parents, f"{path} is not inside the installed package"
EOF

# 3. The administrator's path, on a SQLite file in the empty directory.
say "validate, load, tick"
"$rubrong" validate "$repo/cycle_2554.toml"
"$rubrong" load "$repo/cycle_2554.toml"
"$rubrong" tick --now 2010-09-01T09:00 --no-send
[ -f rubrong.db ] || die "no rubrong.db in the working directory"

# 4. simulate with no cycle loaded: the bundled FY2554 cycle, a throw-away database.
say "simulate (bundled cycle)"
(cd "$work/sim" && "$rubrong" simulate --no-send --json) >"$work/simulate.json"
"$py" - "$work/simulate.json" <<'EOF'
import json
import sys

result = json.load(open(sys.argv[1], encoding="utf-8"))
missing = {"events", "refused", "notifications", "wall_seconds"} - set(result)
assert not missing, f"simulate --json lacks {sorted(missing)}"
assert sum(result["notifications"].values()) > 0, "the bundled year enqueued no mail"
EOF

# 5. The service with the web API: OpenAPI answers, SIGTERM stops it cleanly.
port=$("$py" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
say "run --web 127.0.0.1:$port"
"$rubrong" run --web "127.0.0.1:$port" >"$work/run.log" 2>&1 &
server=$!
if ! "$py" - "$port" "$server" <<'EOF'; then
import json
import os
import sys
import time
import urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 90
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=5) as answer:
            spec = json.load(answer)
        break
    except OSError:
        os.kill(pid, 0)  # the service died: ProcessLookupError
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
assert "openapi" in spec and "/api/v1/agreements" in spec["paths"], sorted(spec)
EOF
  cat "$work/run.log" >&2
  die "/openapi.json did not answer"
fi
kill -TERM "$server"
for _ in $(seq 1 60); do kill -0 "$server" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$server" 2>/dev/null; then
  cat "$work/run.log" >&2
  die "run --web still running 30 s after SIGTERM"
fi
code=0
wait "$server" || code=$?
server=""
if [ "$code" != 0 ]; then
  cat "$work/run.log" >&2
  die "run --web exited $code after SIGTERM"
fi
say "ok"
