"""The headline job as a user runs it: `synthface make-dataset -n N --landmarks`.

    python bench/bench_headline.py -n 10000 100000 --out runs/headline     # about 15 minutes on 2 cores

For each n, one `synthface make-dataset -n N --landmarks --out DIR` (every format, the
default augmentation and pose labels, all cores) in a fresh process: its wall time, the
sampling loop's faces/s (from the run's own summary line), the export's share (the wall
time after the loop's last face: labels in every format and the card), the peak RSS of
the whole process tree (sampled from /proc every 0.2 s, during the loop and during the
export), and the bytes on disk per face of each format. Extra flags after `--` go to
make-dataset (e.g. `-- --rotate-3d=-30:30`). Writes headline.json to --out; the datasets
are deleted unless --keep.

    python bench/bench_headline.py --export-only runs/headline/faces100000 --out runs/headline

--export-only DATASET: the export alone, every format, on a made dataset's journal, once in
one process and once with the per-image formats in a second one (the label files and .pts
removed before each): wall time and the process tree's peak RSS of each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree_rss(pid: int) -> int:
    """RSS in bytes of a process and its descendants."""
    children: dict = {}
    rss: dict = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            status = (stat.parent / "statm").read_text().split()
        except OSError:
            continue
        p = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(p)
        rss[p] = int(status[1]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def format_bytes(out: Path) -> dict:
    """Bytes on disk of each part of a dataset folder."""
    def size(paths):
        return sum(p.stat().st_size for p in paths if p.is_file())

    images = list((out / "images").rglob("*"))
    return {"images (png)": size(p for p in images if p.suffix == ".png"),
            "pts": size(p for p in images if p.suffix == ".pts"),
            "labels.csv": size([out / "labels.csv"]), "labels.parquet": size([out / "labels.parquet"]),
            "metadata.jsonl": size([out / "metadata.jsonl"]), "dlib.xml": size([out / "dlib.xml"]),
            "coco.json": size([out / "coco.json"]),
            "yolo (labels/, data.yaml, lists)": size(list((out / "labels").rglob("*")) + [
                out / "data.yaml", out / "trainset.txt", out / "valset.txt"]),
            "journal": size([out / ".synthface" / "journal.csv"])}


def run(n: int, out: Path, extra: list) -> dict:
    cmd = [sys.executable, "-m", "synthface", "make-dataset", "-n", str(n), "--landmarks", "--out", str(out),
           "--no-progress", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []  # (seconds, rss of the process tree)
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, tree_rss(proc.pid)))
            stop.wait(0.2)

    threading.Thread(target=watch, daemon=True).start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    if proc.returncode:
        raise SystemExit(f"make-dataset failed: {stderr.strip()}")
    m = re.search(r"this run: (\d+) faces in ([\d.]+) s \(([\d.]+) faces/s\).*labels ([\d.]+) s", stdout, re.S)
    loop_s, export_s = float(m.group(2)), float(m.group(4))
    start_s = wall - loop_s - export_s  # loading models and the generator, checks, the turn grid
    bytes_ = format_bytes(out)
    loop_rss = [r for t, r in samples if start_s <= t <= start_s + loop_s]
    export_rss = [r for t, r in samples if t > start_s + loop_s]
    return {"n": n, "wall_s": round(wall, 1), "loop_s": loop_s, "loop_faces_per_s": float(m.group(3)),
            "faces_per_s": round(n / wall, 1), "start_s": round(start_s, 1), "export_s": export_s,
            "export_faces_per_s": round(n / max(export_s, 1e-9), 1),
            "peak_rss_mib": round(max(r for _, r in samples) / 2 ** 20),
            "peak_rss_loop_mib": round(max(loop_rss, default=0) / 2 ** 20),
            "peak_rss_export_mib": round(max(export_rss, default=0) / 2 ** 20),
            "bytes_per_face": {k: round(v / n, 1) for k, v in bytes_.items()},
            "total_gb": round(sum(bytes_.values()) / 1e9, 3), "stdout": stdout.strip().splitlines()}


EXPORT = """
import json, sys
from pathlib import Path
from synthface.face.annotate import AnnotateConfig
from synthface.dataset.export import write_exports
from synthface.dataset.folder import read_identity
from synthface.dataset.make import MakeConfig
out = Path(sys.argv[1])
identity = read_identity(out)
cfg = MakeConfig(n=int(sys.argv[2]), seed=identity["seed"], annotate=AnnotateConfig(landmarks=True))
write_exports(out, cfg, identity, parallel=sys.argv[3] == "1")
"""


def export_only(folder: Path, n: int) -> dict:
    results = {}
    for parallel in (False, True):
        for p in [*folder.glob("labels*"), *folder.glob("*.json"), *folder.glob("*.xml"), *folder.glob("*.jsonl"),
                  *folder.glob("*.yaml"), *folder.glob("*set.txt")]:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        for p in (folder / "images").rglob("*.pts"):
            p.unlink()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", EXPORT, str(folder), str(n), "1" if parallel else "0"],
                                cwd=ROOT, stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.2)
        if proc.returncode:
            raise SystemExit(f"export failed: {proc.stderr.read().strip()}")
        wall = time.perf_counter() - t0
        results["two processes" if parallel else "one process"] = {
            "n": n, "seconds": round(wall, 1), "faces_per_s": round(n / wall), "peak_rss_mib": round(peak / 2 ** 20)}
        print(parallel, results, flush=True)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--out", default="runs/headline")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--export-only", metavar="DATASET", help="the export alone on this dataset (its first -n faces)")
    p.add_argument("extra", nargs="*", help="flags for make-dataset (after --)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "headline.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    if args.export_only:
        results[f"export only {args.n[0]}"] = export_only(Path(args.export_only), args.n[0])
        path.write_text(json.dumps(results, indent=2) + "\n")
        return
    for n in args.n:
        key = " ".join([str(n), *args.extra])
        folder = out / f"faces{n}"
        shutil.rmtree(folder, ignore_errors=True)
        r = run(n, folder, args.extra)
        r["machine"] = f"{os.cpu_count()} cores"
        results[key] = r
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({k: v for k, v in r.items() if k != "stdout"}, indent=1), flush=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
