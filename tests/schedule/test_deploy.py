"""Deployment as written: the units in cron/ for serve, tick, worker and prune share one
EnvironmentFile that cron/setup.sh writes; the crontab sources it and logs into a folder the
setup makes. (systemd-analyze verify of every unit: test_scheduler.py.)"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

from conftest import ROOT

CRON = ROOT / "cron"
ENV_FILE = "/etc/digest/digest.env"


def _setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(CRON / "setup.sh"), *args], capture_output=True, text=True, check=False
    )


def _crontab_lines() -> list[str]:
    text = (CRON / "crontab").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_a_unit_for_each_long_running_command_and_a_timer_for_each_periodic_one() -> None:
    units = {p.name for p in CRON.iterdir() if p.suffix in (".service", ".timer")}
    for name in ("digest-serve.service", "digest-worker.service", "digest.service"):
        assert name in units
    for name in ("digest-tick", "digest-prune"):
        assert {f"{name}.service", f"{name}.timer"} <= units
        timer = (CRON / f"{name}.timer").read_text()
        assert f"Unit={name}.service" in timer
    for name in sorted(u for u in units if u.endswith(".service")):
        text = (CRON / name).read_text()
        assert f"EnvironmentFile={ENV_FILE}" in text, name
        command = re.search(r"^ExecStart=/srv/digest/\.venv/bin/digest (\w+)", text, re.M)
        assert command is not None, name


def test_setup_into_a_temporary_root_makes_the_folders_and_a_secret_kept_on_rerun(
    tmp_path: Path,
) -> None:
    first = _setup("--root", str(tmp_path))
    assert first.returncode == 0, first.stderr
    env = tmp_path / ENV_FILE.lstrip("/")
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    values = dict(
        line.split("=", 1) for line in env.read_text().splitlines() if not line.startswith("#")
    )
    assert values["DIGEST_CONFIG"] == "/srv/digest/digest.yaml"
    assert re.fullmatch(r"[0-9a-f]{64}", values["DIGEST_SECRET"])
    again = _setup("--root", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "kept" in again.stdout
    assert f"DIGEST_SECRET={values['DIGEST_SECRET']}" in env.read_text()
    # The same environment file reads the same through sh, as the crontab loads it.
    shell = subprocess.run(
        ["sh", "-c", f'set -a && . "{env}" && set +a && printf %s "$DIGEST_SECRET"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == values["DIGEST_SECRET"]


def test_the_crontab_sources_the_environment_and_logs_where_setup_made_a_folder(
    tmp_path: Path,
) -> None:
    assert _setup("--root", str(tmp_path)).returncode == 0
    for line in _crontab_lines():
        command = " ".join(line.split()[5:])
        assert command.startswith(f"cd /srv/digest && set -a && . {ENV_FILE} && set +a && ")
        log = re.search(r">> (\S+) 2>&1$", command)
        assert log is not None, line
        folder = (tmp_path / "srv/digest" / log.group(1)).parent
        assert folder.is_dir(), f"{line}: {folder} does not exist after setup.sh"


def test_setup_refuses_an_unknown_option_in_one_line() -> None:
    result = _setup("--prefix", "/tmp")
    assert result.returncode == 2
    assert result.stderr == "setup.sh: unknown option --prefix; the only option is --root DIR\n"
