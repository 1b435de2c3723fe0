"""A fallback or an unavailable metric is said in the package's own words, in one line, where it matters:
never as a Python warning, never as the whole how-to (that goes to the provenance)."""

from __future__ import annotations

import json
import warnings

from tiny import write_tiny_checkpoints, write_tiny_images

from restyle_lab.cli import main
from restyle_lab.facts import notices
from restyle_lab.facts.metric_names import LPIPS
from restyle_lab.metrics import METRICS, MetricSpec
from restyle_lab.metrics.weights import MetricUnavailable
from restyle_lab.records.store import read_provenance


def test_a_notice_is_one_line_said_once_per_process(capsys, monkeypatch):
    monkeypatch.setattr(notices, "_SAID", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        notices.notice("the projector runs\n  MSE-only")
        notices.notice("the projector runs MSE-only")
    assert capsys.readouterr().out == "note: the projector runs MSE-only\n"


def test_an_unavailable_metric_goes_to_the_provenance_and_evaluate_says_it_in_one_line(tmp_path, monkeypatch,
                                                                                         capsys):
    where = "/nowhere/hub/checkpoints/alexnet-owt-7be5be79.pth"

    def offline(device):
        raise MetricUnavailable(LPIPS, f"the pretrained weight file alexnet-owt-7be5be79.pth is not at {where}.")

    monkeypatch.setitem(METRICS, LPIPS, MetricSpec(LPIPS, offline))
    monkeypatch.setattr(notices, "_SAID", set())
    checkpoint = write_tiny_checkpoints(tmp_path / "ckpt")["restyle_psp"]
    methods = tmp_path / "methods.json"
    methods.write_text(json.dumps([{"name": "restyle_psp", "kind": "restyle", "checkpoint": str(checkpoint),
                                    "steps": 2}]))
    out = tmp_path / "run"
    assert main(["evaluate", "--data", str(write_tiny_images(tmp_path / "data", n=2)), "--out", str(out),
                 "--domain", "mini", "--methods-json", str(methods), "--metrics", f"mse_pm1,{LPIPS}",
                 "--batch-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert where not in printed, "the how-to belongs in the provenance"
    said = [line for line in printed.splitlines() if line.startswith("note:")]
    assert said == [f"note: {LPIPS} is unavailable here; why and the fix: {out / 'provenance.json'} "
                    "(metrics_unavailable)"]
    assert where in read_provenance(out)["metrics_unavailable"][LPIPS]
