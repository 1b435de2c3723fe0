"""How close is a converted NVlabs generator to NVlabs' own outputs? ``python benchmarks/nvlabs_convert.py``.

For each snapshot in ``../shared/nvlabs/`` (written by stylegan2-ada-pytorch itself, with the outputs that
code computed in ``<name>_expected.pt``), loads the .pkl through restyle-lab (nothing in it is run), and
prints the largest absolute difference of the mapping's w+, the truncated w+ (psi 0.7) and the three
images (plain, truncated, a mixed w+), per impl and dtype (float64: the weights widened, so the difference
left is NVlabs' own float32 rounding).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restyle_lab.models import set_impl  # noqa: E402
from restyle_lab.models.checkpoints import load_generator  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "nvlabs"
IMAGES = (("image", "ws"), ("image_truncated_psi0.7", "ws_truncated_psi0.7"), ("image_mixed", "ws_mixed"))


def main():
    print(f"{'snapshot':22s} {'impl':9s} {'dtype':7s} " + " ".join(f"{k:>22s}" for k in
          ["ws", "ws_truncated_psi0.7"] + [k for k, _ in IMAGES]) + "   image range")
    for pkl in sorted(SHARED.glob("*.pkl")):
        expected = torch.load(pkl.with_name(pkl.stem + "_expected.pt"), map_location="cpu", weights_only=True)
        for dtype in (torch.float32, torch.float64):
            gen, w_avg, _ = load_generator(pkl, dtype=dtype)
            for impl in ("reference", "fast"):
                set_impl(gen, impl)
                with torch.no_grad():
                    ws = gen.style(expected["z"].to(dtype))[:, None].expand(-1, gen.n_latent, -1)
                    got = {"ws": ws, "ws_truncated_psi0.7": w_avg + 0.7 * (ws - w_avg)}
                    for key, src in IMAGES:
                        got[key] = gen([expected[src].to(dtype)], input_is_latent=True, randomize_noise=False)[0]
                diffs = [(got[k].double() - expected[k].double()).abs().max().item() for k in got]
                print(f"{pkl.stem:22s} {impl:9s} {str(dtype)[6:]:7s} " + " ".join(f"{d:22.3g}" for d in diffs)
                      + f"   +-{expected['image'].abs().max().item():.2f}")


if __name__ == "__main__":
    main()
