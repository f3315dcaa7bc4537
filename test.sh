#!/usr/bin/env bash
# The one test command, on a fresh Debian machine where only Python is present:
# installs the Debian packages the tests drive when they are missing, creates the venv,
# installs digest with its test extras, and runs the whole suite (ruff and mypy included).
# Arguments go to pytest: ./test.sh tests/schedule -q
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests drive as real programs, and what for:
#   chromium       layout, dark mode and the editors' pages (Playwright drives /usr/bin/chromium)
#   spamassassin   the spam score of the default digest
#   openssl        test certificates (STARTTLS, TLS) and a DKIM key
#   systemd        `systemd-analyze verify` of the units in cron/
#   postfix        smtp-sink and smtp-source for load and fault tests
#   postgresql     the store's PostgreSQL tests (binaries in /usr/lib/postgresql/*/bin)
#   python3-venv   `python3 -m venv` (Debian ships it separately)
#   npm            installs axe-core for the emails' accessibility test
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v spamassassin >/dev/null 2>&1 || missing+=(spamassassin)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  # postfix asks where mail goes; "No configuration" is all smtp-sink needs.
  echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
# Three workers on two cores: many tests wait on servers and subprocesses.
exec .venv/bin/pytest -n 3 "$@"
