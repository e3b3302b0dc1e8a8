"""Put a trained generator inside the package as the default (fp16 safetensors + JSON).

    python tools/bundle_generator.py runs/utk64/weights/epoch_0025.safetensors \
        --report runs/utk64/eval_0025.json --run runs/utk64

Writes synthface/models/default64.safetensors/.json and MODEL_CARD.md (training data,
epochs, the command, and the evaluate table from --report).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.generator.evaluate import format_report  # noqa: E402
from synthface.generator.weights import load_generator, save_generator  # noqa: E402

DEST = ROOT / "synthface" / "models" / "default64.safetensors"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights")
    p.add_argument("--report", help="JSON written by `synthface evaluate -o`")
    p.add_argument("--run", help="the run folder (for config.yaml and loss.csv)")
    p.add_argument("--command", default="", help="the training command, for the card")
    p.add_argument("--data", default="", help="what the training data was, for the card")
    p.add_argument("--history", default="", help="a Markdown file appended to the card (how it was chosen)")
    args = p.parse_args()
    generator, meta = load_generator(args.weights)
    half = generator.half()
    # fp16 storage; load_generator turns it back into fp32
    extra = {k: v for k, v in meta.items() if k not in ("arch", "format")}
    extra["stored_as"] = "float16"
    save_generator(half, meta["arch"], DEST, extra=extra)
    back, _ = load_generator(DEST)
    z = torch.randn(64, meta["arch"]["z_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full, _ = load_generator(args.weights)
        diff = (back(z) - full(z)).abs().max().item() * 127.5
    print(f"fp16 vs fp32: largest pixel difference {diff:.2f} levels of 255")
    train_cfg = (meta.get("config") or {}).get("train", {})
    recipe = {k: train_cfg[k] for k in ("loss", "diffaugment", "ema_halflife_kimg", "lr_g", "lr_d")
              if k in train_cfg}
    card = [f"# The bundled default generator: `{DEST.name}`", "",
            f"- Architecture: `{json.dumps(meta['arch'])}` (the dcgan64 preset's networks)",
            f"- Training recipe: `{json.dumps(recipe)}`, batch "
            f"{(meta.get('config') or {}).get('data', {}).get('batch_size', '?')}; the saved weights are "
            f"{'the generator EMA' if train_cfg.get('ema_halflife_kimg') else 'the trained generator'}.",
            f"- Trained for {meta.get('epoch')} epochs on {args.data or '`' + str(meta.get('data_path', '?')) + '`'} "
            "(UTKFace crop_part1: 9,780 aligned real faces, 200x200; FFHQ cannot "
            "be had on the machines that trained it). UTKFace is for non-commercial research only, "
            "and so is this generator.",
            f"- Stored as float16 (largest difference from the float32 weights: {diff:.2f} of 255 "
            "levels on 64 samples); loaded as float32.",
            f"- Training command: `{args.command}`" if args.command else "",
            ""]
    if args.report:
        report = json.loads(Path(args.report).read_text())
        card += ["## `synthface evaluate` scores", "", "```", format_report(report), "```", ""]
    card += ["Sample grid: `synthface sample -n 64 -o grid.png` (see docs/default64_samples.png).", ""]
    if args.history:
        card += [Path(args.history).read_text()]
    (DEST.parent / "MODEL_CARD.md").write_text("\n".join(line for line in card if line is not None) + "\n")
    print(f"wrote {DEST} and {DEST.parent / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
