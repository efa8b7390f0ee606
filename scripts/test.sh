#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Idempotent: what is already there is left alone. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v influxd >/dev/null 2>&1 || need_apt+=(influxdb)
# the server itself (the fault drills start and restart a PostgreSQL of their own)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || need_apt+=(postgresql)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)  # the TLS tests' own CA
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)  # promtool tests the alerts
# the console's browser tests drive Debian's Chromium (Playwright never downloads one)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PostgreSQL on 127.0.0.1:5432 accepting user postgres without a password (tests create and
# drop their own databases); started, and given a trust rule for 127.0.0.1, only if needed
pg_ok() { PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }
if ! pg_ok && ls /etc/postgresql >/dev/null 2>&1; then
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  grep -q "fleetcare-test" "$hba" || sed -i '1i host all postgres 127.0.0.1/32 trust # fleetcare-test' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
    || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
  for _ in $(seq 1 30); do pg_ok && break; sleep 0.5; done
fi

# the machine's Mosquitto on 1883 (tests that need their own start one on a free port)
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  mosquitto -d -c /etc/mosquitto/mosquitto.conf 2>/dev/null || mosquitto -d -p 1883 || true
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[dev]'

# with arguments: one plain pytest run of what they name
if [ $# -gt 0 ]; then exec .venv/bin/pytest "$@"; fi

# The whole suite in two phases (docs/testing.md). Most tests wait on brokers, stores and
# subprocesses, so they run on several workers at once (tests/conftest.py keeps those that
# share a costly fixture on one). Then the fault drills and the tests marked `serial`
# (timing-sensitive, or loading every core) run alone. The last line sums up both.
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
rc=0
.venv/bin/pytest -n "${FLEETCARE_TEST_WORKERS:-3}" -m "not serial and not drills" \
  --junitxml="$reports/parallel.xml" || rc=$?
.venv/bin/pytest -m "serial or drills" --junitxml="$reports/serial.xml" || rc=$?
.venv/bin/python - "$reports"/*.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for k in n:
            n[k] += int(suite.get(k, 0))
failed = n["failures"] + n["errors"]
passed = n["tests"] - failed - n["skipped"]
print(f"suite: {passed} passed, {failed} failed, {n['skipped']} skipped")
PY
exit "$rc"
