"""Metrics: hand computations, LPIPS against the lpips package, and the offline paths.

Stand-in backbone weights are random and planted in a temporary TORCH_HOME: they exercise
the real loading code; the numbers they give are never metrics.
"""

from __future__ import annotations

import math
import urllib.error

import pytest
import torch

from restyle_lab.metrics import METRICS, lpips_metric, mse_pm1, psnr_pm1, ssim_pm1
from restyle_lab.metrics.weights import ALEXNET_FILE, FACENET_FILE, MetricUnavailable


def test_mse_and_psnr_by_hand():
    a = torch.zeros(2, 3, 2, 2)
    b = torch.zeros(2, 3, 2, 2)
    b[0, 0, 0, 0] = 1.0  # one pixel of 12 off by 1 -> 1/12
    b[1] = -0.5  # every value off by 0.5 -> 0.25
    assert mse_pm1(a, b).tolist() == pytest.approx([1 / 12, 0.25])
    assert psnr_pm1(a, b).tolist() == pytest.approx([10 * math.log10(4 / (1 / 12)), 10 * math.log10(4 / 0.25)])
    assert mse_pm1(a, b).dtype == torch.float64
    with pytest.raises(ValueError, match="same shape"):
        mse_pm1(a, b[:1])


def test_ssim_identity_and_order():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert ssim_pm1(x, x).tolist() == pytest.approx([1.0, 1.0])
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    very = (x + 0.9 * torch.randn_like(x)).clamp(-1, 1)
    assert (ssim_pm1(very, x) < ssim_pm1(noisy, x)).all()


@pytest.fixture
def fresh_lpips(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(lpips_metric, "_FAILED", {})
    return tmp_path / "torch"


def test_lpips_wrapper_equals_the_lpips_package(fresh_lpips):
    import torchvision

    torch.manual_seed(0)
    stand_in = torchvision.models.alexnet()  # random weights: a stand-in, not a metric
    target = fresh_lpips / "hub" / "checkpoints" / ALEXNET_FILE
    target.parent.mkdir(parents=True)
    torch.save(stand_in.state_dict(), target)
    ours = METRICS["lpips_alex_v0.1"].build()
    import lpips

    direct = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()
    x, y = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = direct(x, y).flatten().double()
    got = ours(x, ours.prepare(y))
    assert got.shape == (3,) and torch.allclose(got, expected)
    assert got.unique().numel() == 3


def test_lpips_offline_message(fresh_lpips, monkeypatch):
    def no_network(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(MetricUnavailable) as err:
        METRICS["lpips_alex_v0.1"].build()
    text = str(err.value)
    assert ALEXNET_FILE in text and str(fresh_lpips / "hub" / "checkpoints") in text and "URLError" in text
    with pytest.raises(MetricUnavailable, match="lpips_alex_v0.1 is unavailable"):
        lpips_metric.load_lpips()  # remembered: no second download attempt


def test_identity_offline_message(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import facenet_pytorch.models.inception_resnet_v1 as irv1

    def no_network(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(irv1, "download_url_to_file", no_network)
    with pytest.raises(MetricUnavailable) as err:
        METRICS["id_facenet_vggface2"].build()
    assert FACENET_FILE in str(err.value) and str(tmp_path / "torch" / "checkpoints") in str(err.value)


def test_identity_with_planted_stand_in_skips_faceless_images(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    path = tmp_path / "torch" / "checkpoints" / FACENET_FILE
    path.parent.mkdir(parents=True)
    torch.save(InceptionResnetV1(classify=True, num_classes=8631).state_dict(), path)  # the vggface2 layout
    metric = METRICS["id_facenet_vggface2"].build()
    flat = torch.zeros(2, 3, 128, 128)  # nothing face-like for MTCNN to find
    values = metric(flat, metric.prepare(flat))
    assert torch.isnan(values).all()
