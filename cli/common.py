"""Argument helpers shared by several commands: the steering flags (--yaw, --pitch,
--mouth-open, --pose-mix) that make-dataset and sample both take, and their parsing
into steering targets, checked before any work.
"""

from __future__ import annotations


def add_steering_flags(p) -> None:
    """The steering flags (--yaw, --pitch, --mouth-open, --pose-mix) of make-dataset and sample."""
    p.add_argument("--yaw", metavar="MIN:MAX", help="steer the head's yaw, degrees (> 0: turned to the image's "
                                                   "right); each face draws its target from its seed")
    p.add_argument("--pitch", metavar="MIN:MAX", help="steer the head's pitch, degrees (> 0: up)")
    p.add_argument("--mouth-open", metavar="MIN:MAX", help="steer the mouth opening (inner-lip gap / eye distance)")
    p.add_argument("--pose-mix", action="store_true",
                   help="yaw and pitch spread like real 300-W faces, as far as the generator reaches")


def steering_targets(args) -> list:
    """The steering flags as steering.Target rows (checked here, before any work)."""
    from synthface.generator.steering import parse_range, pose_mix_targets

    targets = {t.name: t for t in pose_mix_targets()} if args.pose_mix else {}
    for name in ("yaw", "pitch", "mouth_open"):
        text = getattr(args, name)
        if text is not None:
            targets[name] = parse_range(text, name)
    return list(targets.values())
