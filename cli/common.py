"""Argument helpers shared by several commands: inputs and outputs given as positional
arguments or as the flags every command shares (--data, -o/--output), the steering
flags (--yaw, --pitch, --mouth-open, --pose-mix) that make-dataset and sample both
take, and their parsing into steering targets, checked before any work.
"""

from __future__ import annotations

from synthface.errors import SynthfaceError


def add_option_flags(p, cls, helps: dict, aliases: dict | None = None) -> None:
    """A flag for each field of the option dataclass `cls`, its default the dataclass's
    own (one place for it): --field-name (dest the field's name) with the field's type;
    a bool that defaults to True becomes --no-field-name. `helps`: the help of each field
    (the default is added); `aliases`: more names of a field's flag, shown first."""
    from dataclasses import fields

    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        names = [*(aliases or {}).get(f.name, []), flag]
        text = helps.get(f.name, "")
        if isinstance(f.default, bool):
            if f.default:
                p.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false", help=text)
            else:
                p.add_argument(*names, dest=f.name, action="store_true", help=text)
            continue
        shown = text if "default" in text else f"{text} (default {f.default})".strip()
        p.add_argument(*names, dest=f.name, type=type(f.default), default=f.default, help=shown)


def field_default(cls, name: str):
    """The default of field `name` of the option dataclass `cls`: the one place it is written."""
    from dataclasses import MISSING, fields

    f = next(f for f in fields(cls) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default


def shown(value) -> str:
    """A default as a flag takes it: MIN:MAX for a pair, a comma list for names."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"{value[0]}:{value[1]}"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_field_flag(p, *flags, cls, field: str, help: str, **kw) -> None:
    """A flag for field `field` of the option dataclass `cls`: its default and type are the
    field's (a default of None: the type given), and the help ends with the default."""
    default = field_default(cls, field)
    if default is not None and "choices" not in kw and "action" not in kw:
        kw.setdefault("type", type(default))
    p.add_argument(*flags, dest=field, default=default, help=f"{help} (default {shown(default)})", **kw)


def add_upsample_flag(p, help: str = "dlib detector upsampling steps") -> None:
    """--upsample, as every command that runs dlib's detector takes it (AnnotateConfig's default)."""
    from synthface.face.annotate import AnnotateConfig

    add_field_flag(p, "--upsample", cls=AnnotateConfig, field="upsample", help=help)


def options_from(args, cls):
    """The option dataclass `cls` from the flags add_option_flags made."""
    from dataclasses import fields

    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_path(p, dest: str, help: str, flags=("--data",), many: bool = False) -> None:
    """A path argument taken as the command's positional `dest` or by `flags` (--data
    for inputs, -o/--output for outputs): the one convention of every command, kept
    beside the positional form older command lines use. resolve_paths() joins them."""
    p.add_argument(dest, nargs="*" if many else "?", metavar=dest.upper(), help=f"{help} (or {flags[0]})")
    p.add_argument(*flags, dest=f"{dest}_flag", metavar=dest.upper(), action="append" if many else "store",
                   help=f"{dest.upper()} as a flag")
    p.set_defaults(paths=[*(p.get_default("paths") or []), (dest, flags[0], many)])


def resolve_paths(args) -> None:
    """Each add_path argument from its positional or its flag: one of them, given once."""
    for dest, flag, many in getattr(args, "paths", None) or []:
        positional, given = getattr(args, dest), getattr(args, f"{dest}_flag")
        if many:
            values = list(positional or []) + list(given or [])
            if not values:
                raise SynthfaceError(f"give {dest.upper()} (or {flag}): it is required")
            setattr(args, dest, values)
            continue
        if positional is not None and given is not None:
            raise SynthfaceError(f"give {dest.upper()} or {flag}, not both")
        if positional is None and given is None:
            raise SynthfaceError(f"give {dest.upper()} (or {flag}): it is required")
        setattr(args, dest, positional if positional is not None else given)


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
