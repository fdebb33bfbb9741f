"""How every benchmark reports: a Markdown table on standard output and a JSON file in bench/results/."""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}\n")
    print("| figure | value |")
    print("|---|---:|")
    for figure, value in rows:
        print(f"| {figure} | {value} |")


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
