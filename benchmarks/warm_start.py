"""How soon each notebook of a reproduce run reached its analysis: from the notebook's start (kernel start
and imports included) to the end of its `lab.evaluate()` cell, read from papermill's cell timings in the
executed notebooks. Run it after a second `restyle-lab reproduce` on a complete store:

    python benchmarks/warm_start.py results/cars
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def analysis_start(notebook: Path) -> tuple[float, float] | None:
    """(seconds to the end of the evaluate cell, seconds for the whole notebook), or None if it has none."""
    nb = json.loads(notebook.read_text())
    started = _time(nb["metadata"]["papermill"]["start_time"])
    ended = _time(nb["metadata"]["papermill"]["end_time"])
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "lab.evaluate(" in "".join(cell["source"]):
            done = _time(cell["metadata"]["papermill"]["end_time"])
            return (done - started).total_seconds(), (ended - started).total_seconds()
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="results/<domain> of a reproduce run")
    args = parser.parse_args(argv)
    print(f"{'notebook':24s} {'to analysis (s)':>16s} {'whole notebook (s)':>19s}")
    for path in sorted((Path(args.results) / "notebooks").glob("*.ipynb")):
        times = analysis_start(path)
        if times:
            print(f"{path.stem:24s} {times[0]:16.1f} {times[1]:19.1f}")


if __name__ == "__main__":
    main()
