"""What a training run shows and leaves behind while it trains: a progress bar with an ETA, the losses as a
CSV file (long form: step, split, name, value) and as TensorBoard event files (tensorboardX).

A resumed run first drops what the killed one recorded after its last saved state (the CSV rows, and
the TensorBoard events through a purge step), so each step is recorded once.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path

from tensorboardX import SummaryWriter
from tqdm import tqdm

from ..records.files import atomic_write_text

CSV_NAME = "losses.csv"
CSV_FIELDS = ["step", "split", "name", "value", "minutes"]
TENSORBOARD_DIR = "logs"  # the official coaches' exp_dir/logs


def _rows_up_to(path: Path, step: int) -> str:
    """The CSV's header and whole rows with step <= ``step`` (a row cut by a kill is dropped)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    if path.exists():
        for row in list(csv.reader(path.read_text().splitlines()))[1:]:
            if len(row) == len(CSV_FIELDS) and row[0].isdigit() and int(row[0]) <= step:
                writer.writerow(row)
    return out.getvalue()


class Records:
    """The losses of one run (``enabled`` False on every rank but the first: they write nothing)."""

    def __init__(self, out_dir, total_steps: int, start_step: int, enabled: bool = True):
        self.enabled = enabled
        self.total, self.start_step, self.t0 = total_steps, start_step, time.time()
        if not enabled:
            return
        out_dir = Path(out_dir)
        self.csv_path = out_dir / CSV_NAME
        atomic_write_text(self.csv_path, _rows_up_to(self.csv_path, start_step))
        self.tb = SummaryWriter(str(out_dir / TENSORBOARD_DIR), purge_step=start_step + 1 if start_step else None)
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        mininterval=1 if tty else 60, file=sys.stderr)

    def scalars(self, step: int, split: str, values: dict, minutes: float) -> None:
        """Record the finite float values of ``values`` under ``split`` (train / test)."""
        if not self.enabled:
            return
        finite = {k: float(v) for k, v in values.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        with open(self.csv_path, "a", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            for name, value in finite.items():
                writer.writerow([step, split, name, f"{value:.6g}", f"{minutes:.2f}"])
        for name, value in finite.items():
            self.tb.add_scalar(f"{split}/{name}", value, step)

    def advance(self, step: int, postfix: dict | None = None) -> None:
        """The bar to ``step`` (its ETA: the mean time per step of this session so far)."""
        if self.enabled:
            self.bar.n = step
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            self.bar.refresh()

    def write(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line)

    def eta_minutes(self, step: int) -> float | None:
        done = step - self.start_step
        return None if done <= 0 else (time.time() - self.t0) / done * (self.total - step) / 60

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.tb.close()
