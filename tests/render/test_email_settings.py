"""`digest check` refuses every address and URL setting that would fail later, in one line."""

from __future__ import annotations

import io
import json

import PIL.Image
import pytest

from conftest import Project

BAD = [
    ("email:\n  unsubscribe_mailto: unsubscribe@news.example.org\n", "email.unsubscribe_mailto"),
    ("email:\n  unsubscribe_mailto: 'mailto:not an address'\n", "email.unsubscribe_mailto"),
    ("email:\n  archive_url: ftp://news.example.org/a\n", "email.archive_url"),
    ("email:\n  preferences_url: preferences\n", "email.preferences_url"),
    ("email:\n  signup_url: 'https://news.example.org/sign up'\n", "email.signup_url"),
    ("email:\n  layout: magazine\n", "email.layout"),
    ("email:\n  greeting: full_name\n", "email.greeting"),
    ("email:\n  logo: missing.png\n", "email.logo"),
    ("email:\n  logo_dark: logo.png\n", "email.logo_dark"),
    ("images:\n  mode: lazy\n", "images.mode"),
    ("images:\n  base_url: cdn.example.org\n", "images.base_url"),
    ("images:\n  max_pixels: 0\n", "images.max_pixels"),
    ("images:\n  colour: red\n", "unknown key 'colour'"),
]


@pytest.mark.parametrize(("extra", "key"), BAD, ids=[b[1] for b in BAD])
def test_bad_email_and_image_settings_fail_check_and_build(
    project: Project, extra: str, key: str
) -> None:
    (project.root / "logo.png").write_bytes(b"")
    project.write_config(extra=extra)
    for command in ("check", "build"):
        result = project.cli(command)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output  # one line, never a traceback
        assert lines[0].startswith("Error: ")
        assert "digest.yaml:" in lines[0]
        assert key in lines[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sender", "The Morning Brief"),
        ("reply_to", "desk at news"),
        ("base_url", "news.org"),
        ("privacy_url", "javascript:alert(1)"),
    ],
)
def test_bad_publication_addresses_fail_check(project: Project, field: str, value: str) -> None:
    text = project.config.read_text(encoding="utf-8")
    if field in ("reply_to", "privacy_url"):
        text = text.replace("  timezone:", f"  {field}: {value}\n  timezone:")
    else:
        start = text.index(f"  {field}: ")
        end = text.index("\n", start)
        text = text[:start] + f"  {field}: {value}" + text[end:]
    project.config.write_text(text, encoding="utf-8")
    result = project.cli("check")
    assert result.exit_code == 1
    assert f"publication.{field}" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_logo_file_that_is_no_image_is_one_line(project: Project) -> None:
    (project.root / "logo.png").write_bytes(b"<svg/>")
    project.write_config(extra="email:\n  logo: logo.png\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "logo.png: the logo cannot be used: not an image we accept" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_good_settings_pass_and_the_logo_is_stored(project: Project) -> None:
    for name, colour in (("logo.png", (10, 20, 90, 255)), ("logo-dark.png", (240, 240, 250, 255))):
        out = io.BytesIO()
        PIL.Image.new("RGBA", (600, 150), colour).save(out, "PNG")
        (project.root / name).write_bytes(out.getvalue())
    project.write_config(
        extra="email:\n  unsubscribe_mailto: mailto:unsubscribe@news.example.org?subject=stop\n"
        "  archive_url: https://news.example.org/archive/{date}\n"
        "  preferences_url: https://news.example.org/p\n  signup_url: https://news.example.org/s\n"
        "  logo: logo.png\n  logo_dark: logo-dark.png\n  layout: briefing\n"
        "  editor_note: Welcome to the briefing.\nimages:\n  base_url: https://cdn.example.org/i\n"
    )
    result = project.cli("check")
    assert result.exit_code == 0, result.output
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    preview = project.cli("preview", "1", "--out", str(project.root / "p"))
    assert preview.exit_code == 0, preview.output
    html = (project.root / "p" / "edition-1.html").read_text(encoding="utf-8")
    assert 'src="https://cdn.example.org/i/' in html
    assert "Welcome to the briefing." in html
    assert "https://news.example.org/archive/2026-11-24" in html
    assert json.loads(built.stdout)["id"] == 1
