"""``restyle-lab reproduce``: every analysis notebook through papermill, then an index page.

Writes into ``<out>/<domain>/``: one folder per notebook (PNG/PDF figures, CSV/Parquet
tables, parameters.json, outputs.json), the executed notebooks in ``notebooks/``, the
shared run store in ``store/``, and ``index.md`` listing every figure and table with the
parameters and provenance behind it. A failing notebook does not stop the others; the
command then exits non-zero and names it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

NOTEBOOKS = ["quality_time", "latent_change", "step_heatmaps", "fpn_vs_simple", "naive_vs_restyle",
             "generator_alignment", "encoder_bootstrapping", "explorer", "editing"]
# The parameters every notebook takes, and each one's extras (README documents them; a test checks them).
COMMON_PARAMETERS = ["domain", "checkpoints", "data_root", "n_images", "steps", "device", "batch_size", "smoke",
                     "out_dir"]
EXTRA_PARAMETERS = {"quality_time": ["optim_steps"], "latent_change": ["group_scheme"], "step_heatmaps": ["n_show"],
                    "fpn_vs_simple": [], "naive_vs_restyle": ["metric"],
                    "generator_alignment": ["n_pairs", "truncation", "similarity"],
                    "encoder_bootstrapping": ["n_show"], "explorer": ["method"],
                    "editing": ["optim_steps", "source", "edits", "strengths", "interfacegan_dir", "n_samples",
                                "n_show"]}
NEEDS = {  # notebooks that need checkpoints a real domain may not have
    "generator_alignment": ("a base and a toon generator", ("faces", "toonify", "mini")),
    "encoder_bootstrapping": ("the FFHQ and toonify ReStyle encoders", ("faces", "toonify", "mini")),
}


def notebook_dir() -> Path:
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise SystemExit(f"error: the notebooks folder {folder} is missing; `reproduce` runs from a source checkout "
                         "(git clone + make setup)")
    return folder


def load_params(path) -> dict:
    if not path:
        return {}
    text = Path(path).read_text()
    if str(path).endswith((".yml", ".yaml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def params_for(name: str, args, extra: dict, out_root: Path) -> dict:
    params = {"domain": args.domain, "device": args.device, "smoke": bool(args.smoke),
              "out_dir": str(out_root / name)}
    if args.checkpoints:
        params["checkpoints"] = str(Path(args.checkpoints).resolve())
    if args.data:
        params["data_root"] = str(Path(args.data).resolve())
    flat = {k: v for k, v in extra.items() if k not in NOTEBOOKS}
    params.update(flat)
    params.update(extra.get(name, {}))
    return params


def run_reproduce(args) -> int:
    import papermill as pm
    from tqdm.auto import tqdm

    names = list(args.only or NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise SystemExit(f"error: unknown notebook(s) {unknown}; known: {', '.join(NOTEBOOKS)}")
    if args.list:
        for n in NOTEBOOKS:
            print(n)
        return 0
    if args.domain != "mini" and not (args.checkpoints and args.data):
        raise SystemExit(f"error: --domain {args.domain} needs --checkpoints DIR (the official files, see README) "
                         "and --data DIR (the test images)")
    names = [n for n in names if args.domain in NEEDS.get(n, ("", (args.domain,)))[1]]
    src = notebook_dir()
    out_root = Path(args.out).resolve() / args.domain
    (out_root / "notebooks").mkdir(parents=True, exist_ok=True)
    extra = load_params(args.params)
    if args.domain == "mini":
        from .lab import MINI_FILES
        from .mini.train import ASSETS

        missing = sorted(f for f in MINI_FILES.values() if not (ASSETS / f).exists())
        if len(missing) == len(MINI_FILES):
            raise SystemExit(f"error: the shipped mini weights are missing from {ASSETS} (a partial checkout? "
                             "`git lfs`-style pointers? regenerate them with `restyle-lab train --preset list`)")
        if missing:
            print(f"warning: {', '.join(missing)} missing from {ASSETS}; the methods that need them are skipped "
                  "(regenerate with `restyle-lab train --preset list`)")
    failures, timings = [], {}
    bar = tqdm(names, desc=f"reproduce {args.domain}", unit="notebook")
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.time()
        try:
            pm.execute_notebook(str(src / f"{name}.ipynb"), str(out_root / "notebooks" / f"{name}.ipynb"),
                                parameters=params_for(name, args, extra, out_root), kernel_name="python3",
                                cwd=str(out_root), progress_bar=False, log_output=False)
        except Exception as err:  # papermill wraps the cell's error; keep going with the others
            failures.append((name, f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300]}"))
        timings[name] = time.time() - t0
    index = write_index(out_root, names, timings, failures, args)
    total = sum(timings.values())
    print(f"\n{len(names) - len(failures)}/{len(names)} notebooks ran in {total / 60:.1f} min; index: {index}")
    for name, why in failures:
        print(f"FAILED {name}: {why}  (see {out_root / 'notebooks' / (name + '.ipynb')})")
    return 1 if failures else 0


def write_index(out_root: Path, names, timings, failures, args) -> Path:
    failed = dict(failures)
    lines = [f"# restyle-lab results: {args.domain}", "",
             f"Made by `restyle-lab reproduce --domain {args.domain}" + (" --smoke" if args.smoke else "") + "`; "
             "every file below is regenerated by that command.", ""]
    for name in names:
        folder = out_root / name
        lines += [f"## {name}", ""]
        if name in failed:
            lines += [f"**failed**: {failed[name]} (executed notebook: `notebooks/{name}.ipynb`)", ""]
        params = json.loads((folder / "parameters.json").read_text()) if (folder / "parameters.json").exists() else {}
        outputs = json.loads((folder / "outputs.json").read_text()) if (folder / "outputs.json").exists() else []
        for entry in outputs:
            files = ", ".join(f"[{f}]({name}/{f})" for f in entry["files"])
            if entry["kind"] == "figure":
                lines += [f"![{entry['caption']}]({name}/{entry['files'][0]})", "", f"*{entry['caption']}* ({files})", ""]
            else:
                lines += [f"- table **{entry['name']}**: {entry['caption']}; {entry['rows']} rows, columns "
                          f"`{', '.join(entry['columns'])}` ({files})"]
        p = params.get("parameters", {})
        prov = params.get("provenance", {})
        lines += ["", f"<details><summary>parameters and provenance ({timings.get(name, 0):.0f} s)</summary>", "",
                  "```json", json.dumps({"parameters": p, "provenance": _provenance_summary(prov)}, indent=1,
                                        default=str), "```", "</details>", ""]
    path = out_root / "index.md"
    path.write_text("\n".join(lines))
    return path


def _provenance_summary(prov: dict) -> dict:
    keep = ("package_version", "git_commit", "torch_version", "device", "dtype", "batch_size", "threads",
            "dataset_manifest_sha256", "n_images", "metrics_unavailable", "timing", "generators")
    out = {k: prov[k] for k in keep if k in prov}
    if "methods" in prov:
        out["methods"] = {name: {k: v for k, v in spec.items() if k in ("kind", "family", "steps", "checkpoint",
                                                                        "checkpoint_sha256", "loss", "record_at",
                                                                        "perceptual_unavailable", "bootstrap")}
                          for name, spec in prov["methods"].items()}
    return out
