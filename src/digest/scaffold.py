"""The files `digest init` writes: a commented digest.yaml, subscribers.yaml, .env.example."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

SECRET_COMMAND = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Newsroom:
    """What `digest init` was told; everything else gets a commented default."""

    name: str
    sender: str
    base_url: str
    timezone: str
    feeds: Sequence[str]
    editors: Sequence[tuple[str, str]]  # (name, address)


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def is_local(url: str) -> bool:
    """A loopback or private address given on purpose (e.g. a feed server on this machine)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def source_name(url: str, taken: set[str]) -> str:
    parts = urlsplit(url)
    stem = re.sub(r"\.(rss|atom|xml|json)$", "", parts.path.rstrip("/").rpartition("/")[2])
    base = (stem or parts.hostname or "source").replace("-", " ").replace("_", " ").strip()
    name = base[:1].upper() + base[1:]
    number = 2
    while name in taken:
        name = f"{base} {number}"
        number += 1
    taken.add(name)
    return name


def config_text(room: Newsroom) -> str:
    feeds = room.feeds or ["https://example.org/feed.xml"]
    taken: set[str] = set()
    sources = []
    for url in feeds:
        lines = [f"  - name: {_q(source_name(url, taken))}", f"    url: {_q(url)}"]
        if is_local(url):
            lines.append("    allow_private: true    # a local address, given to `digest init`")
        sources.append("\n".join(lines))
    editors = "\n".join(
        f"    - name: {_q(name)}\n      email: {_q(address)}" for name, address in room.editors
    )
    editor_block = (
        f"  editors:\n{editors}"
        if room.editors
        else "  editors: []              # - {name: Rosa Diaz, email: rosa@your-domain}"
    )
    placeholder = (
        "" if room.feeds else "  # Replace with your feeds (RSS, Atom, JSON Feed, pages).\n"
    )
    return f"""\
# digest.yaml, written by `digest init`. Every key is documented in the README's
# configuration table; `digest check` validates all of it and sends nothing.
# Relative paths are relative to this file. ${{NAME:-default}} reads the environment.

publication:
  name: {_q(room.name)}
  sender: {_q(room.sender)}
  base_url: {_q(room.base_url)}    # where `digest serve` is reachable over https
  postal_address: ""              # bulk-sender rules want one in the footer
  timezone: {room.timezone}

subscribers: subscribers.yaml

sources:
{placeholder}{chr(10).join(sources)}

ranking:
  max_stories: 12

backend:
  name: outbox                    # writes each message to .digest/outbox; nothing leaves
  options:
    path: .digest/outbox
  # To send for real:
  # name: smtp
  # options: {{host: smtp.your-domain, port: 587, security: starttls,
  #           username_env: SMTP_USERNAME, password_env: SMTP_PASSWORD}}

schedule:
  time: "07:00"                   # quote it: YAML reads 07:00 unquoted as a number
  timezone: {room.timezone}
  lead_minutes: 60                # build and mail proofs this long before sending

approval:
  auto_approve: false             # an editor approves every edition
{editor_block}
  deadline_minutes: 30            # approve this long before the send time ...
  at_deadline: skip               # ... or it is not sent (send: approve automatically)

notices:                          # mailed to the editors through the backend
  events: [expired, sent, stopped, source_failing]

state_path: .digest/digest.db     # this newsroom's own state file
preview_dir: .digest/preview
secret_env: DIGEST_SECRET         # the signing key is read from this variable
"""


SUBSCRIBERS_TEXT = """\
# subscribers.yaml: one entry per reader. Only email is required; timezone and topics
# (section names) are optional. For large lists use a CSV file (see the README).
#   - {email: anna@example.org, name: Anna Schmidt, timezone: Europe/Berlin, topics: [World]}
subscribers:
"""


ENV_TEXT = f"""\
# Secrets for digest: copy to .env (chmod 600), fill in, and load it before digest runs,
# e.g. `set -a; . ./.env; set +a`, or as a systemd EnvironmentFile. Never commit .env.
# Keep the single quotes: a password hash contains $ signs that a shell would expand.

# Signs unsubscribe, proof and session links; at least 16 characters. Make one with:
#   {SECRET_COMMAND}
DIGEST_SECRET=''

# Editors sign in to `digest serve` by a link mailed to their address. A password is
# optional, per editor: set approval.editors[].password_hash_env to a variable name and put
# the output of `digest hash-password` in it, e.g.
# DIGEST_PASSWORD_ROSA=''

# With the smtp backend (backend.options.username_env / password_env):
# SMTP_USERNAME=''
# SMTP_PASSWORD=''
"""
