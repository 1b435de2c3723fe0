"""Bad input and misuse at the command line: every case ends as one ``error:`` line naming the thing and the
fix, exit status 2, no traceback, and nothing already on disk is changed.

THE TABLE GROWS: each kind of bad input or misuse found gets a row here (docs/guide/troubleshooting.md, "When
things go wrong", counts them).
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from nvlabs_pickles import (
    tiny_snapshot,
    write_code_pickle,
    write_plain_pickle,
    write_snapshot,
    write_storage_code_pickle,
    write_truncated,
    write_unknown_class_pickle,
)
from PIL import Image
from tiny import write_tiny_checkpoints, write_tiny_images

from restyle_lab.cli import main
from restyle_lab.facts.configs import TINY
from restyle_lab.training import presets

# a restyle-psp-church run at the smallest settings (one image per batch, one iteration, no pretrained file, a
# state every step), trained with a narrow backbone (see _narrow_backbone) against the tiny generator
TRAIN = ("train", "--preset", "restyle-psp-church", "--generator", "{ck}/generator.pt", "--data", "{data}",
         "--workdir", "{tmp}/w", "--iters", "2", "--save_interval", "1", "--batch_size", "1", "--n_iters_per_batch",
         "1", "--backbone-init", "random", "--moco_lambda", "0", "--lpips_lambda", "0", "--lr_schedule", "cosine")
HELD = {}  # open files a setup keeps (a lock held as by another process), closed when its test ends


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple  # {ck}: tiny checkpoints, {data}: 3 good images, {tmp}: this case's folder, {run}: a run (1 unit)
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
    # your own photos and generators: alignment, NVlabs snapshots
    Case("align size not offered", ("align", "--images", "{data}", "--out", "{tmp}/a", "--size", "512"),
         "argument --size: invalid choice: 512"),
    Case("align into a used folder", ("align", "--images", "{data}", "--out", "{tmp}/used"), "is not an empty folder",
         "used_out"),
    Case("align, no face in any image", ("align", "--images", "{tmp}/faceless", "--out", "{tmp}/a"),
         "no face found in any of the 3 image(s)", "faceless"),
    Case("evaluate --align, no face in any image", ("evaluate", "--data", "{tmp}/faceless", "--out", "{tmp}/r",
                                                    "--method", "single:{ck}/psp.pt", "--align"),
         "none of its 3 image files could be read (no face found (MTCNN): 3)", "faceless"),
    Case("snapshot pickling os.system (convert)", ("convert", "{tmp}/evil.pkl", "{tmp}/g.pt"),
         "refused: the pickle references posix.system", "code_pickle"),
    Case("snapshot pickling os.system (--generator)", ("sample", "--generator", "{tmp}/evil.pkl", "--out", "{tmp}/s"),
         "refused: the pickle references posix.system", "code_pickle"),
    Case("snapshot of an unknown class", ("convert", "{tmp}/unknown.pkl", "{tmp}/g.pt"),
         "references training.networks.Generator", "unknown_class_pickle"),
    Case("snapshot truncated", ("convert", "{tmp}/cut.pkl", "{tmp}/g.pt"), "truncated or corrupt?", "cut_pickle"),
    Case("convert onto an existing file", ("convert", "{tmp}/cut.pkl", "{tmp}/cut.pkl"),
         "exists; give a new file name", "cut_pickle"),
    # security: a parameters file is data, it never runs code (issue 21)
    Case("params file with a !!binary value (code injection)", ("reproduce", "--params", "{tmp}/binary.yml"),
         "data_root: a bytes value is not allowed", "binary_yaml"),
    Case("params file with a date", ("reproduce", "--params", "{tmp}/date.yml"),
         "n_images: a datetime.date value is not allowed", "date_yaml"),
    Case("params file, a path that is not text", ("reproduce", "--params", "{tmp}/pathtype.yml"),
         "checkpoints must be a path or a mapping of text to a path or null. Got: int 5",
         "pathtype_yaml"),
    Case("params file, a number that is not finite", ("reproduce", "--params", "{tmp}/nan.yml"),
         "truncation: nan is not a finite number", "nan_yaml"),
    Case("params file nested 100,000 deep", ("reproduce", "--params", "{tmp}/deep.yml"), "nested too deeply",
         "deep_yaml"),
    Case("methods-json nested 100,000 deep", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--methods-json",
                                              "{tmp}/deep.json"), "nested too deeply", "deep_json"),
    # outputs: nothing is lost on overwrite, no command replaces a file it did not write
    Case("invert --overwrite, every input unreadable", ("invert", "--checkpoint", "{ck}/psp.pt", "--images",
                                                        "{tmp}/bad", "--out", "{tmp}/o", "--overwrite"),
         "the earlier outputs in {tmp}/o are kept as they were", "earlier_invert"),
    Case("invert --overwrite over sample's latents", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}",
                                                      "--out", "{tmp}/s", "--overwrite"),
         "latents.npz (written by restyle-lab sample)", "sampled"),
    Case("mini-data over the user's files", ("mini-data", "--n", "2", "--out", "{tmp}/mine"),
         "attributes.csv (not written by restyle-lab)", "users_files"),
    Case("export-latents to a folder", ("export-latents", "{run}", "single_psp", "{tmp}"),
         "is a folder; give the path of the .npy file to write"),
    Case("export-latents over an existing file", ("export-latents", "{run}", "single_psp", "{tmp}/file.txt"),
         "already exists; choose another path, or add --overwrite", "out_file"),
    Case("a full disk names the file", ("export-latents", "{run}", "single_psp", "{tmp}/l.npy"),
         "{tmp}/l.npy: No space left on device (nothing was written", "disk_full"),
    # methods
    Case("method name ending in a newline", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                             "a\n=single:{ck}/psp.pt"), "method name 'a\\n' must start"),
    Case("300-character method name", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                       "m" * 300 + "=single:{ck}/psp.pt"), "is 300 characters long; at most 100"),
    Case("a ':' in a checkpoint path", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                        "restyle:{tmp}/a:b/restyle.pt"),
         "'b/restyle.pt' is not a STEPS count, and there is no file '{tmp}/a:b/restyle.pt'"),
    # checkpoints: damaged, malformed, special
    Case("checkpoint with a flipped byte", ("info", "{tmp}/flipped.pt"), "fails the zip CRC check", "flipped"),
    Case("packed checkpoint with a flipped byte", ("info", "{tmp}/p/flipped.pt"), "fails the zip CRC check",
         "packed_flipped"),
    Case("checkpoint with NaN weights", ("info", "{tmp}/nan.pt"), "non-finite values (NaN or inf) in encoder",
         "nan_weights"),
    Case("checkpoint with an infinite latent_avg", ("info", "{tmp}/inf.pt"),
         "non-finite values (NaN or inf) in the entry latent_avg", "inf_latent_avg"),
    Case("non-finite latents (invert)", ("invert", "--checkpoint", "{ck}/psp.pt", "--images", "{data}", "--out",
                                         "{tmp}/o"), "non-finite latents (NaN or inf) for test_0000.png", "nan_latents"),
    Case("checkpoint whose opts is text", ("info", "{tmp}/opts.pt"), "its 'opts' entry is a str", "opts_text"),
    Case("restyle_lab entry without family", ("info", "{tmp}/family.pt"), "its restyle_lab entry lacks 'family'",
         "no_family"),
    Case("checkpoint is a FIFO", ("info", "{tmp}/fifo.pt"), "a FIFO (named pipe), not a regular file", "fifo"),
    Case("method checkpoint is a FIFO", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                         "single:{tmp}/fifo.pt"), "a FIFO (named pipe), not a regular file", "fifo"),
    Case("packed decoder outside its folder", ("info", "{tmp}/p/escape.pt"),
         "names the decoder '../../etc/passwd', which is not a plain file name", "packed_escape"),
    Case("packed decoder is /dev/zero", ("info", "{tmp}/p/packed.pt"), "is not a regular file", "packed_zero"),
    # data and settings files: regular files only, size caps
    Case("data: only a FIFO and /dev/zero behind links", ("evaluate", "--data", "{tmp}/special", "--out", "{tmp}/r",
                                                          "--method", "single:{ck}/psp.pt"),
         "none of its 2 image files could be read (not a regular file: 2)", "special_images"),
    Case("every image over the size cap", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                           "single:{ck}/psp.pt"), "none of its 3 image files could be read (over the size cap: 3)", "tiny_cap"),
    Case("params file is a FIFO", ("reproduce", "--params", "{tmp}/fifo.yml"), "a FIFO (named pipe), not a regular",
         "fifo"),
    Case("a stray latents.npz in --data", ("evaluate", "--data", "{tmp}/stray", "--out", "{tmp}/r", "--method",
                                           "single:{ck}/psp.pt"), "not the true latents `restyle-lab sample` writes",
         "stray_latents"),
    # run stores: self-describing parts, damaged files found, incomplete runs said
    Case("resume without provenance.json, another dtype", ("evaluate", "--data", "{data}", "--out", "{tmp}/r",
                                                           "--method", "single:{ck}/psp.pt", "--metrics", "mse_pm1",
                                                           "--dtype", "float64"),
         '(dtype: stored "float32" vs now "float64")', "no_provenance"),
    Case("resume with provenance.json edited", ("evaluate", "--data", "{data}", "--out", "{tmp}/r", "--method",
                                                "single:{ck}/psp.pt", "--metrics", "mse_pm1", "--dtype", "float64"),
         'was made by a different setup (dtype: "float32" vs now "float64")', "edited_provenance"),
    Case("a part with text values", ("summary", "{tmp}/r"), "its columns or their types are not the result columns",
         "text_values"),
    Case("a part with NaN values marked ok", ("summary", "{tmp}/r"), "it holds non-finite values marked 'ok'",
         "nan_values"),
    Case("latents without names", ("export-latents", "{tmp}/r", "single_psp", "{tmp}/l.npy"), "it lacks names",
         "latents_no_names"),
    Case("latents of the wrong shape", ("export-latents", "{tmp}/r", "single_psp", "{tmp}/l.npy"),
         "latents have shape (1, 1, 10, 32); expected (1, 3, n_styles, dim)", "latents_shape"),
    Case("latents holding pickled objects", ("export-latents", "{tmp}/r", "single_psp", "{tmp}/l.npy"),
         "a member holds pickled objects", "latents_object"),
    Case("latents with a bad CRC", ("export-latents", "{tmp}/r", "single_psp", "{tmp}/l.npy"),
         "Bad CRC-32", "latents_crc"),
    Case("export of an incomplete run", ("export-latents", "{tmp}/r", "single_psp", "{tmp}/l.npy"),
         "has 2 of the 3 images it was asked for stored; finish the run", "incomplete"),
    # the new verbs and runs that mix data sets (issue 27): training state and resumes
    Case("train state with a bad CRC", TRAIN, "state.pt: damaged training state: its member", "train_crc"),
    Case("train state truncated", TRAIN, "not a readable zip archive", "train_cut"),
    Case("train state empty", TRAIN, "it is empty (0 bytes); it is never resumed from: to resume from the state "
         "before it, `mv {tmp}/w/restyle-psp-church/state.prev.pt {tmp}/w/restyle-psp-church/state.pt`",
         "train_empty"),
    Case("train state with a NaN weight", TRAIN, "non-finite values (NaN or inf) in encoder.", "train_nan"),
    Case("train resumed with another --method", (*TRAIN, "--method", "restyle_e4e"),
         "trained with other options (family: 'restyle_psp' now 'restyle_e4e'", "train_state"),
    Case("train resumed with another batch size", (*TRAIN, "--batch_size", "2"),
         "trained with other options (batch_size: 1 now 2)", "train_state"),
    Case("train resumed with another step count under a cosine schedule", (*TRAIN, "--iters", "3"),
         "trained with other options (max_steps: 2 now 3)", "train_state"),
    Case("train resumed with another --dtype", (*TRAIN, "--dtype", "float64"),
         "the run was trained with --dtype float32, this one has --dtype float64; give --dtype float32", "train_state"),
    Case("a second train in a folder being trained", TRAIN, "another training run (process", "train_running"),
    # training options and presets
    Case("train --learning_rate nan", ("train", "--preset", "mini-psp", "--learning_rate", "nan"),
         "learning_rate must be a finite number above 0. Got: nan"),
    Case("a real preset misspelt", ("train", "--preset", "restyle-psp-chruch"),
         "unknown preset 'restyle-psp-chruch' (did you mean 'restyle-psp-church'"),
    Case("--domain mini on a real preset", ("train", "--preset", "psp-church", "--domain", "mini", "--generator",
                                            "{ck}/generator.pt", "--data", "{data}"),
         "--domain mini: psp-church trains for a real domain"),
    Case("--method on a mini preset", ("train", "--preset", "mini-psp", "--method", "e4e"),
         "--method applies to the real domains' presets; mini-psp is a fixed recipe"),
    Case("an encoder option for the GAN preset", ("train", "--preset", "mini-gan", "--learning_rate", "0.1"),
         "--learning_rate applies to the encoder presets; mini-gan takes"),
    Case("--dry-run of the GAN preset", ("train", "--preset", "mini-gan", "--dry-run", "--workdir", "{tmp}/w"),
         "--dry-run applies to the encoder presets"),
    # convert: the snapshot checked whole before anything is allocated, the output written whole or not at all
    Case("snapshot without z_dim", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"), "G_ema.z_dim is missing",
         "snapshot_no_z_dim"),
    Case("snapshot with z_dim as text", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"),
         "G_ema.z_dim is 'sixty' (str), not a whole number", "snapshot_text_z_dim"),
    Case("snapshot without a weight", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"), "b8.conv1.weight is missing",
         "snapshot_no_weight"),
    Case("snapshot without noise_const", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"), "b8.conv1.noise_const is missing",
         "snapshot_no_noise"),
    Case("snapshot claiming z/w 20,000", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"),
         "G_ema.z_dim is 20000; restyle-lab converts 1 to 4096", "snapshot_huge"),
    Case("snapshot with a w_avg of the wrong length", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"),
         "G_ema.mapping.w_avg has shape [7]; the sizes the snapshot claims (w_dim 8", "snapshot_short_w_avg"),
    Case("snapshot whose tensor storage pickles os.system", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"),
         "refused: the pickle references posix.system (inside a tensor storage blob)", "snapshot_code_storage"),
    Case("convert into a read-only folder", ("convert", "{tmp}/s.pkl", "{tmp}/ro/g.pt"),
         "{tmp}/ro/g.pt: Permission denied (nothing was written", "snapshot_read_only"),
    Case("convert on a full disk", ("convert", "{tmp}/s.pkl", "{tmp}/g.pt"),
         "{tmp}/g.pt: No space left on device (nothing was written", "snapshot_disk_full"),
    Case("snapshot is a FIFO", ("convert", "{tmp}/fifo.pkl", "{tmp}/g.pt"), "a FIFO (named pipe), not a regular file",
         "snapshot_special"),
    Case("snapshot is /dev/zero", ("convert", "{tmp}/zero.pkl", "{tmp}/g.pt"), "a character device, not a regular",
         "snapshot_special"),
    Case("a checkpoint renamed .pkl", ("convert", "{tmp}/g.pkl", "{tmp}/g.pt"),
         "a torch.save zip archive (a PyTorch checkpoint), not an NVlabs network pickle", "snapshot_zip"),
    Case("info on an NVlabs snapshot", ("info", "{tmp}/s.pkl"),
         "convert its generator with `restyle-lab convert {tmp}/s.pkl generator.pt`", "snapshot_plain"),
    Case("an NVlabs snapshot named .pt as --generator", ("sample", "--generator", "{tmp}/s.pt", "--out", "{tmp}/x"),
         "an NVlabs network pickle (a stylegan2-ada-pytorch snapshot), not a PyTorch checkpoint: convert",
         "snapshot_plain"),
    # align reads as the other verbs read
    Case("align, a FIFO and /dev/zero behind links", ("align", "--images", "{tmp}/special", "--out", "{tmp}/a"),
         "none of the 2 image(s) of {tmp}/special could be aligned (not a regular file: 2)", "special_images"),
    Case("align, a corrupt JPEG", ("align", "--images", "{tmp}/corrupt", "--out", "{tmp}/a"),
         "none of the 1 image(s) of {tmp}/corrupt could be aligned (UnidentifiedImageError: 1)", "corrupt_jpeg"),
    # runs that mix data sets, damaged layouts
    Case("evaluate another data folder into a run", ("evaluate", "--data", "{tmp}/other", "--out", "{run}", "--method",
                                                     "single:{ck}/psp.pt", "--metrics", "mse_pm1"),
         "holds results for the images of {data}, not of {tmp}/other; evaluate {tmp}/other into another --out, or "
         "add --merge-data", "other_data"),
    Case("summary of a run whose parts/ is a file", ("summary", "{tmp}/r"), "{tmp}/r/parts is not a folder",
         "parts_file"),
    Case("latents cut to 3 of their 10 style vectors", ("export-latents", "{tmp}/r", "single_psp", "{tmp}/l.npy"),
         "its latents have 3 style vectors of 32 values", "latents_cut"),
]


def flip_byte(path: Path) -> None:
    """Flip one byte inside the stored data of the largest zip member (a bit rot its CRC catches)."""
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    raw = bytearray(path.read_bytes())
    with open(path, "rb") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
    raw[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(raw))


def edit_latents(path: Path, change) -> None:
    arrays = dict(np.load(path))
    change(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _narrow_backbone(monkeypatch) -> None:
    """The real presets' ResNet34 as a narrow ResNet (its state is 7 MB, not 370): the table needs real states."""
    monkeypatch.setitem(presets.BACKBONES, "resnet", TINY["tiny-restyle-psp-resnet"].backbone)


