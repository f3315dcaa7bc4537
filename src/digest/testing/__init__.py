"""Test doubles shipped with digest, for its own tests and for plug-in authors.

Real servers on loopback, not mocks: an aiosmtpd SMTP sink with scripted refusals
(``SMTPSink``), a fault-injecting SMTP server (``FaultServer``), a fixture HTTP server
(``FixtureServer``), a small IMAP server over TLS (``IMAPServer``), a strict parser for
delivered messages (``parse_clean``), and the contract every delivery backend must meet
(``digest.testing.contract``), like Django's locmem mail backend or httpx's MockTransport.
"""

from __future__ import annotations

from digest.testing.faults import FaultServer
from digest.testing.http import FixtureServer
from digest.testing.imap import IMAPServer
from digest.testing.mail import parse_clean
from digest.testing.smtp import ReceivedMessage, SMTPSink, free_port

__all__ = [
    "FaultServer",
    "FixtureServer",
    "IMAPServer",
    "ReceivedMessage",
    "SMTPSink",
    "free_port",
    "parse_clean",
]
