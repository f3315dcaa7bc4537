"""The last detector: flufl.bounce (GNU Mailman's bounce detectors), for a notice that says
it is a bounce but that none of ours could read a recipient from."""

from __future__ import annotations

import logging
from email.message import Message

from flufl.bounce import all_failures

from digest.deliverability import mime

# flufl.bounce logs a crashing detector's traceback before re-raising it; the crash is
# caught below, and a traceback on the terminal would read as digest's own failure.
_LOG = logging.getLogger("flufl.bounce")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


def addresses(msg: Message) -> list[str]:
    """Failed addresses flufl.bounce finds (permanent first), lower case, in a stable order."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a third-party detector must not stop the import
        return []
    out: list[str] = []
    for found in (*sorted(permanent), *sorted(temporary)):
        text = found.decode("utf-8", "replace") if isinstance(found, bytes) else str(found)
        address = mime.clean_address(text)
        if address and address not in out:
            out.append(address)
    return out
