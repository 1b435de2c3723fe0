"""The run store: kill/resume, torchrun shards, provenance checks, latents export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from tiny import write_tiny_checkpoints, write_tiny_images

from restyle_lab.facts.metric_names import TIME_METRICS
from restyle_lab.records.store import export_official_latents, read_latents, read_results


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    paths = write_tiny_checkpoints(root / "ckpt")
    data = write_tiny_images(root / "data", n=8)
    methods = [{"name": "restyle_psp", "kind": "restyle", "checkpoint": str(paths["restyle_psp"]), "steps": 3},
               {"name": "psp_naive", "kind": "naive", "checkpoint": str(paths["psp"]), "steps": 2},
               {"name": "optim_w", "kind": "optim", "generator": str(paths["generator"]), "space": "w",
                "perceptual": False, "record_at": [1, 10, 60]}]
    mfile = root / "methods.json"
    mfile.write_text(json.dumps(methods))
    return root, data, mfile


def cli(*args):
    return [sys.executable, "-m", "restyle_lab.cli", *map(str, args)]


def eval_args(data, out, mfile, batch=2):
    return cli("evaluate", "--data", data, "--out", out, "--domain", "mini", "--methods-json", mfile,
               "--metrics", "mse_pm1,psnr_pm1", "--batch-size", batch)


def env1():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run_ok(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=kw.pop("env", env1()), **kw)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df.metric.isin(TIME_METRICS)].reset_index(drop=True)


@pytest.fixture(scope="module")
def reference_run(setup):
    root, data, mfile = setup
    run_ok(eval_args(data, root / "straight", mfile))
    return read_results(root / "straight")


def test_rows_are_complete_and_tidy(reference_run):
    df = reference_run
    assert list(df.columns) == ["image", "image_index", "method", "step", "metric", "value", "status"]
    counts = df.groupby(["method", "metric"]).size()
    assert counts[("restyle_psp", "mse_pm1")] == 8 * 3 and counts[("psp_naive", "psnr_pm1")] == 8 * 2
    assert counts[("optim_w", "mse_pm1")] == 8 * 3
    assert set(df.metric) == {"mse_pm1", "psnr_pm1", *TIME_METRICS}
    assert (df.status == "ok").all() and df.value.notna().all()


def test_sigkill_then_resume_gives_the_uninterrupted_rows(setup, reference_run):
    root, data, mfile = setup
    out = root / "killed"
    proc = subprocess.Popen(eval_args(data, out, mfile), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env1())
    deadline = time.time() + 600
    while time.time() < deadline and len(list(out.glob("parts/*/*.parquet"))) < 4:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob("parts/*/*.parquet")))
    assert 4 <= done < 12, f"the kill should land mid-run, found {done} of 12 parts"
    resumed = run_ok(eval_args(data, out, mfile))
    assert "reusing stored images" in resumed.stdout + resumed.stderr
    df = read_results(out)  # raises on duplicate rows
    a, b = comparable(df), comparable(reference_run)
    pd.testing.assert_frame_equal(a, b)
    keys = ["image_index", "method", "step", "metric"]
    assert df[keys].equals(reference_run[keys])  # timing rows: same keys, measured values


def test_torchrun_shards_give_the_single_process_table(setup, reference_run):
    root, data, mfile = setup
    out = root / "sharded"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "restyle_lab.cli", "evaluate", "--data", str(data), "--out", str(out), "--domain", "mini",
           "--methods-json", str(mfile), "--metrics", "mse_pm1,psnr_pm1", "--batch-size", "2"]
    run_ok(cmd)
    df = read_results(out)
    parts = sorted(p.name for p in out.glob("parts/restyle_psp/*.parquet"))
    assert parts == ["b000000.parquet", "b000001.parquet", "b000002.parquet", "b000003.parquet"]
    a, b = comparable(df), comparable(reference_run)
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    np.testing.assert_allclose(a.value, b.value, rtol=1e-5, atol=1e-6)
    assert json.loads((out / "provenance.json").read_text())["world_size"] == 2


def test_a_different_setup_is_refused_and_rows_are_kept(setup, reference_run):
    root, data, mfile = setup
    out = root / "straight"
    before = sorted(p.stat().st_mtime_ns for p in out.glob("parts/*/*.parquet"))
    res = subprocess.run(eval_args(data, out, mfile) + ["--impl", "reference"], capture_output=True, text=True,
                         env=env1(), timeout=300)
    assert res.returncode == 2
    assert "holds results of a different setup" in res.stderr and "impl" in res.stderr
    assert sorted(p.stat().st_mtime_ns for p in out.glob("parts/*/*.parquet")) == before


def test_fewer_images_or_another_batch_size_read_back_the_stored_ones(setup, reference_run, tmp_path):
    """Images are stored one by one: a run asking for a subset of the stored images, in other batches,
    computes nothing and reads back the same rows; one asking for more computes only the new ones."""
    root, data, mfile = setup
    out = tmp_path / "run"
    import shutil

    shutil.copytree(root / "straight", out)
    before = {p: p.stat().st_mtime_ns for p in out.glob("parts/*/*.parquet")}
    res = run_ok(eval_args(data, out, mfile, batch=4) + ["--n-images", "5"])
    assert "reusing stored images: restyle_psp 5 of 5" in res.stdout and "computed" not in res.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("parts/*/*.parquet")} == before
    first5 = reference_run[reference_run.image_index < 5].reset_index(drop=True)
    stored = read_results(out)
    pd.testing.assert_frame_equal(comparable(stored), comparable(reference_run))
    small = tmp_path / "small"
    run_ok(eval_args(data, small, mfile) + ["--n-images", "3"])
    res = run_ok(eval_args(data, small, mfile))
    assert "reusing stored images: restyle_psp 3 of 8" in res.stdout
    names = sorted(p.name for p in (small / "parts" / "psp_naive").glob("*.parquet"))
    assert "b000000.parquet" in names and any(n.startswith("b000000-") for n in names)  # the new images, keyed
    a, b = comparable(read_results(small)), comparable(reference_run)  # other batches: float32 rounding apart
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    np.testing.assert_allclose(a.value, b.value, rtol=1e-4, atol=1e-6)
    assert len(first5) == len(reference_run[reference_run.image_index < 5])


def test_latents_and_official_export(setup, reference_run, tmp_path):
    root, _, _ = setup
    stored = read_latents(root / "straight", "restyle_psp")
    assert stored["latents"].shape == (3, 8, 10, 32) and stored["images"].shape == (3, 8, 64, 64, 3)
    path = export_official_latents(root / "straight", "restyle_psp", tmp_path / "latents.npy")
    official = np.load(path, allow_pickle=True).item()
    assert sorted(official) == [f"test_{i:04d}.png" for i in range(8)]
    first = official["test_0000.png"]
    assert len(first) == 3 and first[0].shape == (10, 32)
    np.testing.assert_array_equal(first[2], stored["latents"][2, 0])


def test_new_methods_join_an_existing_store(setup, reference_run, tmp_path):
    import shutil

    root, data, mfile = setup
    out = tmp_path / "grow"
    shutil.copytree(root / "straight", out)
    before = {p: p.stat().st_mtime_ns for p in out.glob("parts/*/*.parquet")}
    methods = json.loads(mfile.read_text())
    methods.append({"name": "psp", "kind": "single", "checkpoint": methods[1]["checkpoint"]})
    more = tmp_path / "more.json"
    more.write_text(json.dumps(methods))
    run_ok(eval_args(data, out, more))
    assert {p: p.stat().st_mtime_ns for p in before} == before, "stored units were recomputed"
    assert len(list(out.glob("parts/psp/*.parquet"))) == 4
    provenance = json.loads((out / "provenance.json").read_text())
    assert set(provenance["methods"]) == {"restyle_psp", "psp_naive", "optim_w", "psp"}
    changed = json.loads(more.read_text())
    changed[0]["steps"] = 4  # the same name for a different method is refused
    more.write_text(json.dumps(changed))
    res = subprocess.run(eval_args(data, out, more), capture_output=True, text=True, env=env1(), timeout=300)
    assert res.returncode == 2 and "methods['restyle_psp']" in res.stderr


def test_a_damaged_part_is_found_and_redone(setup, reference_run, tmp_path):
    import shutil

    root, data, mfile = setup
    out = tmp_path / "damaged"
    shutil.copytree(root / "straight", out)
    part = out / "parts" / "restyle_psp" / "b000001.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    res = subprocess.run(cli("summary", out), capture_output=True, text=True, env=env1(), timeout=300)
    assert res.returncode == 2 and "b000001.parquet is damaged" in res.stderr and "Traceback" not in res.stderr
    resumed = run_ok(eval_args(data, out, mfile))
    assert "redoing restyle_psp batch 1" in resumed.stdout + resumed.stderr
    assert "computed 1 (method, batch) unit(s)" in resumed.stdout + resumed.stderr
    pd.testing.assert_frame_equal(comparable(read_results(out)), comparable(reference_run))


def test_two_processes_on_one_run_share_the_work(setup, reference_run, tmp_path):
    import re

    root, data, mfile = setup
    out = tmp_path / "shared"
    procs = [subprocess.Popen(eval_args(data, out, mfile), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env1()) for _ in range(2)]
    logs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    computed = [sum(int(n) for n in re.findall(r"computed (\d+) \(method, batch\)", log)) for log in logs]
    assert sum(computed) == 3 * 4, (computed, logs)  # 3 methods x 4 batches, each computed once
    pd.testing.assert_frame_equal(comparable(read_results(out)), comparable(reference_run))


def test_generated_inputs_report_the_latent_error(setup, tmp_path):
    """`restyle-lab sample` writes generator samples with their true w+; evaluate then adds latent_mse rows."""
    from restyle_lab.cli import main
    from restyle_lab.inversion.evaluate import evaluate

    root, _, mfile = setup
    methods = json.loads(mfile.read_text())[:2]
    generator = methods[0]["checkpoint"].replace("restyle_psp.pt", "generator.pt")
    assert main(["sample", "--generator", generator, "--out", str(tmp_path / "samples"), "--n", "3"]) == 0
    truth = np.load(tmp_path / "samples" / "latents.npz")
    assert truth["latents"].shape == (3, 10, 32) and list(truth["names"]) == [f"sample_{i:04d}.png" for i in range(3)]
    run = evaluate(tmp_path / "run", tmp_path / "samples", methods, metrics=["mse_pm1"], progress=False,
                   log=lambda *a: None)
    df = read_results(run)
    latent = df[df.metric == "latent_mse"]
    assert len(latent) == 3 * 3 + 3 * 2 and (latent.value > 0).all() and (latent.status == "ok").all()
    stored = read_latents(run, "restyle_psp")
    first = latent[(latent.method == "restyle_psp") & (latent.step == 1)].sort_values("image_index").value
    expected = ((stored["latents"][0] - truth["latents"]) ** 2).reshape(3, -1).mean(1)
    np.testing.assert_allclose(first, expected, rtol=1e-5)


def test_what_building_a_method_reveals_is_compared_only_where_both_sides_know_it(tmp_path):
    from restyle_lab.facts.errors import StoreError
    from restyle_lab.records.store import check_provenance, write_provenance

    base = {"domain": "mini", "methods": {"a": {"kind": "restyle", "checkpoint": "x.pt", "steps": 5}}}
    write_provenance(tmp_path, base)
    learned = {**base, "methods": {"a": {**base["methods"]["a"], "family": "restyle_psp"}}}
    check_provenance(tmp_path, learned, ("family",))  # the store does not know the family yet: no conflict
    write_provenance(tmp_path, learned)
    check_provenance(tmp_path, base, ("family",))  # a process that has not built it yet: no conflict either
    with pytest.raises(StoreError, match="methods\\['a'\\]"):
        check_provenance(tmp_path, {**base, "methods": {"a": {**learned["methods"]["a"], "family": "psp"}}},
                         ("family",))
    with pytest.raises(StoreError, match="methods\\['a'\\]"):  # a spec key missing on one side is a difference
        check_provenance(tmp_path, {**base, "methods": {"a": {**base["methods"]["a"], "bootstrap": {"steps": 1}}}},
                         ("family",))


def test_a_moved_checkpoint_is_the_same_method_a_changed_one_is_not(tmp_path):
    from restyle_lab.facts.errors import StoreError
    from restyle_lab.records.store import check_provenance, write_provenance

    def prov(path, sha, boot_path="/a/ffhq.pt", boot_sha="b1"):
        return {"domain": "mini", "n_images": 4, "methods": {"toon": {
            "name": "toon", "kind": "restyle", "checkpoint": path, "checkpoint_sha256": sha, "steps": 5,
            "bootstrap": {"checkpoint": boot_path, "steps": 1, "sha256": boot_sha}}}}

    write_provenance(tmp_path, prov("/old/checkout/toon.pt", "s1"))
    check_provenance(tmp_path, prov("/new/checkout/toon.pt", "s1", boot_path="/b/ffhq.pt"))  # moved: accepted
    with pytest.raises(StoreError, match=r"methods\['toon'\]"):
        check_provenance(tmp_path, prov("/old/checkout/toon.pt", "s2"))  # same path, other weights
    with pytest.raises(StoreError, match=r"methods\['toon'\]"):
        check_provenance(tmp_path, prov("/old/checkout/toon.pt", "s1", boot_sha="b2"))


def test_optimisation_on_a_seeded_subset(setup, tmp_path):
    """optim_images: the projector inverts a seeded subset, the same one on every run; encoders all images."""
    from restyle_lab.facts.methods import OptimSpec
    from restyle_lab.inversion.evaluate import evaluate

    root, data, mfile = setup
    generator = json.loads(mfile.read_text())[0]["checkpoint"].replace("restyle_psp.pt", "generator.pt")
    spec = OptimSpec(name="optim_w", generator=generator, record_at=(1, 2), images=2, subset_seed=3,
                     options={"perceptual": False})
    encoder = json.loads(mfile.read_text())[0]
    picked = []
    for k in range(2):
        run = evaluate(tmp_path / f"run{k}", data, [spec, encoder], metrics=["mse_pm1"], progress=False,
                       log=lambda *a: None)
        df = read_results(run)
        optim = df[df.method == "optim_w"]
        assert optim.image_index.nunique() == 2 and optim.step.max() == 2
        assert df[df.method == encoder["name"]].image_index.nunique() == df.image_index.nunique() > 2
        picked.append(sorted(optim.image_index.unique()))
    assert picked[0] == picked[1], "the subset is seeded"


def test_a_subset_reads_its_own_images_and_says_how_many_of_them_are_stored(tmp_path, capsys):
    """A notebook asking for a seeded subset reads exactly those images' rows, whatever else the store holds, and
    "reusing stored images" counts the wanted ones that are stored (not min(stored, wanted))."""
    from restyle_lab.inversion.units import image_list
    from restyle_lab.mini.dataset import write_test_set
    from restyle_lab.run.lab import Lab

    data = write_test_set(tmp_path / "data", n=8)
    # not a smoke run: it would cap n_images at 4
    base = dict(domain="mini", data_root=str(data), out_dir=str(tmp_path / "out" / "quality_time"), optim_steps=2)
    Lab.from_parameters("quality_time", None, n_images=5, **base).evaluate(["optim_w"], progress=False)
    capsys.readouterr()
    lab = Lab.from_parameters("quality_time", None, n_images=8, optim_images=3, **base)
    rows, _ = lab.evaluate(["optim_w"], progress=False)
    wanted = image_list(lab.spec("optim_w"), 8).indices
    stored = [i for i in wanted if i < 5]
    assert 0 < len(stored) < len(wanted) == 3, "the subset is meant to hold stored and new images"
    assert f"reusing stored images: optim_w {len(stored)} of 3" in capsys.readouterr().out
    assert sorted(rows.image_index.unique()) == list(wanted), "the rows are the subset's, not the store's"
    # the explorer offers optim_w for the images its store holds (both runs'), and says why not for the others
    from restyle_lab.analysis import explorer

    available, absent = lab.explorable(explorer.NEEDS)
    names = list(lab.images())
    held = sorted(set(range(5)) | set(wanted))
    assert available["optim_w"] == [names[i] for i in held]
    missing = names[next(i for i in range(8) if i not in held)]
    note = explorer.absent_note(missing, available, absent, 8)
    assert f"optimisation (W): stored for {len(held)} of the 8 images, not this one" in note
    assert absent["psp"].startswith("not stored for these images with these settings (run quality_time")


def test_optimisations_take_their_own_batch_size(tmp_path):
    """A notebook's optimisation methods are batched by optim_batch_size (None: the domain's, else batch_size),
    its other methods by batch_size; the stores are laid out so, and the plan and the provenance say so."""
    import dataclasses

    from restyle_lab.mini.dataset import write_test_set
    from restyle_lab.records.store import stored_units
    from restyle_lab.run.lab import Lab
    from restyle_lab.run.planning import method_costs

    data = write_test_set(tmp_path / "data", n=3)
    base = dict(domain="mini", data_root=str(data), out_dir=str(tmp_path / "out" / "quality_time"), smoke=True)
    lab = Lab.from_parameters("quality_time", None, **base)
    assert lab.batch_size(lab.spec("optim_w")) == lab.batch_size(lab.spec("restyle_psp+optim")) == 32
    assert lab.batch_size(lab.spec("restyle_psp")) == 8
    lab.domain = dataclasses.replace(lab.domain, optim_batch_size=None)  # a domain that sets none
    assert lab.batch_size(lab.spec("optim_w")) == 8

    lab = Lab.from_parameters("quality_time", None, batch_size=1, optim_batch_size=3, **base)
    logs = []
    costs = {c.method: c for c in method_costs([lab], log=logs.append)}
    assert costs["optim_w"].batch_size == costs["restyle_psp+optim"].batch_size == 3
    assert costs["psp"].batch_size == costs["restyle_psp"].batch_size == 1
    # on a CPU the probe times 1 image, then the method's batch where that is cheap (per image it is not the same)
    again = sorted(line.split()[3] for line in logs if "again at its batch (3 images)" in line)
    assert again == ["optim_w", "restyle_e4e+optim", "restyle_psp+optim"], logs
    assert all(costs[m].step_seconds > 0 for m in costs)
    _, provenance = lab.evaluate(["optim_w", "psp"], progress=False)
    assert len(stored_units(lab.store(lab.spec("optim_w")), "optim_w")) == 1  # the 3 images in one batch
    assert len(stored_units(lab.store(lab.spec("psp")), "psp")) == 3
    assert {m: e["batch_size"] for m, e in provenance["methods"].items()} == {"optim_w": 3, "psp": 1}
    assert "batch_size" not in provenance, "one batch size for the notebook would misstate one of its methods"


# ------------------------------------------------------------------ a store that describes itself (issue 21)

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished run of one single-pass method: 4 images in 2 batches."""
    from restyle_lab.inversion.evaluate import evaluate

    root = tmp_path_factory.mktemp("small")
    paths = write_tiny_checkpoints(root / "ckpt")
    data = write_tiny_images(root / "data", n=4)
    method = {"name": "psp", "kind": "single", "checkpoint": str(paths["psp"])}
    run = evaluate(root / "run", data, [method], metrics=["mse_pm1"], batch_size=2, progress=False,
                   log=lambda *a: None)
    return run, data, method


