"""Bad input and misuse at the command line: every case ends as one ``error:`` line naming the thing and the
fix, exit status 2, no traceback, and nothing already on disk is changed.

THE TABLE GROWS: each kind of bad input or misuse found gets a row here (README, "What happens when
things go wrong", counts them).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from restyle_lab.cli import main

from tiny import write_tiny_checkpoints, write_tiny_images


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple  # {ck}: tiny checkpoints folder, {data}: 3 good images, {tmp}: this case's folder, {run}: a run
    message: str  # a fragment the one-line error must contain
    setup: str = ""  # name of a setup step below


CASES = [
    # arguments
    Case("batch size 0", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "single:{ck}/psp.pt",
                          "--batch-size", "0"), "argument --batch-size: expected a whole number of at least 1"),
    Case("steps not a number", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out", "{tmp}/o",
                                "--steps", "abc"), "argument --steps: expected a whole number"),
    Case("steps negative", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out", "{tmp}/o",
                            "--steps", "-1"), "argument --steps"),
    Case("n-images negative", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "single:{ck}/psp.pt",
                               "--n-images", "-3"), "argument --n-images"),
    Case("unknown domain", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "single:{ck}/psp.pt",
                            "--domain", "bogus"), "argument --domain: invalid choice: 'bogus'"),
    Case("unknown domain (reproduce)", ("reproduce", "--domain", "bogus"), "argument --domain: invalid choice"),
    Case("unknown dtype", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out", "{tmp}/o",
                           "--dtype", "float16"), "argument --dtype: invalid choice"),
    Case("train iters 0", ("train", "--preset", "mini-psp", "--iters", "0"), "argument --iters"),
    Case("mini-data n 0", ("mini-data", "--n", "0"), "argument --n"),
    Case("timeout not a number", ("reproduce", "--timeout", "soon"), "argument --timeout: expected a number"),
    Case("unknown ops", ("reproduce", "--impl", "quick"), "argument --impl: invalid choice: 'quick'"),
    Case("timeout zero", ("reproduce", "--timeout", "0"), "expected a positive number of seconds"),
    # devices
    Case("device nonsense", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "single:{ck}/psp.pt",
                             "--device", "nonsense"), "device 'nonsense' is not a device name"),
    Case("cuda without a GPU", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out", "{tmp}/o",
                                "--device", "cuda"), "torch sees no CUDA device"),
    # outputs
    Case("evaluate --out is a file", ("evaluate", "--data", "{data}", "--out", "{tmp}/file.txt", "--method",
                                      "single:{ck}/psp.pt"), "is a file", "out_file"),
    Case("invert --out is a file", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out",
                                    "{tmp}/file.txt"), "is a file", "out_file"),
    Case("invert into a used --out", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out",
                                      "{tmp}/used"), "add --overwrite", "used_out"),
    Case("sample into a used --out", ("sample", "--generator", "{ck}/generator.pt", "--out", "{tmp}/used"),
         "not an empty folder", "used_out"),
    Case("sample truncation out of range", ("sample", "--generator", "{ck}/generator.pt", "--out", "{tmp}/s",
                                            "--truncation", "2"), "--truncation must be in (0, 1]"),
    # method syntax
    Case("restyle steps 0", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "restyle:{ck}/x.pt:0"),
         "STEPS must be a whole number of at least 1. Got: '0'"),
    Case("method with extra fields", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                      "restyle:{ck}/restyle_psp.pt:2:9:x"), "unexpected '9:x'"),
    Case("single with steps", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "single:{ck}/psp.pt:3"),
         "a single pass takes no STEPS"),
    Case("unknown method kind", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "bogus:x"),
         "expected [NAME=]KIND:ARG[:STEPS]"),
    Case("optim space", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "optim:z",
                         "--generator", "{ck}/generator.pt"), "optim takes w or w+"),
    Case("optim without a generator", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "optim:w"),
         "optim needs --generator"),
    Case("hybrid of an unknown method", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                         "hybrid:nothere"), "encoder 'nothere' must name an encoder method"),
    Case("two methods, one name", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                   "a=single:{ck}/psp.pt", "--method", "a=single:{ck}/e4e.pt"),
         "two methods are named 'a'"),
    Case("method name with a path", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                     "x/y=single:{ck}/psp.pt"), "method name 'x/y'"),
    Case("no method", ("evaluate", "--data", "{data}", "--out", "{tmp}/r"), "give at least one --method"),
    Case("methods-json missing", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--methods-json",
                                  "{tmp}/none.json"), "--methods-json {tmp}/none.json: no such file"),
    Case("methods-json malformed", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--methods-json",
                                    "{tmp}/bad.json"), "not valid JSON", "bad_json"),
    Case("methods-json unknown key", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--methods-json",
                                      "{tmp}/typo.json"), "unknown keys ['stpes']", "typo_json"),
    Case("methods-json not a list", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--methods-json",
                                     "{tmp}/dict.json"), "expected a list of method dicts", "dict_json"),
    Case("unknown metric", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method", "single:{ck}/psp.pt",
                            "--metrics", "mse_pm1,bogus"), "unknown metric(s) ['bogus']"),
    # checkpoints
    Case("checkpoint missing", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                "single:{ck}/absent.pt"), "checkpoint {ck}/absent.pt not found"),
    Case("generator given as encoder", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                        "restyle:{ck}/generator.pt"), "this is a StyleGAN2 generator file"),
    Case("truncated checkpoint", ("info", "{tmp}/cut.pt"), "truncated or corrupt download", "cut_checkpoint"),
    Case("text file as checkpoint", ("info", "{tmp}/file.txt"), "not a PyTorch checkpoint", "out_file"),
    Case("checkpoint with pickled code", ("info", "{tmp}/code.pt"), "refused: the file holds pickled Python objects",
         "pickled_code"),
    Case("wrong domain for the checkpoint", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                             "single:{ck}/psp.pt", "--domain", "cars"), "wrong --domain"),
    Case("ReStyle method on a single-pass checkpoint", ("evaluate", "--data", "{data}", "--out", "{tmp}/r",
                                                        "--method", "restyle:{ck}/psp.pt"), "is not a ReStyle network; use single:CKPT"),
    Case("single-pass method on a ReStyle checkpoint", ("evaluate", "--data", "{data}", "--out", "{tmp}/r",
                                                        "--method", "naive:{ck}/restyle_psp.pt"),
         "needs a ReStyle method; use restyle:CKPT"),
    # data
    Case("data folder missing", ("evaluate", "--data", "{tmp}/nothing", "--out", "{tmp}/r", "--method",
                                 "single:{ck}/psp.pt"), "no such directory"),
    Case("data is a file", ("evaluate", "--data", "{tmp}/file.txt", "--out", "{tmp}/r", "--method",
                            "single:{ck}/psp.pt"), "is a file, not a folder", "out_file"),
    Case("data folder without images", ("evaluate", "--data", "{tmp}/empty", "--out", "{tmp}/r", "--method",
                                        "single:{ck}/psp.pt"), "no images found", "empty_folder"),
    Case("every image unreadable (evaluate)", ("evaluate", "--data", "{tmp}/bad", "--out", "{tmp}/r", "--method",
                                               "single:{ck}/psp.pt"), "none of its 3 image files could be read",
         "bad_images"),
    Case("every image unreadable (invert)", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{tmp}/bad",
                                             "--out", "{tmp}/o"), "see {tmp}/o/errors.csv", "bad_images"),
    Case("images path missing", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{tmp}/nothing", "--out",
                                 "{tmp}/o"), "no such file or folder"),
    Case("images is not an image", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{tmp}/file.txt", "--out",
                                    "{tmp}/o"), "is not an image file", "out_file"),
    # run stores
    Case("another setup in the run dir", ("evaluate", "--data", "{data}", "--out", "{run}", "--method",
                                          "single:{ck}/psp.pt", "--batch-size", "2"),
         "holds results of a different setup", "run"),
    Case("another test set in the run dir", ("evaluate", "--data", "{tmp}/other", "--out", "{run}", "--method",
                                             "single:{ck}/psp.pt", "--metrics", "mse_pm1"),
         "dataset_manifest_sha256", "run_and_other_data"),
    Case("other ops in the run dir", ("evaluate", "--data", "{data}", "--out", "{run}", "--method",
                                      "single:{ck}/psp.pt", "--metrics", "mse_pm1", "--impl", "reference"),
         'impl: stored "fast" vs now "reference"', "run"),
    Case("another dtype in the run dir", ("evaluate", "--data", "{data}", "--out", "{run}", "--method",
                                          "single:{ck}/psp.pt", "--metrics", "mse_pm1", "--dtype", "bf16"),
         'dtype: stored "float32" vs now "bf16"', "run"),
    Case("summary of a missing run", ("summary", "{tmp}/none"), "no such run directory"),
    Case("summary of an empty folder", ("summary", "{tmp}/empty"), "no result parts yet", "empty_folder"),
    Case("export of an unknown method", ("export-latents", "{run}", "nope", "{tmp}/l.npy"),
         "no stored latents for method 'nope'", "run"),
    # reproduce and training
    Case("unknown notebook", ("reproduce", "--only", "nosuch"), "unknown notebook(s) ['nosuch']"),
    Case("real domain without checkpoints", ("reproduce", "--domain", "cars"), "needs --checkpoints DIR"),
    Case("real domain, checkpoints folder missing", ("reproduce", "--domain", "cars", "--checkpoints",
                                                     "{tmp}/nothing", "--data", "{data}"),
         "--checkpoints {tmp}/nothing: no such folder"),
    Case("params file missing", ("reproduce", "--params", "{tmp}/none.yml"), "--params {tmp}/none.yml: no such file"),
    Case("params file malformed", ("reproduce", "--params", "{tmp}/bad.yml"), "not valid YAML", "bad_yaml"),
    Case("params file unknown key", ("reproduce", "--params", "{tmp}/typo.yml"), "unknown key(s) ['n_imagse']",
         "typo_yaml"),
    Case("params file bad value", ("reproduce", "--params", "{tmp}/negative.yml"),
         "n_images must be a whole number of at least 1", "negative_yaml"),
    Case("params file sets what reproduce sets", ("reproduce", "--params", "{tmp}/fixed.yml"), "use --out",
         "fixed_yaml"),
    Case("params file, parameter of another notebook", ("reproduce", "--params", "{tmp}/wrongnb.yml"),
         "notebook 'latent_change' has no parameter(s) ['n_show']", "wrong_notebook_yaml"),
    Case("params file, edit strengths without 0", ("reproduce", "--params", "{tmp}/strengths.yml"),
         "editing: strengths: strengths must include 0", "strengths_yaml"),
    Case("params file, unknown edit source", ("reproduce", "--params", "{tmp}/source.yml"),
         "editing: source must be one of , interfacegan, interfacegan_fit, ganspace, sefa", "source_yaml"),
    Case("unknown training preset", ("train", "--preset", "nosuch"), "unknown preset 'nosuch'"),
    Case("fine-tune before its base", ("train", "--preset", "mini-toon-gan", "--workdir", "{tmp}/w"),
         "run `restyle-lab train --preset mini-gan` first"),
]


def _setup(kind: str, tmp: Path, ck: Path, data: Path, run: Path) -> None:
    if kind == "out_file":
        (tmp / "file.txt").write_text("not a folder, image or checkpoint")
    elif kind == "used_out":
        (tmp / "used").mkdir()
        (tmp / "used" / "mine.txt").write_text("results from yesterday")
    elif kind == "bad_json":
        (tmp / "bad.json").write_text('[{"name": "a", ')
    elif kind == "typo_json":
        (tmp / "typo.json").write_text(json.dumps([{"name": "a", "kind": "restyle", "checkpoint": "x.pt", "stpes": 3}]))
    elif kind == "dict_json":
        (tmp / "dict.json").write_text(json.dumps({"name": "a"}))
    elif kind == "cut_checkpoint":
        data_ = (ck / "psp.pt").read_bytes()
        (tmp / "cut.pt").write_bytes(data_[: len(data_) // 3])
    elif kind == "pickled_code":
        torch.save({"opts": Path("x")}, tmp / "code.pt")  # a PosixPath needs code to unpickle
    elif kind == "empty_folder":
        (tmp / "empty").mkdir()
        (tmp / "empty" / "readme.txt").write_text("no images")
    elif kind == "bad_images":
        (tmp / "bad").mkdir()
        (tmp / "bad" / "a.png").write_text("text, not a png")
        (tmp / "bad" / "b.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 20)
        (tmp / "bad" / "c.png").symlink_to(tmp / "bad" / "gone.png")
    elif kind in ("run", "run_and_other_data"):
        if kind == "run_and_other_data":
            shutil.copytree(data, tmp / "other")
            (tmp / "other" / "test_0000.png").unlink()
    elif kind.endswith("_yaml"):
        text = {"bad_yaml": "n_images: [1, 2", "typo_yaml": "n_imagse: 4", "negative_yaml": "n_images: -1",
                "fixed_yaml": "out_dir: elsewhere", "wrong_notebook_yaml": "latent_change:\n  n_show: 3",
                "strengths_yaml": "editing:\n  strengths: 1,2", "source_yaml": "editing:\n  source: stylespace"}[kind]
        (tmp / (kind.split("_yaml")[0].replace("_notebook", "nb") + ".yml")).write_text(text)


def snapshot(root: Path) -> dict:
    """Every file under root with its content hash: 'nothing lost' means this does not change."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink() and "locks" not in p.parts}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    ck = root / "ck"
    write_tiny_checkpoints(ck)
    data = write_tiny_images(root / "data", n=3)
    run = root / "run"
    assert main(["evaluate", "--data", str(data), "--out", str(run), "--method", f"single:{ck}/psp.pt",
                 "--metrics", "mse_pm1"]) == 0
    return ck, data, run


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, world, tmp_path, capsys, monkeypatch):
    ck, data, run = world
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESTYLE_LAB_DATA", str(tmp_path / "cache"))
    if case.setup:
        _setup(case.setup, tmp_path, ck, data, run)
    fill = {"ck": ck, "data": data, "tmp": tmp_path, "run": run}
    argv = [a.format(**fill) for a in case.argv]
    before = {"tmp": snapshot(tmp_path), "run": snapshot(run), "ck": snapshot(ck)}
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr: {err}"
    lines = [line for line in err.replace("\r", "\n").strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and sum(line.startswith("error: ") for line in lines) == 1, err
    assert "Traceback" not in err
    assert case.message.format(**fill) in err, err
    after = {"tmp": snapshot(tmp_path), "run": snapshot(run), "ck": snapshot(ck)}
    new = set(after["tmp"]) - set(before["tmp"])
    allowed_new = {"o/errors.csv", "o/.restyle-lab-outputs.json"} if case.id == "every image unreadable (invert)" \
        else set()
    assert new <= allowed_new, f"a refused command wrote {sorted(new - allowed_new)}"
    assert {k: v for k, v in after["tmp"].items() if k in before["tmp"]} == before["tmp"], "a file was changed"
    assert after["run"] == before["run"] and after["ck"] == before["ck"], "stored results were changed"


def test_every_skipped_invert_input_is_listed(world, tmp_path, capsys):
    ck, _, _ = world
    _setup("bad_images", tmp_path, ck, None, None)
    main(["invert", "--checkpoint", str(ck / "psp.pt"), "--images", str(tmp_path / "bad"), "--out", str(tmp_path / "o")])
    listed = (tmp_path / "o" / "errors.csv").read_text()
    assert "a.png" in listed and "b.jpg" in listed and "c.png" in listed and "broken link" in listed


def test_the_table_counts():
    """README's 'What happens when things go wrong' states this count; update it when the table grows."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"{len(CASES)} kinds of bad input and misuse" in readme
