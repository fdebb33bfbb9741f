"""Instructions per reading of each service's own work (bench/hot_paths.py's paths), counted by valgrind.

Run with `.venv/bin/python bench/instructions.py [--code NAME=DIR ...] [--paths ingest,threshold,sink]`.
CPU seconds on a shared machine swing by a factor of several from minute to minute (another guest's
load, the host's clock); the instructions a piece of Python executes do not. For each path and each
tree of code (this one, and every `--code NAME=DIR`, say `git archive COMMIT | tar -x -C DIR`), the
path runs under `valgrind --tool=callgrind` twice, on `--small` and on `--large` readings of the same
recorded messages; the difference divided by the difference in readings is what one reading costs,
start-up and imports cancelled out. Slow: two runs of a minute or two per path and tree, as many
at once as there are cores. Needs valgrind (Debian's package, which scripts/setup.sh installs).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLLECTED = re.compile(rb"Collected : (\d+)")
sys.path.insert(0, str(ROOT))  # bench.*; a child puts the tree it counts before it


def record(readings: int, directory: Path) -> Path:
    """The messages of every path, made once by this tree's code so that every tree gets the same."""
    from bench.hot_paths import PATHS

    messages = {name: [(m.topic, m.payload) for m in make(readings)] for name, (_, _, make) in PATHS.items()}
    path = directory / "messages.pickle"
    path.write_bytes(pickle.dumps(messages))
    return path


def count(code: Path, path_name: str, messages: Path, readings: int) -> int:
    """The instructions of one run of `path_name` over `readings` messages, with the gateway from `code`."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--child", str(code), path_name, str(messages), str(readings)]
    finished = subprocess.run(command, capture_output=True, check=True)
    found = COLLECTED.search(finished.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no count:\n{finished.stderr.decode(errors='replace')[-2000:]}")
    return int(found.group(1))


def child(code: str, path_name: str, messages: str, readings: int) -> None:
    """Runs under valgrind: the gateway imported from `code`, the path from this tree's hot_paths."""
    sys.path.insert(0, code)
    import gateway  # noqa: F401  the packages from `code`: hot_paths' own imports then resolve into them
    import reactors  # noqa: F401
    from gateway.transport import Message

    spec = importlib.util.spec_from_file_location("hot_paths", HERE / "hot_paths.py")
    assert spec is not None and spec.loader is not None
    hot_paths = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hot_paths)
    recorded = pickle.loads(Path(messages).read_bytes())[path_name][:readings]
    _, measure, _ = hot_paths.PATHS[path_name]
    measure([Message(topic, payload) for topic, payload in recorded])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", action="append", default=[], metavar="NAME=DIR", help="another tree to count")
    parser.add_argument("--paths", default="ingest,threshold,sink")
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=900)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/instructions.py needs valgrind: apt-get install valgrind")
    if not 0 < args.small < args.large:
        raise SystemExit("--small must be above 0 and below --large")
    trees = {"this": ROOT, **{name: Path(directory).resolve() for name, directory in
                              (entry.split("=", 1) for entry in args.code)}}
    from bench.report import print_table, save

    runs = [(path_name, tree) for path_name in args.paths.split(",") for tree in trees]
    print(f"counting {len(runs)} paths and trees, {os.cpu_count()} at a time ...", file=sys.stderr, flush=True)
    figures: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as directory, ThreadPoolExecutor(os.cpu_count()) as pool:
        messages = record(args.large, Path(directory))
        counts = {(run, n): pool.submit(count, trees[run[1]], run[0], messages, n)
                  for run in runs for n in (args.small, args.large)}
        for path_name, tree in runs:
            small, large = (counts[(path_name, tree), n].result() for n in (args.small, args.large))
            figures.setdefault(path_name, {})[tree] = (large - small) // (args.large - args.small)
    rows = [(f"{path_name}, {tree}", f"{n:,}" + (f" ({n / per_tree['this']:.2f} x this)" if tree != "this" else ""))
            for path_name, per_tree in figures.items() for tree, n in per_tree.items()]
    print_table("Instructions per reading (valgrind)", rows)
    print(f"\n(all figures in {save('instructions', figures)})")


if __name__ == "__main__":
    main()
