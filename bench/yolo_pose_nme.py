# python bench/yolo_pose_nme.py RUN/weights/last.pt DATASET [IMGSZ]   (in the Ultralytics virtualenv, with pandas)
# Keypoint error of a YOLO pose model on a synthface dataset's val split: NME by the outer-eye-corner
# distance, and the OKS (Ultralytics' formula: area x 0.53, the data.yaml sigmas) of each face's best box
import sys, json, numpy as np, pandas as pd, yaml
from ultralytics import YOLO
weights, root = sys.argv[1], sys.argv[2]
imgsz = int(sys.argv[3]) if len(sys.argv) > 3 else 64
labels = pd.read_csv(f"{root}/labels.csv")
val = labels[labels.split == "val"]
sig = np.array(yaml.safe_load(open(f"{root}/data.yaml"))["kpt_oks_sigmas"])
model = YOLO(weights)
nmes, okss, missed = [], [], 0
for _, r in val.iterrows():
    res = model.predict(f"{root}/{r.file}", imgsz=imgsz, verbose=False, conf=0.25)[0]
    truth = r[[f"{a}{i}" for i in range(68) for a in "xy"]].to_numpy(float).reshape(68, 2)
    if res.keypoints is None or len(res.boxes) == 0:
        missed += 1; continue
    k = int(res.boxes.conf.argmax())
    pred = res.keypoints.xy[k].numpy()
    d = np.linalg.norm(pred - truth, axis=1)
    nmes.append(d.mean() / np.linalg.norm(truth[36] - truth[45]))
    w, h = r.w, r.h
    e = d ** 2 / ((2 * sig) ** 2 * (w * h * 0.53) * 2)
    okss.append(np.exp(-e).mean())
nmes, okss = np.array(nmes), np.array(okss)
print(json.dumps({"val_faces": len(val), "missed": missed, "nme_mean": round(float(nmes.mean()), 4),
                  "nme_median": round(float(np.median(nmes)), 4), "oks_mean": round(float(okss.mean()), 3),
                  "share_oks_0.5": round(float((okss >= 0.5).mean()), 3)}))
