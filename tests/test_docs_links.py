"""Every relative link in README.md and docs/ leads somewhere, and the README stays a front door.

A link's file must exist; a `#anchor` (on a link to a Markdown file, or on its own
for the same page) must match a heading there, by GitHub's slug rule. Links inside
code blocks and code spans are not links; links with a scheme (https:, mailto:) are
not checked.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 260

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str, blank_code_spans: bool = True) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with code spans blanked unless asked not to."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        lines.append((number, CODE_SPAN.sub("", line) if blank_code_spans else line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lowercased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(), blank_code_spans=False):
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)  # GitHub numbers repeated headings: name, name-1, name-2
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(path.read_text()):
        for match in INLINE_LINK.finditer(line):
            found.append((number, match.group(1)))
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            found.append((number, definition.group(1)))
    return [(number, target.strip("<>")) for number, target in found]


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if SCHEME.match(target):
            continue
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor and linked.is_file() and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            problems.append(f"{where}: no heading '#{anchor}' in {linked.name}")
    return problems


def test_every_relative_link_and_anchor_resolves():
    problems = [problem for path in markdown_files() for problem in broken_links(path)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_docs_are_found_and_have_links():
    files = markdown_files()
    assert len(files) > 5, files
    assert sum(len(links(path)) for path in files) > 20


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move depth into docs/"
    text = "\n".join(lines)
    assert "make demo" in text and "make test" in text, "the README lost its two set-up commands"


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## The `sink`: spool, v1 & v2\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Local part\n\n"
        "[ok](other.md) [ok](other.md#the-sink-spool-v1--v2) [ok](#local-part) [ok](https://example.org/x)\n"
        "`[not a link](missing.md)`\n\n```\n[not a link](missing.md)\n```\n"
        "[missing file](nowhere.md) [missing anchor](other.md#nope) [missing local](#elsewhere)\n"
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert "nowhere.md: no such file" in problems[0]
    assert "#nope" in problems[1] and "#elsewhere" in problems[2]


def test_slugs_follow_github():
    assert slug("The `choreo` command") == "the-choreo-command"
    assert slug("Performance, side by side with the broker limit and Node-RED") == (
        "performance-side-by-side-with-the-broker-limit-and-node-red")
    assert slug("0001: gmqtt as the MQTT client, with our own PUBLISH/PUBACK path") == (
        "0001-gmqtt-as-the-mqtt-client-with-our-own-publishpuback-path")
    assert slug("State and timers (a transactional outbox)") == "state-and-timers-a-transactional-outbox"
