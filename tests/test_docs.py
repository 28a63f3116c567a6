"""The README stays a newcomer's page (issue 10: what it is, the two commands, screenshots,
connecting to Supabase, the CLI, links) and every link in it and in docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_under_about_150_lines_and_has_the_newcomers_sections():
    text = (ROOT / "README.md").read_text()

    assert len(text.splitlines()) <= 155
    for heading in ("## Quick start", "## Connecting to a real Supabase project", "## Command line at a glance"):
        assert heading in text
    assert "make run" in text and "make test" in text


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
