"""The README's "Write your own reactor" example, executed as it stands there."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> dict:
    text = README.read_text()
    match = re.search(r"<!-- example: write-your-own-reactor -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its reactor example"
    namespace: dict = {}
    exec(compile(match.group(1), "README.md (write your own reactor)", "exec"), namespace)
    return namespace


async def test_the_readme_reactor_example_works():
    await readme_example()["test_frost_watch"]()
