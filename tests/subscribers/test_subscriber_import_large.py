"""`digest subscribers import` of a million CSV rows: streamed in chunks, in one transaction,
under 200 MB of memory, with exact counts (and the opted-out address left alone)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import NOW, SECRET, Project

ROWS = 1_000_000
LIMIT_MB = 200
# The child reports its own peak: VmHWM belongs to the address space exec made, whereas
# ru_maxrss would also count the pages it shared with this (large) test process before exec.
RUN_AND_REPORT_PEAK = """\
import sys
from digest.cli import main
try:
    main(sys.argv[2:])
finally:
    with open("/proc/self/status") as status, open(sys.argv[1], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
"""


@pytest.mark.slow
def test_a_million_rows_import_in_under_200_mb_with_counts(project: Project) -> None:
    project.write_config(extra="subscribers_sync: add\n")
    assert project.cli("subscribers", "add", "reader0000007@example.org").exit_code == 0
    assert project.cli("subscribers", "remove", "reader0000007@example.org").exit_code == 0
    assert project.cli("subscribers", "add", "reader0000008@example.org").exit_code == 0
    path = project.root / "million.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,timezone,topics\n")
        for i in range(ROWS):
            out.write(f"reader{i:07d}@example.org,Reader {i},Europe/Berlin,World;Technology\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=NOW, DIGEST_CONFIG=str(project.config))
    peak = project.root / "peak.kb"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_AND_REPORT_PEAK,
            str(peak),
            "subscribers",
            "import",
            str(path),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = child.stdout
    assert child.returncode == 0, child.stdout + child.stderr
    peak_mb = int(peak.read_text()) / 1024
    assert peak_mb < LIMIT_MB, f"peak resident memory {peak_mb:.0f} MB"
    counts = json.loads(output.splitlines()[0])
    assert (counts["read"], counts["added"], counts["updated"], counts["blocked"]) == (
        ROWS,
        ROWS - 2,
        1,
        1,
    )
    with sqlite3.connect(project.state) as db:
        by_state = dict(db.execute("SELECT state, count(*) FROM subscribers GROUP BY state"))
        consents = db.execute("SELECT count(*) FROM consents").fetchone()[0]
    assert by_state == {"active": ROWS - 1, "unsubscribed": 1}
    assert consents == ROWS - 2 + 3  # one per imported reader, three from the editor's commands