def _trained(ck: Path, data: Path, run: Path) -> Path:
    """The workdir of a TRAIN run, trained once per module (beside the module's run)."""
    workdir = run.parent / "trained"
    if not workdir.exists():
        with pytest.MonkeyPatch.context() as mp:
            _narrow_backbone(mp)
            argv = [a.format(ck=ck, data=data, tmp=run.parent / "training") for a in TRAIN]
            assert main(argv) == 0
        shutil.move(run.parent / "training" / "w", workdir)
    return workdir


def _setup(kind: str, tmp: Path, ck: Path, data: Path, run: Path, monkeypatch=None) -> None:
    if kind in ("no_provenance", "edited_provenance", "text_values", "nan_values", "parts_file") \
            or kind.startswith("latents_"):
        shutil.copytree(run, tmp / "r")
    if kind.startswith("train_"):
        _narrow_backbone(monkeypatch)
        shutil.copytree(_trained(ck, data, run), tmp / "w")
        state = tmp / "w" / "restyle-psp-church" / "state.pt"
    if kind.startswith("snapshot_"):
        write_snapshot(tmp / "s.pkl")
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
    elif kind == "run":
        pass
    elif kind.endswith("_yaml"):
        payload = f'"+str(__import__("os").system("touch {tmp}/pwned"))+"'.encode()
        text = {"bad_yaml": "n_images: [1, 2", "typo_yaml": "n_imagse: 4", "negative_yaml": "n_images: -1",
                "fixed_yaml": "out_dir: elsewhere", "wrong_notebook_yaml": "latent_change:\n  n_show: 3",
                "strengths_yaml": "editing:\n  strengths: 1,2", "source_yaml": "editing:\n  source: stylespace",
                "binary_yaml": f"data_root: !!binary {base64.b64encode(payload).decode()}\n",
                "date_yaml": "n_images: 2024-01-01", "pathtype_yaml": "checkpoints: 5", "nan_yaml": "truncation: .nan",
                "deep_yaml": "[" * 100_000 + "]" * 100_000}[kind]
        (tmp / (kind.split("_yaml")[0].replace("_notebook", "nb") + ".yml")).write_text(text)
    elif kind == "faceless":
        (tmp / "faceless").mkdir()
        ramp = np.linspace(0, 255, 64, dtype=np.uint8)
        for k in range(3):  # flat colours and ramps: no face anywhere
            arr = np.stack([np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)), np.full((64, 64), 80 * k)], -1)
            Image.fromarray(arr.astype(np.uint8)).save(tmp / "faceless" / f"plain_{k}.png")
    elif kind == "code_pickle":
        write_code_pickle(tmp / "evil.pkl", tmp / "ran.txt")  # the table checks that no file appears
    elif kind == "unknown_class_pickle":
        write_unknown_class_pickle(tmp / "unknown.pkl")
    elif kind == "cut_pickle":
        write_truncated(write_plain_pickle(tmp / "whole.pkl"), tmp / "cut.pkl")
    elif kind == "deep_json":
        (tmp / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "earlier_invert":
        assert main(["invert", "--checkpoint", str(ck / "psp.pt"), "--images", str(data), "--out", str(tmp / "o"),
                     "--steps", "1"]) == 0
        _setup("bad_images", tmp, ck, data, run)
    elif kind == "sampled":
        assert main(["sample", "--generator", str(ck / "generator.pt"), "--out", str(tmp / "s"), "--n", "2"]) == 0
    elif kind == "users_files":
        (tmp / "mine").mkdir()
        (tmp / "mine" / "test_0000.png").write_bytes((data / "test_0000.png").read_bytes())
        (tmp / "mine" / "attributes.csv").write_text("image,age\ntest_0000.png,41\n")
    elif kind == "disk_full":
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() raises: no file name

        monkeypatch.setattr(np, "save", full)
    elif kind in ("flipped", "nan_weights", "inf_latent_avg", "opts_text", "no_family"):
        ckpt = torch.load(ck / "psp.pt", weights_only=True)
        if kind == "nan_weights":
            key = next(k for k in ckpt["state_dict"] if k.startswith("encoder.") and k.endswith("weight"))
            ckpt["state_dict"][key][0] = float("nan")
        elif kind == "inf_latent_avg":
            ckpt["latent_avg"][0, 0] = float("inf")
        elif kind == "opts_text":
            ckpt["opts"] = "--encoder_type GradualStyleEncoder"
        elif kind == "no_family":
            del ckpt["restyle_lab"]["family"]
        name = {"flipped": "flipped", "nan_weights": "nan", "inf_latent_avg": "inf", "opts_text": "opts",
                "no_family": "family"}[kind]
        torch.save(ckpt, tmp / f"{name}.pt")
        if kind == "flipped":
            flip_byte(tmp / "flipped.pt")
    elif kind.startswith("packed_"):
        from restyle_lab.records.packing import PACKED_KEY, pack

        (tmp / "p").mkdir()
        pack(ck / "psp.pt", tmp / "p" / "packed.pt", ck / "generator.pt")
        if kind == "packed_flipped":
            shutil.copy(tmp / "p" / "packed.pt", tmp / "p" / "flipped.pt")
            flip_byte(tmp / "p" / "flipped.pt")
        elif kind == "packed_escape":
            ckpt = torch.load(tmp / "p" / "packed.pt", weights_only=True)
            ckpt[PACKED_KEY]["decoder_file"] = "../../etc/passwd"
            torch.save(ckpt, tmp / "p" / "escape.pt")
        elif kind == "packed_zero":
            (tmp / "p" / "generator.pt").symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(tmp / "fifo.pt")
        os.mkfifo(tmp / "fifo.yml")
    elif kind == "special_images":
        (tmp / "special").mkdir()
        os.mkfifo(tmp / "pipe")
        (tmp / "special" / "a.png").symlink_to(tmp / "pipe")
        (tmp / "special" / "b.png").symlink_to("/dev/zero")
    elif kind == "nan_latents":  # what a diverging network or an fp16 overflow would give
        import dataclasses

        from restyle_lab.inversion import inverters

        real = inverters.iterate_naive

        def diverging(*args, **kwargs):
            for step in real(*args, **kwargs):
                yield dataclasses.replace(step, latent=step.latent * float("nan"))

        monkeypatch.setattr(inverters, "iterate_naive", diverging)
    elif kind == "tiny_cap":
        monkeypatch.setattr("restyle_lab.records.data.MAX_IMAGE_BYTES", 10)
    elif kind == "stray_latents":
        shutil.copytree(data, tmp / "stray")
        (tmp / "stray" / "latents.npz").write_text("my notes, not latents")
    elif kind == "no_provenance":
        (tmp / "r" / "provenance.json").unlink()
    elif kind == "edited_provenance":
        provenance = json.loads((tmp / "r" / "provenance.json").read_text())
        (tmp / "r" / "provenance.json").write_text(json.dumps({**provenance, "dtype": "float64"}))
    elif kind in ("text_values", "nan_values"):
        part = tmp / "r" / "parts" / "single_psp" / "b000000.parquet"
        rows = pd.read_parquet(part)
        rows["value"] = rows["value"].astype(str) if kind == "text_values" else float("nan")
        rows.to_parquet(part)
    elif kind.startswith("latents_"):
        path = tmp / "r" / "latents" / "single_psp" / "b000000.npz"
        if kind == "latents_crc":
            flip_byte(path)
        else:
            edit_latents(path, {"latents_no_names": lambda a: a.pop("names"),
                                "latents_shape": lambda a: a.update(latents=a["latents"][:, :1]),
                                "latents_cut": lambda a: a.update(latents=a["latents"][:, :, :3]),
                                "latents_object": lambda a: a.update(names=a["names"].astype(object))}[kind])
    elif kind == "train_crc":
        flip_byte(state)
    elif kind == "train_cut":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif kind == "train_empty":
        state.write_bytes(b"")
    elif kind == "train_nan":
        saved = torch.load(state, weights_only=True)
        next(iter(saved["encoder"].values())).view(-1)[0] = float("nan")
        torch.save(saved, state)
    elif kind == "train_running":  # held here as a training process holds it
        (state.parent / "locks").mkdir(exist_ok=True)
        fh = open(state.parent / "locks" / "train.lock", "a+")
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        monkeypatch.setitem(HELD, "lock", fh)
    elif kind in ("snapshot_no_z_dim", "snapshot_text_z_dim", "snapshot_no_weight", "snapshot_no_noise",
                  "snapshot_huge", "snapshot_short_w_avg"):
        snap = tiny_snapshot()
        g = snap["G_ema"].state
        conv = g["_modules"]["synthesis"].state["_modules"]["b8"].state["_modules"]["conv1"].state
        {"snapshot_no_z_dim": lambda: g.pop("z_dim"), "snapshot_text_z_dim": lambda: g.update(z_dim="sixty"),
         "snapshot_no_weight": lambda: conv["_parameters"].pop("weight"),
         "snapshot_no_noise": lambda: conv["_buffers"].pop("noise_const"),
         "snapshot_huge": lambda: g.update(z_dim=20_000, w_dim=20_000),
         "snapshot_short_w_avg": lambda: g["_modules"]["mapping"].state["_buffers"].update(w_avg=torch.zeros(7)),
         }[kind]()
        write_snapshot(tmp / "s.pkl", snap)
    elif kind == "snapshot_code_storage":
        write_storage_code_pickle(tmp / "s.pkl", tmp / "ran.txt")  # the table checks that no file appears
    elif kind == "snapshot_read_only":
        (tmp / "ro").mkdir()
        (tmp / "ro").chmod(0o555)
        if os.geteuid() == 0:  # root writes anywhere: the folder refuses as the system refuses everyone else
            def refusing(file, mode="r", *args, **kwargs):
                if "w" in mode and Path(file).parent == tmp / "ro":
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
                return open(file, mode, *args, **kwargs)

            monkeypatch.setattr("restyle_lab.records.files.open", refusing, raising=False)
    elif kind == "snapshot_disk_full":
        real_save = torch.save

        def onto_a_full_disk(obj, f, *args, **kwargs):  # torch.save's own behaviour: /dev/full refuses every write
            if isinstance(f, (str, os.PathLike)):
                return real_save(obj, "/dev/full", *args, **kwargs)
            with open("/dev/full", "wb") as full:
                return real_save(obj, full, *args, **kwargs)

        monkeypatch.setattr(torch, "save", onto_a_full_disk)
    elif kind == "snapshot_special":
        os.mkfifo(tmp / "fifo.pkl")
        (tmp / "zero.pkl").symlink_to("/dev/zero")
    elif kind == "snapshot_zip":
        shutil.copy(ck / "generator.pt", tmp / "g.pkl")
    elif kind == "snapshot_plain":
        shutil.copy(tmp / "s.pkl", tmp / "s.pt")
    elif kind == "corrupt_jpeg":
        (tmp / "corrupt").mkdir()
        (tmp / "corrupt" / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64) + b"not a JPEG after all")
    elif kind == "other_data":
        (tmp / "other").mkdir()
        shutil.copy(data / "test_0000.png", tmp / "other" / "x.png")  # the same photo under another name
    elif kind == "parts_file":
        shutil.rmtree(tmp / "r" / "parts")
        (tmp / "r" / "parts").write_text("not the folder of result parts")
    elif kind == "incomplete":
        assert main(["evaluate", "--data", str(data), "--out", str(tmp / "r"), "--method", f"single:{ck}/psp.pt",
                     "--metrics", "mse_pm1", "--batch-size", "2"]) == 0
        (tmp / "r" / "parts" / "single_psp" / "b000001.parquet").unlink()
        (tmp / "r" / "latents" / "single_psp" / "b000001.npz").unlink()


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
        _setup(case.setup, tmp_path, ck, data, run, monkeypatch)
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
    assert "Traceback" not in err and "weights_only=False" not in err
    assert case.message.format(**fill) in err, err
    after = {"tmp": snapshot(tmp_path), "run": snapshot(run), "ck": snapshot(ck)}
    new = set(after["tmp"]) - set(before["tmp"])
    allowed_new = {"every image unreadable (invert)": {"o/errors.csv", "o/.restyle-lab-outputs.json"},
                   "align, no face in any image": {"a/errors.csv"}, "align, a corrupt JPEG": {"a/errors.csv"},
                   "align, a FIFO and /dev/zero behind links": {"a/errors.csv"}}.get(case.id, set())
    assert not (tmp_path / "pwned").exists(), "a parameters file ran code"
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
    """The docs' 'When things go wrong' states this count; update it when the table grows."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "troubleshooting.md").read_text()
    assert f"{len(CASES)} kinds of bad input and misuse" in page
