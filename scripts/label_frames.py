"""Draw MediaPipe's left and right labels on frames of a video, to see with one's own eyes whether
the detector saw the person from the front or from behind.

Left landmarks (MediaPipe's: eye, ear, shoulder, hip, ankle) are drawn red, right ones blue,
the nose white; each frame is cropped around the person and the crops are put side by side in
one PNG. The landmarks come from `scripts/mediapipe_cache.py` (MediaPipe runs once per video).
Seen from the front, a person's left side is on the image's right (red right of blue); seen
from behind, on its left.

    python scripts/label_frames.py OUT.png [--video PATH] [--frames 0,60,120,180]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mediapipe_cache import mediapipe_video  # noqa: E402

LEFT = (2, 7, 11, 23, 27)  # MediaPipe: left eye, ear, shoulder, hip, ankle
RIGHT = (5, 8, 12, 24, 28)
NOSE = 0


def main(argv=None) -> int:
    from distpose_app.core import paths  # DISTPOSE_SHARED or ../shared, as everywhere

    shared = paths.SHARED
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--video", default=str(shared / "media" / "openpose_street_walk.avi"))
    parser.add_argument("--frames", default="0,60,120,150,180,204", help="frame indices")
    parser.add_argument("--cache", default=str(paths.CACHE_DIR))
    parser.add_argument("--width", type=int, default=300, help="width of each crop, pixels")
    args = parser.parse_args(argv)
    wanted = sorted(int(v) for v in args.frames.split(","))
    detections = mediapipe_video(args.video, args.cache)
    row = {int(k): i for i, k in enumerate(detections["kept"])}
    capture = cv2.VideoCapture(args.video)
    crops, index = [], 0
    while index <= wanted[-1]:
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted and index in row:
            marks = detections["landmarks"][row[index]]
            for joints, colour in (
                (LEFT, (0, 0, 255)),
                (RIGHT, (255, 0, 0)),
                ((NOSE,), (255,) * 3),
            ):
                for j in joints:
                    cv2.circle(frame, (int(marks[j, 0]), int(marks[j, 1])), 5, colour, -1)
            h, w = frame.shape[:2]
            x0, y0 = (int(max(v, 0)) for v in marks.min(axis=0) - 60)
            x1, y1 = (int(v) for v in np.minimum(marks.max(axis=0) + 60, [w, h]))
            crop = frame[y0:y1, x0:x1]
            crop = cv2.resize(crop, (args.width, int(args.width * crop.shape[0] / crop.shape[1])))
            cv2.putText(crop, str(index), (5, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2)
            crops.append(crop)
        index += 1
    capture.release()
    if not crops:
        raise SystemExit("none of those frames has a person")
    height = max(c.shape[0] for c in crops)
    crops = [
        cv2.copyMakeBorder(c, 0, height - c.shape[0], 0, 0, cv2.BORDER_CONSTANT) for c in crops
    ]
    cv2.imwrite(args.out, np.hstack(crops))
    print(f"wrote {args.out}: frames {', '.join(str(i) for i in wanted if i in row)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
