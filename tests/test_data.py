"""Image folders: conversions, bad files as error rows, strict mode, empty folders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from restyle_lab.facts.domains import DOMAINS, style_groups
from restyle_lab.records.data import DatasetError, ImageFolder, manifest_hash


@pytest.fixture
def messy(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a_good.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "b_gray.png")
    Image.fromarray(np.dstack([rgb, np.full((40, 50), 128, np.uint8)])).save(tmp_path / "c_rgba.png")
    Image.fromarray((rgb[..., 1].astype(np.uint16) * 257)).save(tmp_path / "d_16bit.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "e_palette.png")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    jpeg[200:400] = b"\x00" * 200  # scribbled over the entropy-coded data
    (tmp_path / "f_corrupt.jpg").write_bytes(bytes(jpeg[:300]))
    png = (tmp_path / "a_good.png").read_bytes()
    (tmp_path / "g_truncated.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "h_text.png").write_text("not an image at all")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / "sub").mkdir()
    Image.fromarray(rgb).save(tmp_path / "sub" / "i_nested.jpg")
    return tmp_path


def test_conversions_and_error_rows(messy):
    folder = ImageFolder(messy, input_hw=(32, 32))
    assert folder.names == ["a_good.png", "b_gray.png", "c_rgba.png", "d_16bit.png", "e_palette.png",
                            "f_corrupt.jpg", "g_truncated.png", "h_text.png", "sub/i_nested.jpg"]
    loaded = {folder.names[i]: folder.load(i) for i in range(len(folder))}
    for name in ["a_good.png", "b_gray.png", "c_rgba.png", "d_16bit.png", "e_palette.png", "sub/i_nested.jpg"]:
        img, rec = loaded[name]
        assert rec.status == "ok", (name, rec.status)
        assert img.shape == (3, 32, 32) and img.min() >= -1 and img.max() <= 1
    assert loaded["d_16bit.png"][1].mode.startswith("I")
    gray16 = loaded["d_16bit.png"][0]
    gray8 = ImageFolder(messy, input_hw=(40, 50)).load(3)[0]
    assert torch_allclose_channels(gray8)  # a gray image stays gray, in 8-bit range
    assert float(gray16.std()) > 0.2  # scaled down from 16 bits, not clipped to white
    for name in ["f_corrupt.jpg", "g_truncated.png", "h_text.png"]:
        img, rec = loaded[name]
        assert img is None and rec.status.startswith("error:"), (name, rec.status)


def torch_allclose_channels(img):
    return bool((img[0] == img[1]).all() and (img[1] == img[2]).all())


def test_batches_skip_bad_files_and_report_them(messy):
    folder = ImageFolder(messy, input_hw=(32, 32))
    seen, errors = [], []
    for indices, images, records in folder.batches(4):
        seen += indices
        errors += [r.name for r in records if r.status != "ok"]
        if images is not None:
            assert images.shape[0] == len(indices)
    assert errors == ["f_corrupt.jpg", "g_truncated.png", "h_text.png"]
    assert len(seen) == 6
    manifest = folder.manifest()
    assert len(manifest) == 9 and all(len(m["sha256"]) == 64 for m in manifest)
    assert len(manifest_hash(manifest)) == 64


def test_strict_mode_stops_at_the_bad_file(messy):
    folder = ImageFolder(messy, input_hw=(32, 32), strict=True)
    with pytest.raises(DatasetError, match="f_corrupt.jpg: unreadable image"):
        for _ in folder.batches(4):
            pass


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no images found"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such directory"):
        ImageFolder(tmp_path / "nope")


def test_cars_subset_rule_is_seeded_and_sorted():
    names = [f"{i:05d}.jpg" for i in range(8041)]
    cars = DOMAINS["cars"]
    a, b = cars.select_test_files(names), cars.select_test_files(list(names))
    assert a == b and len(a) == 1000 and a == sorted(a)
    assert DOMAINS["faces"].select_test_files(names) == names


def test_style_groups():
    assert style_groups(18) == {"coarse": [0, 1, 2, 3], "medium": [4, 5, 6, 7], "fine": list(range(8, 18))}
    assert style_groups(18, "psp")["coarse"] == [0, 1, 2]
    assert style_groups(10)["fine"] == [8, 9]
    assert DOMAINS["cars"].n_styles == 16 and DOMAINS["mini"].n_styles == 10


def test_images_are_read_as_a_photo_viewer_shows_them(tmp_path):
    """EXIF orientation applied; transparency shown over white; a broken link is an error record."""
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(wide).save(tmp_path / "a_rotated.jpg", exif=exif.tobytes(), quality=100)
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b_clear.png")
    (tmp_path / "c_link.png").symlink_to(tmp_path / "gone.png")
    folder = ImageFolder(tmp_path, input_hw=(40, 20))
    assert folder.names == ["a_rotated.jpg", "b_clear.png", "c_link.png"]
    rotated, rec = folder.load(0)
    assert rec.size == (40, 20) and rotated.shape == (3, 40, 20)
    assert rotated[:, :18].mean() > 0.9 and rotated[:, 22:].mean() < -0.9  # white on top once displayed upright
    clear, _ = folder.load(1)
    assert torch_allclose_channels(clear) and float(clear.min()) == 1.0  # white, not black
    missing, rec = folder.load(2)
    assert missing is None and rec.status == "error: broken link (the file it points to is missing)"
    assert [e["status"] for e in folder.manifest()][2].startswith("error: broken link")


def test_special_files_are_skipped_with_their_reason_never_read(messy, tmp_path_factory):
    """A FIFO would block a reader for ever and /dev/zero never ends: listed, skipped, said why."""
    import os

    pipe = tmp_path_factory.mktemp("pipes") / "pipe"
    os.mkfifo(pipe)
    os.mkfifo(messy / "j_fifo.png")
    (messy / "k_link_to_fifo.png").symlink_to(pipe)
    (messy / "l_link_to_zero.jpg").symlink_to("/dev/zero")
    folder = ImageFolder(messy, input_hw=(32, 32))
    records = {folder.names[i]: folder.load(i)[1] for i in range(len(folder))}
    assert records["j_fifo.png"].status.startswith("error: not a regular file: a FIFO (named pipe)")
    assert records["k_link_to_fifo.png"].status.endswith("a FIFO (named pipe) behind a symlink")
    assert records["l_link_to_zero.jpg"].status.endswith("a character device behind a symlink")
    assert records["a_good.png"].status == "ok"


def test_the_size_cap_is_recorded_where_applied(messy, monkeypatch):
    monkeypatch.setattr("restyle_lab.records.data.MAX_IMAGE_BYTES", 200)
    folder = ImageFolder(messy, input_hw=(32, 32))
    record = folder.load(folder.names.index("a_good.png"))[1]
    assert record.status.startswith("error: over the size cap: ") and "(data.MAX_IMAGE_BYTES)" in record.status


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_hashed_again(messy):
    import os

    folder = ImageFolder(messy, input_hw=(32, 32))
    first = folder.manifest()
    path = messy / "a_good.png"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-20:] = bytes(20)  # same size, other content
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = ImageFolder(messy, input_hw=(32, 32)).manifest(first)
    index = folder.names.index("a_good.png")
    assert again[index]["sha256"] != first[index]["sha256"]  # the ctime changed: read again
    unchanged = folder.names.index("b_gray.png")
    assert again[unchanged] is first[unchanged]  # an unchanged file is not read again
