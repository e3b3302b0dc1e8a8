"""The scoring runs of `synthface detector eval` and `synthface landmarks eval` whole:
outputs checked before the work, the model scored, its summary line, and the curve
(PNG) and report (JSON, with its format mark) written where asked.
"""

from __future__ import annotations

from pathlib import Path


def landmarks_train_line(s: dict, output, model: str = "") -> str:
    """What `landmarks train` (model "") and `train-cnn` (model "a CNN", with its epochs and
    device) print of a trainer's summary: faces per source, the mixing rule, time, output."""
    sources = ", ".join(f"{n} from {d}" + (f" ({s['splits'][d]} split)" if s["splits"][d] != "all" else "")
                        for d, n in s["sources"].items())
    rule = f"; {s['mixing_rule']}" if s["mixing_rule"] else ""
    how = f" {model} on" if model else " on"
    where = f", {s['epochs']} epochs on {s['device']}" if model else ""
    return f"trained{how} {s['faces']} faces ({sources}{rule}){where} in {s['seconds']:.0f} s: {output}"


def format_detector_eval(r: dict) -> str:
    """An evaluate_detector result in one line, as `detector eval` prints it."""
    return (f"{r['model']}: AP50 {r['ap50']:.1%} (AP30 {r['ap30']:.1%}), max recall {r['max_recall']:.1%}; at score "
            f"0: recall {r['recall_at_0']:.1%}, {r['fp_per_image_at_0']:.2f} false positives per image, mean IoU of "
            f"the matched boxes {'-' if r['mean_iou_at_0'] is None else format(r['mean_iou_at_0'], '.2f')} "
            f"({r['images']} images, {r['faces']} faces)")


def detector_eval_report(model: str, data, *, upsample: int = 1, pr=None, output=None, progress: bool = True,
                         echo=None) -> dict:
    """Score a detector (a .svm, or dlib) on labelled photos (evaluate_detector), then
    draw its precision-recall curve as a PNG at `pr` and write the report as JSON at
    `output`, where given; both paths are checked before the work. `echo` (print, for
    the command) gets the summary line as soon as it is known. Returns the report."""
    import json

    from synthface.core.files import check_writable_file, write_atomic
    from synthface.core.imaging import check_image_path
    from synthface.trainers.detector import evaluate_detector, plot_pr

    if output:
        check_writable_file(output, "-o")
    if pr:
        check_image_path(pr)
    r = evaluate_detector(model, data, upsample, progress=progress)
    if echo is not None:
        echo(format_detector_eval(r))
    if pr:
        plot_pr({Path(model).stem: r}, pr)
    if output:
        from synthface.core.outputs import DETECTOR_REPORT

        write_atomic(output, json.dumps({"format": DETECTOR_REPORT, **r}, indent=2) + "\n")
    return r


def trained_on(model, data, split: str) -> str | None:
    """Whether the faces `eval` scores (`data`'s `split`) were among a model's training
    faces, by the `trained_on` (absolute paths) of the summary `landmarks train` wrote
    beside it: which set and split, or None (no such summary, another set, its other split)."""
    import json

    from synthface.trainers.landmarks import trained_path

    summary = Path(str(model)).expanduser().with_suffix(".json")
    try:
        if not summary.is_file() or summary.stat().st_size > 10_000_000:  # a FIFO would block
            return None
        sets = json.loads(summary.read_text()).get("trained_on") or {}
        here = trained_path(data)
        trained = next(s for d, s in sets.items() if d == here)
    except (OSError, ValueError, AttributeError, StopIteration, RuntimeError, RecursionError):
        return None
    return f"{data}, {trained} split" if "all" in (trained, split) or trained == split else None


def landmarks_eval_report(model: str, data, *, boxes: str = "detector", upsample: int = 1, pts_origin: int = 1,
                          split: str | None = None, ced=None, output=None, progress: bool = True, echo=None) -> dict:
    """Score a shape predictor (a .dat, or dlib68) on faces with true points
    (evaluate_landmarks), then draw its cumulative error curve as a PNG at `ced` and
    write the report (each scored face's image and NME too) as JSON at `output`, where given; both paths
    are checked before the work. `echo` (print, for the command) gets each line as it is
    reached: the summary, then where the curve and the report went. Returns the report."""
    import json

    from synthface.core.files import check_writable_file, write_atomic
    from synthface.core.imaging import check_image_path
    from synthface.trainers.landmarks_eval import evaluate_landmarks, format_nme, plot_ced, worst_faces_line

    say = echo if echo is not None else (lambda line: None)
    if output:
        check_writable_file(output, "-o")
    if ced:
        check_image_path(ced)
    r = evaluate_landmarks(model, data, boxes=boxes, upsample=upsample, progress=progress, pts_origin=pts_origin,
                           split=split)
    seen = trained_on(model, data, r["split"])
    if seen:
        import logging

        logging.getLogger("synthface").warning(
            "%s was trained on these faces (%s): this NME is not a test score", model, seen)
    say(format_nme(r))
    worst = worst_faces_line(r)
    if worst:
        say(worst)
    if ced:
        plot_ced({Path(model).stem: r}, ced)
        say(f"CED plot: {ced}")
    if output:
        from synthface.core.outputs import LANDMARKS_REPORT

        write_atomic(output, json.dumps({"format": LANDMARKS_REPORT, "model": model, "data": data, **r},
                                        indent=2, allow_nan=False) + "\n")
        say(f"report: {output}")
    return r
