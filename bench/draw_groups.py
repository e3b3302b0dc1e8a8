"""Group-photo scenes as `make-dataset --scenes` makes them, with their boxes: the
picture in docs/detector.md.

    python bench/draw_groups.py docs/scene_groups.jpg      # about half a minute on CPU

Three scenes of the bundled generator's faces made with `--groups 1 --seed 3` (every scene
a group photo), each scene's photo-like variation as drawn; blue: the `--box points`
boxes, red: a face some of whose points a head in front hides (flagged occluded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    import cv2
    import pandas as pd

    from synthface.dataset.scenes import SceneConfig, make_scenes
    from synthface.generator.sampling import open_sampler

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "groups"
        make_scenes(out, 60, SceneConfig(groups=1.0), open_sampler(), seed=3, progress=False, box="points",
                    formats="csv")
        frame = pd.read_csv(out / "labels.csv")
        tiles = []
        for name in sorted(frame["file"].unique())[:3]:
            img = cv2.imread(str(out / name))
            for _, face in frame[frame["file"] == name].iterrows():
                x, y, w, h = (int(face[k]) for k in "xywh")
                colour = (40, 40, 230) if face["occluded"] else (255, 110, 50)  # BGR: red, blue
                cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, 2)
            tiles.append(cv2.resize(img, (420, 420), interpolation=cv2.INTER_AREA))
        cv2.imwrite(args.output, np.hstack(tiles), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
