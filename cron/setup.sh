#!/bin/sh
# Prepare a host for digest's systemd units and crontab (both in cron/): the digest user,
# the folders the units and the crontab write to, and /etc/digest/digest.env (the
# EnvironmentFile of every unit, sourced by the crontab) with a new DIGEST_SECRET.
# Run as root, once per host; running it again changes nothing that exists (the secret in
# particular is never replaced: mailed links signed with it must keep working).
# Usage: sudo sh cron/setup.sh [--root DIR]
#   --root DIR  build the tree under DIR instead of / (an image, a test); no user is made.
set -eu

ROOT=/
while [ $# -gt 0 ]; do
    case "$1" in
        --root)
            [ $# -ge 2 ] || { echo "setup.sh: --root needs a folder" >&2; exit 2; }
            ROOT=$2
            shift 2
            ;;
        -h | --help)
            sed -n '2,9p' "$0"
            exit 0
            ;;
        *)
            echo "setup.sh: unknown option $1; the only option is --root DIR" >&2
            exit 2
            ;;
    esac
done
ROOT=${ROOT%/}
APP=$ROOT/srv/digest
ETC=$ROOT/etc/digest

if [ -z "$ROOT" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: run it as root (sudo sh cron/setup.sh), or with --root DIR" >&2
        exit 1
    fi
    if ! id digest > /dev/null 2>&1; then
        useradd --system --home-dir /srv/digest --shell /usr/sbin/nologin digest
        echo "made the system user digest"
    fi
fi

# .digest holds the state file, locks and previews; .digest/log the crontab's logs.
mkdir -p "$APP/.digest/log" "$ETC"
if [ ! -e "$ETC/digest.env" ]; then
    secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    (
        umask 077
        cat > "$ETC/digest.env" << END
# digest's environment: KEY=value lines (systemd EnvironmentFile, sourced by cron/crontab).
# Readable by root and the digest group only: it holds the signing secret.
DIGEST_CONFIG=/srv/digest/digest.yaml
DIGEST_SECRET=$secret
# PGPASSWORD=...            (state_url on PostgreSQL)
# DIGEST_METRICS_TOKEN=...  (a bearer token for /metrics of digest serve)
# DIGEST_SMTP_PASSWORD=...  (whatever backend.options name for SMTP login)
END
    )
    echo "wrote $ETC/digest.env with a new DIGEST_SECRET"
else
    echo "kept $ETC/digest.env (its DIGEST_SECRET is not replaced)"
fi
chmod 0640 "$ETC/digest.env"
chmod 0750 "$APP/.digest" "$APP/.digest/log"
if [ -z "$ROOT" ]; then
    chown root:digest "$ETC/digest.env"
    chown digest:digest "$APP/.digest" "$APP/.digest/log"
fi
echo "ready: install digest into /srv/digest/.venv, write /srv/digest/digest.yaml, then"
echo "  cp cron/*.service cron/*.timer /etc/systemd/system/ && systemctl daemon-reload"
echo "  or: crontab -u digest cron/crontab"
