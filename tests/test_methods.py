"""Method specs: one parser for the CLI syntax, JSON dicts and notebook calls; round trips; refusals."""

from __future__ import annotations

import pytest

from restyle_lab.facts.catalog import named_spec
from restyle_lab.facts.errors import UsageError
from restyle_lab.facts.methods import (
    HybridSpec,
    NaiveSpec,
    NamedSettings,
    OptimSpec,
    ReStyleSpec,
    SingleSpec,
    check_specs,
    parse_method,
    parse_methods,
    positive_int,
    spec_from_dict,
)
from restyle_lab.facts.schedule import SNAPSHOTS, snapshot_schedule


def test_cli_syntax_gives_typed_specs():
    assert parse_method("restyle:ck/restyle_psp.pt") == ReStyleSpec("restyle_restyle_psp", checkpoint="ck/restyle_psp.pt",
                                                                    steps=5)
    assert parse_method("mine=restyle:a.pt:3") == ReStyleSpec("mine", checkpoint="a.pt", steps=3)
    assert parse_method("single:psp.pt") == SingleSpec("single_psp", checkpoint="psp.pt")
    assert parse_method("naive:psp.pt:7") == NaiveSpec("naive_psp", checkpoint="psp.pt", steps=7)
    assert parse_method("optim:w+:300", generator="g.pt") == OptimSpec("optim_w+", space="w+",
                                                                       record_at=(1, 10, 50, 100, 250, 300),
                                                                       generator="g.pt")
    assert parse_method("optim:w", checkpoints=("first.pt",)).checkpoint == "first.pt"
    assert parse_method("hybrid:restyle_psp:20") == HybridSpec("restyle_psp+optim", encoder="restyle_psp",
                                                               record_at=(1, 10, 20))


def test_schedule_ends_where_the_run_ends():
    assert snapshot_schedule(1000) == SNAPSHOTS
    assert snapshot_schedule(20) == (1, 10, 20)  # the smoke run: 20 steps, not 10
    assert snapshot_schedule(1) == (1,)
    assert snapshot_schedule(300)[-1] == 300


@pytest.mark.parametrize("spec", [
    {"name": "a", "kind": "restyle", "checkpoint": "x.pt", "steps": 4},
    {"name": "b", "kind": "restyle", "checkpoint": "x.pt", "steps": 5, "bootstrap": {"checkpoint": "y.pt", "steps": 2}},
    {"name": "c", "kind": "single", "checkpoint": "x.pt"},
    {"name": "d", "kind": "naive", "checkpoint": "x.pt", "steps": 3},
    {"name": "e", "kind": "optim", "space": "w", "record_at": [1, 10], "generator": "g.pt", "lr": 0.05,
     "perceptual": False},
    {"name": "f", "kind": "hybrid", "encoder": "a", "record_at": [5], "seed": 3},
])
def test_dicts_round_trip(spec):
    assert spec_from_dict(spec).to_dict() == spec


@pytest.mark.parametrize("text, message", [
    ("restyle:ck.pt:0", "whole number of at least 1. Got: '0'"),
    ("restyle:ck.pt:-1", "whole number"),
    ("restyle:ck.pt:abc", "whole number"),
    ("restyle:ck.pt:2:9:x", "unexpected '9:x'"),
    ("single:ck.pt:3", "single pass takes no STEPS"),
    ("bogus:x", "expected \\[NAME=\\]KIND:ARG"),
    ("restyle", "expected \\[NAME=\\]KIND:ARG"),
    ("restyle:", "expected \\[NAME=\\]KIND:ARG"),
    ("optim:z", "optim takes w or w\\+"),
    ("optim:w", "optim needs --generator"),
    ("../escape=restyle:ck.pt", "method name '../escape'"),
])
def test_cli_syntax_refusals(text, message):
    with pytest.raises(UsageError, match=message):
        parse_method(text)


@pytest.mark.parametrize("spec, message", [
    ({"name": "a", "kind": "restyle", "checkpoint": "x.pt", "stpes": 4}, "unknown keys \\['stpes'\\]"),
    ({"name": "a", "kind": "magic"}, "kind must be one of"),
    ({"kind": "single", "checkpoint": "x.pt"}, "needs a 'name'"),
    ({"name": "a", "kind": "optim", "space": "w"}, "exactly one of generator"),
    ({"name": "a", "kind": "optim", "space": "w", "generator": "g", "record_at": [10, 1]}, "increasing"),
    ({"name": "a", "kind": "optim", "space": "w", "generator": "g", "lr": "fast"}, "'lr' must be a float"),
    ({"name": "a", "kind": "restyle", "checkpoint": "x.pt", "bootstrap": {"checkpoint": "y", "step": 1}},
     "unknown bootstrap keys"),
    ("restyle:x.pt", "must be a dict"),
])
def test_dict_refusals(spec, message):
    with pytest.raises(UsageError, match=message):
        spec_from_dict(spec)


def test_names_unique_and_hybrids_follow_their_encoder():
    with pytest.raises(UsageError, match="two methods are named 'x'"):
        parse_methods(["x=restyle:a.pt", "x=single:b.pt"])
    with pytest.raises(UsageError, match="encoder 'later' must name an encoder method"):
        check_specs([HybridSpec("h", encoder="later"), SingleSpec("later", checkpoint="a.pt")])
    specs = parse_methods(["hybrid:single_a"], extra=[{"name": "single_a", "kind": "single", "checkpoint": "a.pt"}])
    assert [s.name for s in specs] == ["single_a", "single_a+optim"]


def test_positive_int():
    assert positive_int("12", "n") == 12 and positive_int(3.0, "n") == 3
    for bad in (0, -2, "x", 2.5, True, None, ""):
        with pytest.raises(UsageError, match="n must be a whole number"):
            positive_int(bad, "n")


def test_named_specs_follow_the_lab_settings(tmp_path):
    files = {k: tmp_path / f"{k}.pt" for k in ("restyle_psp", "restyle_psp_toon", "generator", "psp")}
    settings = NamedSettings(steps=4, optim_steps=20)
    assert named_spec("psp_naive", files, settings) == NaiveSpec("psp_naive", checkpoint=str(files["psp"]), steps=4)
    boot = named_spec("toon_bootstrap", files, NamedSettings(5, 20))
    assert boot.bootstrap == str(files["restyle_psp"]) and boot.bootstrap_steps == 1
    assert named_spec("optim_w", files, NamedSettings(5, 20)).record_at == (1, 10, 20)
    assert named_spec("restyle_e4e", files, NamedSettings(5, 20)) is None  # its checkpoint is missing
    with pytest.raises(KeyError, match="unknown method"):
        named_spec("nope", files, NamedSettings(5, 20))


def test_a_checkpoint_path_holding_colons(tmp_path):
    folder = tmp_path / "run:2024-01-01"
    folder.mkdir()
    (folder / "restyle.pt").write_bytes(b"")
    spec = parse_method(f"restyle:{folder}/restyle.pt:3")
    assert spec.checkpoint == f"{folder}/restyle.pt" and spec.steps == 3
    assert parse_method(f"single:{folder}/restyle.pt").checkpoint == f"{folder}/restyle.pt"
    with pytest.raises(UsageError, match="is not a STEPS count, and there is no file"):
        parse_method(f"restyle:{tmp_path}/other:dir/restyle.pt")


def test_method_names_end_where_they_seem_to(tmp_path):
    for bad in ("psp\n", "psp\nx", "a" * 101):
        with pytest.raises(UsageError, match="method name"):
            parse_method(f"{bad}=single:x.pt")