def again(small_run, run_dir):
    """The same evaluation into run_dir: (its log lines, the rows)."""
    from restyle_lab.inversion.evaluate import evaluate

    _, data, method = small_run
    lines = []
    evaluate(run_dir, data, [method], metrics=["mse_pm1"], batch_size=2, progress=False, log=lines.append)
    return "\n".join(lines), read_results(run_dir)


def test_parts_record_their_images_batch_and_setup(small_run):
    from restyle_lab.records.parts import read_record

    run, _, _ = small_run
    record = read_record(run / "parts" / "psp" / "b000001.parquet")
    assert (record.batch, record.batch_size, record.indices, record.names) == (1, 2, (2, 3),
                                                                              ("test_0002.png", "test_0003.png"))
    assert record.setup["dtype"] == "float32" and record.spec["kind"] == "single" and record.spec["family"] == "psp"
    assert record.sha256 and len(record.sha256) == 2 and all(len(h) == 64 for h in record.sha256)
    stored = np.load(run / "latents" / "psp" / "b000001.npz")
    assert list(stored["indices"]) == [2, 3] and json.loads(str(stored["record"]))["batch"] == 1


def test_a_lost_or_damaged_provenance_is_rebuilt_from_the_parts(small_run, tmp_path, capsys):
    import shutil

    from restyle_lab.cli import main

    run = tmp_path / "run"
    shutil.copytree(small_run[0], run)
    before = read_results(run)
    for damage in ("", "[]", '{"methods": []}'):
        path = run / "provenance.json"
        path.unlink() if not damage else path.write_text(damage)
        assert main(["summary", str(run)]) == 0
        assert "the next evaluate into this run rebuilds it" in capsys.readouterr().out
        log, rows = again(small_run, run)
        assert "checking this run against the records its parts carry" in log and "computed" not in log
        pd.testing.assert_frame_equal(rows, before)
        provenance = json.loads(path.read_text())
        assert provenance["batch_size"] == 2 and set(provenance["methods"]) == {"psp"}


