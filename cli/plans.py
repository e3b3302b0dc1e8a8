"""What each command writes and reads, from its parsed flags: the plan `main()` checks
(synthface.core.outputs.check_plan) before the command runs. Every command has one; a new
command without one fails tests/test_outputs.py."""

from __future__ import annotations

from pathlib import Path

from synthface.errors import SynthfaceError
from synthface.core.outputs import (DETECTOR_MODEL, DETECTOR_REPORT, DIRECTIONS, GENERATOR_REPORT, LANDMARKS_MODEL,
                               LANDMARKS_REPORT, Output, Plan, copy_of, generator_files, json_with_format,
                               marked_by, only_images_by, recorded_in, summary_of)


def _checkpoint(args) -> list:
    from synthface.generator.sampling import generator_choice, resolve_checkpoint

    if getattr(args, "replay_faces", None):
        return []
    return generator_files(resolve_checkpoint(generator_choice(args.checkpoint, getattr(args, "scenes", False))))


def _model_and_summary(output, model_format: str) -> list:
    if not str(output).strip():
        return [Output(output, "-o")]  # refused as empty by check_plan
    summary = Path(output).expanduser().with_suffix(".json")
    return [Output(output, "-o", recorded_in(summary, "model_sha256", model_format)),
            Output(summary, "its summary", summary_of(Path(output).expanduser(), model_format))]


def train(args) -> Plan:
    # the run folder may lie inside --data: train leaves it out of the data
    return Plan([Output(args.out, "--out", folder=True, nested_in=(args.data,))], [args.data])


def _model_file(path, flag: str, example: str = "shape_predictor_68_face_landmarks.dat"):
    """A model file the command reads (--predictor, --init): a file, not a folder."""
    if path is not None and str(path).strip() and Path(path).expanduser().is_dir():
        raise SynthfaceError(f"{flag} {path} is a folder; give the model file ({example})")
    return path


def make_dataset(args) -> Plan:
    from synthface.formats import check_label_places

    check_label_places(args.out)  # a resume writes its labels there: nothing of the user's in their way
    # a dataset may lie inside --backgrounds (its own scenes are left out of them), not --replay-faces
    return Plan([Output(args.out, "--out", folder=True, nested_in=(args.backgrounds,))],
                [args.replay_faces, args.backgrounds, _model_file(args.predictor, "--predictor"), *_checkpoint(args)])


def preview(args) -> Plan:
    return Plan([Output(args.output, "-o", marked_by("preview"))], [args.dataset])


def sample(args) -> Plan:
    return Plan([Output(args.output, "-o", marked_by("sample"))], _checkpoint(args))


def evaluate(args) -> Plan:
    cache = Output(args.cache_dir or None, "--cache-dir", folder=True)  # the real faces' descriptors
    return Plan([Output(args.output, "-o", json_with_format(GENERATOR_REPORT)), cache],
                [args.real, *_checkpoint(args)])


def directions(args) -> Plan:
    from synthface.generator.directions import check_directions_target, directions_path
    from synthface.generator.sampling import resolve_checkpoint

    checkpoint = resolve_checkpoint(args.checkpoint)
    check_directions_target(checkpoint, args.output)
    found = directions_path(args.output or checkpoint)
    outputs = [Output(found, "the directions file", json_with_format(DIRECTIONS)),
               Output(found.with_suffix(".safetensors"), "the directions' vector file",
                      recorded_in(found, "vectors_sha256", DIRECTIONS))]
    if args.output is None:  # written beside the generator, which stays an input
        return Plan(outputs, [checkpoint, checkpoint.with_suffix(".json")])
    new = Path(args.output).expanduser()  # -o first: a clash is named by the flag the user gave
    outputs = [Output(new, "-o", copy_of(checkpoint)),
               Output(new.with_suffix(".json"), "the copy's description", copy_of(checkpoint.with_suffix(".json"))),
               *outputs]
    return Plan(outputs, generator_files(checkpoint))


def detector_train(args) -> Plan:
    return Plan(_model_and_summary(args.output, DETECTOR_MODEL), [*args.dataset, args.negatives])


def detector_mine(args) -> Plan:
    model = None if args.model == "dlib" else args.model
    return Plan([Output(args.out, "--out", only_images_by("detector mine", "neg_", ".jpg"), folder=True)],
                [model, args.backgrounds])


def detector_eval(args) -> Plan:
    model = None if args.model == "dlib" else args.model
    return Plan([Output(args.output, "-o", json_with_format(DETECTOR_REPORT)),
                 Output(args.pr, "--pr", marked_by("detector eval"))], [args.data, model])


def landmarks_train(args) -> Plan:
    return Plan(_model_and_summary(args.output, LANDMARKS_MODEL), list(args.dataset))


def landmarks_train_cnn(args) -> Plan:
    from synthface.trainers.cnn_state import checkpoints_of

    outputs = _model_and_summary(args.output, LANDMARKS_MODEL)
    if str(args.output).strip():  # the checkpoints: a folder this command fills, and resumes from
        outputs.append(Output(checkpoints_of(Path(args.output).expanduser()), "its checkpoints", folder=True))
    return Plan(outputs, [*args.dataset, _model_file(args.init, "--init", "NAME.pt, that train-cnn wrote")])


def landmarks_eval(args) -> Plan:
    model = None if args.model == "dlib68" else args.model
    return Plan([Output(args.output, "-o", json_with_format(LANDMARKS_REPORT)),
                 Output(args.ced, "--ced", marked_by("landmarks eval"))], [args.data, model])


def merge(args) -> Plan:
    from synthface.formats import check_label_places

    check_label_places(args.output)  # an earlier merge, redone
    return Plan([Output(args.output, "-o", folder=True)], list(args.parts))


def align(args) -> Plan:
    # dst may lie inside src: align leaves it out of the photos it reads
    return Plan([Output(args.dst, "dst", folder=True, nested_in=(args.src,))],
                [args.src, _model_file(args.predictor, "--predictor")])
