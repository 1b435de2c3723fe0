"""The shipped mini models: listed with sha256, within budget, loadable, and retrainable."""

from __future__ import annotations

from restyle_lab.mini.assets import BUDGET_BYTES, MANIFEST, verify
from restyle_lab.mini.attributes import load_regressor
from restyle_lab.mini.train import presets
from restyle_lab.models.checkpoints import load_generator, load_network


def test_manifest_matches_the_files():
    assert verify() == []


def test_every_preset_is_shipped_and_loads():
    import json

    files = json.loads(MANIFEST.read_text())["files"]
    for name, (model, _) in presets().items():
        assert model.file in files and files[model.file]["preset"] == name
        assert files[model.file]["trained_steps"], f"{model.file} has no training record"
        if model.kind == "gan":
            gen, w_avg, _ = load_generator(model.path)
            assert gen.config.size == 64 and w_avg.shape == (gen.style_dim,)
        elif model.kind == "attributes":
            assert load_regressor(model.path).config.image_size == 64
            assert files[model.file]["held_out"]["smile"]["r2"], "the regressor ships with its held-out accuracy"
        else:
            net = load_network(model.path)
            assert net.decoder.config.size == 64 and net.latent_avg is not None
    assert sum(f["bytes"] for f in files.values()) < BUDGET_BYTES


def train(*args, workdir, capsys):
    """``restyle-lab train ... --iters 2 --smoke`` in this process (an interpreter per preset costs seconds)."""
    from restyle_lab.cli import main

    code = main(["train", *args, "--workdir", str(workdir), "--iters", "2", "--smoke"])
    out = capsys.readouterr()
    assert code in (0, None), out.err[-3000:]
    return out


def test_every_preset_trains_a_few_steps(tmp_path, capsys):
    """CI smoke: two steps of each recipe, resumable state written, export loadable."""
    order = ["mini-gan", "mini-toon-gan"] + [p for p in presets() if p not in ("mini-gan", "mini-toon-gan")]
    for name in order:
        export = tmp_path / f"{name}.pt"
        out = train("--preset", name, "--export", str(export), workdir=tmp_path / "work", capsys=capsys)
        if presets()[name][1]().__dict__.get("init_encoder"):
            assert "encoder initialised from" in out.out, out.out[-2000:]
        assert (tmp_path / "work" / name / "state.pt").exists()
        kind = presets()[name][0].kind
        {"gan": load_generator, "attributes": load_regressor}.get(kind, load_network)(export)
    again = train("--preset", "mini-psp", workdir=tmp_path / "work", capsys=capsys)  # already at its 2 steps: resumes, no work
    assert "resumed" in again.out + again.err


def test_benchmark_times_every_shipped_encoder():
    from restyle_lab.mini.bench import ENCODERS, bench

    times = bench(steps=2, batch=2, rounds=1)
    assert set(times) == set(ENCODERS) and all(0 < t < 10 for t in times.values())
