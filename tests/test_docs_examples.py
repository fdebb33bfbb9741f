"""The files docs/join.md shows are the files in examples/ that tests/integration/test_join.py runs.

A block marked `<!-- file: PATH -->` must be exactly that file, so the tutorial cannot drift
from what is executed."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKED_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", re.DOTALL)


def marked_blocks(page: Path) -> dict[str, str]:
    return {path: text for path, text in MARKED_BLOCK.findall(page.read_text())}


def test_every_example_file_is_shown_as_it_is():
    blocks = marked_blocks(REPO / "docs" / "join.md")
    shown = {str(path.relative_to(REPO)) for path in (REPO / "examples").rglob("*")
             if path.is_file() and "__pycache__" not in path.parts}
    assert set(blocks) == shown
    for path, text in blocks.items():
        assert text == (REPO / path).read_text(), f"docs/join.md shows {path} other than it is"


def test_a_changed_file_would_be_caught(tmp_path):
    page = tmp_path / "join.md"
    page.write_text("<!-- file: examples/shout/shout.sh -->\n```sh\necho not the script\n```\n")
    assert marked_blocks(page)["examples/shout/shout.sh"] != (REPO / "examples/shout/shout.sh").read_text()