def test_damaged_latents_are_found_on_resume_and_redone(small_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run[0], run)
    before = comparable(read_results(run))
    first, second = run / "latents" / "psp" / "b000000.npz", run / "latents" / "psp" / "b000001.npz"
    arrays = dict(np.load(first))
    arrays["names"] = arrays["names"].astype(object)  # pickled objects
    with open(first, "wb") as fh:
        np.savez(fh, **arrays)
    raw = bytearray(second.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # a flipped bit inside a member: its CRC fails
    second.write_bytes(bytes(raw))
    log, rows = again(small_run, run)
    assert "redoing psp batch 0" in log and "pickled objects" in log
    assert "redoing psp batch 1" in log and "CRC" in log and "computed 2 (method, batch) unit(s)" in log
    pd.testing.assert_frame_equal(comparable(rows), before)


def test_latents_cut_to_fewer_style_vectors_are_found_and_redone(small_run, tmp_path):
    """Cut to 3 of their 10 style vectors, a unit's latents still agree with themselves (names, steps); the record
    of what was written (in the npz, and in the part when the npz's own is gone too) finds them."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run[0], run)
    before = comparable(read_results(run))
    for unit, drop in (("b000000", ("record",)), ("b000001", ())):
        path = run / "latents" / "psp" / f"{unit}.npz"
        arrays = {k: v for k, v in np.load(path).items() if k not in drop and k != "start_latent"}
        arrays["latents"] = arrays["latents"][:, :, :3]
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    log, rows = again(small_run, run)
    assert "redoing psp batch 0" in log and "redoing psp batch 1" in log
    assert log.count("its latents have 3 style vectors of 32 values; 10 style vectors of 32 values were written") == 2
    pd.testing.assert_frame_equal(comparable(rows), before)
    assert read_latents(run, "psp")["latents"].shape[2:] == (10, 32)


def test_evaluate_prints_the_images_it_was_given_and_merges_another_folder_only_when_asked(small_run, tmp_path,
                                                                                           capsys):
    """The table covers this command's images: a smaller --n-images, or another folder (two of the run's photos
    under new names) added with --merge-data, which is refused without it, changing nothing."""
    import shutil

    from restyle_lab.cli import main
    from restyle_lab.records.views import summary_table

    run = tmp_path / "run"
    shutil.copytree(small_run[0], run)
    _, data, method = small_run
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(data / "test_0000.png", other / "x.png")
    shutil.copy(data / "test_0003.png", other / "y.png")
    args = ["evaluate", "--out", str(run), "--method", f"psp=single:{method['checkpoint']}", "--metrics", "mse_pm1",
            "--batch-size", "2"]
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and "locks" not in p.parts}
    assert main([*args, "--data", str(other)]) == 2
    assert "add --merge-data" in capsys.readouterr().err
    assert files == {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and "locks" not in p.parts}
    for extra, names in ((["--data", str(data), "--n-images", "2"], ("test_0000.png", "test_0001.png")),
                         (["--data", str(other), "--merge-data"], ("x.png", "y.png"))):
        assert main([*args, *extra]) == 0
        out = capsys.readouterr().out
        shas = {e["name"]: e["sha256"] for e in json.loads((run / "dataset_manifest.json").read_text())["files"]}
        given = read_results(run, images={n: (i, shas[n]) for i, n in enumerate(names)})
        assert set(given["image"]) == set(names)
        assert summary_table(given).to_string() in out
        assert summary_table(read_results(run)).to_string() not in out  # every image the run holds
    assert len(set(read_results(run)["image"])) == 6


def test_a_file_rewritten_with_its_mtime_set_back_is_checked_again(small_run, tmp_path):
    """Units found whole are not read again (checked.json) until their size, mtime or ctime changes."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run[0], run)
    log, _ = again(small_run, run)  # checks the copied units once, and remembers them
    assert "computed" not in log and json.loads((run / "checked.json").read_text())
    path = run / "latents" / "psp" / "b000001.npz"
    st = path.stat()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    with open(path, "r+b") as fh:  # in place: same size
        fh.write(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    log, _ = again(small_run, run)
    assert "redoing psp batch 1" in log and "computed 1 (method, batch) unit(s)" in log
    (run / "latents" / "psp" / "b000000.npz").unlink()  # a part checked before, its latents gone since
    log, _ = again(small_run, run)
    assert "redoing psp batch 0" in log and "b000000.npz: it is missing" in log


def test_parts_from_before_unit_records_resume_but_cannot_rebuild_a_provenance(small_run, tmp_path):
    import shutil

    from restyle_lab.facts.errors import StoreError

    run = tmp_path / "run"
    shutil.copytree(small_run[0], run)
    for part in (run / "parts" / "psp").glob("*.parquet"):
        pd.read_parquet(part).to_parquet(part, index=False)  # as an older restyle-lab wrote them: no record
    log, _ = again(small_run, run)
    assert "computed" not in log
    (run / "provenance.json").unlink()
    with pytest.raises(StoreError, match="does not record the setup that made it"):  # lost: not rebuilt, refused
        again(small_run, run)
