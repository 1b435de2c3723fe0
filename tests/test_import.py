"""Importing the package compiles nothing, needs no GPU, and is quick."""

import os
import subprocess
import sys
import time

# CPU time, not wall time: a loaded machine (a training run beside the tests) stretches wall time
CODE = """
import sys, time
t = time.process_time()
import restyle_lab, restyle_lab.models, restyle_lab.models.checkpoints, restyle_lab.inversion.loops
elapsed = time.process_time() - t
import torch
assert not torch.cuda.is_initialized(), "import touched CUDA"
assert "torch.utils.cpp_extension" not in sys.modules, "import loaded the C++ extension builder"
print(elapsed)
"""


def test_import_is_light(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"))
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) < 5.0
    assert time.time() - t0 < 20
    assert not (tmp_path / "ext").exists(), "something was compiled"


def test_bare_import_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, restyle_lab; print('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
