"""A held-out portrait set from real images already on this machine that are not in
../shared/portraits: `python scripts/holdout_portraits.py --out out/holdout/`, then
`python scripts/evaluate.py out/holdout --out out/eval_holdout`.

The images are written under --out only, never committed. Sources and licences:

- grace_hopper.jpg: matplotlib's `mpl-data/sample_data/grace_hopper.jpg` (Rear Admiral Grace
  Hopper, US Navy photo). Public domain (work of the US federal government).
- cameraman.png: scikit-image's `skimage/data/camera.png` (a man at a camcorder on a tripod,
  near-profile, grey). CC0, by the photographer Lav Varshney (skimage.data.camera's docstring).
- lp_d3_*.png, lp_d9_*.png: frames of ../shared/driving/lp_d3.mp4 and lp_d9.mp4
  (KwaiVGI/LivePortrait, assets/examples/driving/d3.mp4, d9.mp4). MIT
  (../shared/portraits/LICENSES.md).

From each video three frames are taken, chosen by the head's yaw as the backend reads it
(mediapipe's video tracker, backend/animation/video/track.py, then backend.reconstruct.camera.head_rotation, the camera
the pipeline itself would estimate): the most turned to one side (`_yawmin`), the most turned to
the other (`_yawmax`), and the most frontal (`_front`). The file name carries the frame number and
the yaw in whole degrees (signed like backend.render.views.orbit_camera: positive shows the subject's
right cheek). `sources.json` beside the images lists where each came from.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.animation.video.frames import iter_frames  # noqa: E402
from backend.animation.video.track import track_faces  # noqa: E402
from backend.evaluation.metrics import camera_yaw_deg  # noqa: E402
from backend.reconstruct.camera import CameraConfig, head_rotation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DRIVING = ROOT.parent / "shared" / "driving"
VIDEOS = ("lp_d3.mp4", "lp_d9.mp4")


def still_sources() -> list[tuple[str, Path, str]]:
    """(name written, source file, licence) of the still photos shipped inside installed packages."""
    import matplotlib
    import skimage

    return [
        ("grace_hopper.jpg", Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
         "public domain (US Navy photo)"),
        ("cameraman.png", Path(skimage.__file__).parent / "data" / "camera.png",
         "CC0 (Lav Varshney, skimage.data.camera)"),
    ]


def frame_yaws_deg(landmarks_px: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(T, 478, 3) tracked landmarks, (T,) found -> (T,) head yaw in degrees, NaN where no face."""
    config = CameraConfig()
    yaws = np.full(len(found), np.nan)
    for t in np.flatnonzero(found):
        yaws[t] = camera_yaw_deg(head_rotation(landmarks_px[t].astype(np.float64), config))
    return yaws


def pick_frames(yaws_deg: np.ndarray) -> dict[str, int]:
    """{"yawmin": t, "yawmax": t, "front": t}: the frames turned most each way and the most
    frontal one, among frames with a face."""
    valid = np.isfinite(yaws_deg)
    if not valid.any():
        return {}
    masked = np.where(valid, yaws_deg, np.nan)
    return {"yawmin": int(np.nanargmin(masked)), "yawmax": int(np.nanargmax(masked)),
            "front": int(np.nanargmin(np.abs(masked)))}


def video_frames(video: Path, out: Path) -> list[dict]:
    track = track_faces(iter_frames(video))
    yaws = frame_yaws_deg(track.landmarks_px, track.found)
    chosen = pick_frames(yaws)
    by_index = {t: kind for kind, t in chosen.items()}
    written = []
    for t, frame in enumerate(iter_frames(video)):
        if t not in by_index:
            continue
        name = f"{video.stem}_{by_index[t]}_f{t:03d}_yaw{round(yaws[t]):+d}.png"
        Image.fromarray(frame).save(out / name)
        written.append({"file": name, "source": f"{video.name} frame {t}", "yaw_deg": float(yaws[t]),
                        "licence": "MIT (KwaiVGI/LivePortrait)"})
    print(f"{video.name}: {int(track.found.sum())}/{len(track.found)} frames with a face, yaw "
          f"{np.nanmin(yaws):+.1f}..{np.nanmax(yaws):+.1f} deg; took frames {sorted(by_index)}")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/holdout"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources = []
    for name, path, licence in still_sources():
        shutil.copyfile(path, args.out / name)
        sources.append({"file": name, "source": str(path), "licence": licence})
    for video in VIDEOS:
        sources += video_frames(DRIVING / video, args.out)
    (args.out / "sources.json").write_text(json.dumps(sources, indent=1))
    print(f"wrote {len(sources)} portraits to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
