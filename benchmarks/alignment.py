"""How close does alignment come to the right crop? ``python benchmarks/alignment.py --help``.

The shared FFHQ-aligned face (``../shared/samples/images/face_img.jpg``) is moved by seeded similarity
transforms (rotation within +-30 degrees, scale 0.5-1.5, shifts, pasted into a grey canvas); aligning
each must give back the original crop, whose corners are known exactly. Prints, per case and on
average: the mean corner distance of the quad found from where the corners went (pixels of the output),
and the PSNR of the crop against the original (resized to the output size).

With ``--dlib-predictor FILE`` (and dlib importable, e.g. ``--dlib-path`` of a throwaway venv with
``dlib-bin``), the 68-landmark recipe (eye centres = mean of each eye's six points, mouth corners = points
48 and 54) runs on the same images, and its difference from the MTCNN recipe is printed too: corner
distance between the two quads and PSNR between the two crops, also on the sample photos with faces.
Nothing of dlib is a dependency of restyle-lab, nor shipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restyle_lab.faces.landmarks import FaceDetector  # noqa: E402
from restyle_lab.faces.recipe import FacePoints, align_face  # noqa: E402
from restyle_lab.faces.transforms import CHECK_CASES, corner_error, frame, psnr, similarity_case  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "images"


def cases(n: int, seed: int):
    """The test's fixed extremes first, then seeded random ones."""
    fixed = list(CHECK_CASES)
    rng = np.random.default_rng(seed)
    extra = [(float(rng.uniform(-30, 30)), float(rng.uniform(0.5, 1.5)), tuple(rng.uniform(-40, 40, 2)))
             for _ in range(max(0, n - len(fixed)))]
    return (fixed + extra)[:n]


class Dlib68:
    def __init__(self, predictor: str):
        import dlib

        self.detector, self.predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor)

    def points(self, img: Image.Image) -> FacePoints | None:
        arr = np.asarray(img.convert("RGB"))
        dets = self.detector(arr, 1)
        if not dets:
            return None
        det = max(dets, key=lambda r: r.width() * r.height())
        shape = self.predictor(arr, det)
        lm = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
        return FacePoints(lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24, help="transforms (default 24: the test's 6, then seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", type=int, default=384, help="the face is resized to this before the transform")
    parser.add_argument("--size", type=int, default=256, help="output size")
    parser.add_argument("--dlib-predictor", help="shape_predictor_68_face_landmarks.dat")
    parser.add_argument("--dlib-path", help="a site-packages folder holding dlib (appended to sys.path)")
    args = parser.parse_args()
    if args.dlib_path:
        sys.path.append(args.dlib_path)
    dlib68 = Dlib68(args.dlib_predictor) if args.dlib_predictor else None
    source = Image.open(SAMPLES / "face_img.jpg").convert("RGB")
    face = source.resize((args.base, args.base), Image.Resampling.LANCZOS)
    ref = source.resize((args.size, args.size), Image.Resampling.LANCZOS)
    det = FaceDetector()
    # each recipe on the untransformed face: moved along, it is where that recipe should land again
    own = {"mtcnn": align_face(face, det.detect(face)[0].points, args.size)[1]}
    if dlib68 is not None:
        own["dlib68"] = align_face(face, dlib68.points(face), args.size)[1]
    print(f"on the untransformed {args.base} px face, vs its own frame: MTCNN recipe "
          f"{corner_error(own['mtcnn'], frame(face), args.size):.2f} px" + (
              f", dlib68 recipe {corner_error(own['dlib68'], frame(face), args.size):.2f} px" if dlib68 else ""))
    rows = []
    head = "angle  scale  shift          | MTCNN: vs original px  PSNR dB  vs itself px"
    print(head + (" | dlib68: vs original px  PSNR dB  vs itself px | MTCNN vs dlib68 px  PSNR dB" if dlib68 else ""))
    for angle, scale, shift in cases(args.n, args.seed):
        img, move = similarity_case(face, angle, scale, shift)
        truth = move(frame(face))
        faces = det.detect(img)
        if not faces:
            print(f"{angle:6.1f} {scale:5.2f}: no face found by MTCNN")
            continue
        crop, quad = align_face(img, faces[0].points, args.size)
        row = [corner_error(quad, truth, args.size), psnr(crop, ref), corner_error(quad, move(own["mtcnn"]), args.size)]
        if dlib68 is not None:
            pts = dlib68.points(img)
            if pts is None:
                row += [np.nan] * 5
            else:
                crop68, quad68 = align_face(img, pts, args.size)
                row += [corner_error(quad68, truth, args.size), psnr(crop68, ref),
                        corner_error(quad68, move(own["dlib68"]), args.size),
                        corner_error(quad, quad68, args.size), psnr(crop, crop68)]
        rows.append(row)
        cells = "  ".join(f"{v:8.2f}" for v in row)
        print(f"{angle:6.1f} {scale:5.2f}  ({shift[0]:5.1f}, {shift[1]:5.1f}) | {cells}")
    arr = np.array(rows, dtype=np.float64)
    print(f"mean over {len(rows)}: " + "  ".join(f"{v:8.2f}" for v in np.nanmean(arr, 0)))
    print(f"max  over {len(rows)}: " + "  ".join(f"{v:8.2f}" for v in np.nanmax(arr, 0)))
    print(f"min  over {len(rows)}: " + "  ".join(f"{v:8.2f}" for v in np.nanmin(arr, 0)))
    if dlib68 is not None:
        print("\nsample photos (largest face): MTCNN vs dlib68 corner px, PSNR dB")
        for path in sorted(SAMPLES.glob("*.jpg")):
            img = Image.open(path).convert("RGB")
            faces, pts = det.detect(img), dlib68.points(img)
            if not faces or pts is None:
                print(f"  {path.name}: face found by MTCNN {bool(faces)}, by dlib {pts is not None}")
                continue
            crop, quad = align_face(img, faces[0].points, args.size)
            crop68, quad68 = align_face(img, pts, args.size)
            print(f"  {path.name}: {corner_error(quad, quad68, args.size):.2f} px, {psnr(crop, crop68):.2f} dB")


if __name__ == "__main__":
    main()
