"""Click options made from a dataclass's fields (their metadata: diver_lite/options.py), and --help in sections.

`dataclass_options(RecoverConfig)` adds one option per field that has metadata, named after the field, with its
help, type, choices and range; every such option defaults to None ("not given"), so that presets and --config
files can fill what the command line leaves out (`given`). `SectionedCommand` prints the options under the
sections of diver_lite.options.SECTIONS."""

import typing
from dataclasses import fields

import click

from diver_lite.options import SECTIONS


class SectionOption(click.Option):
    """An option that --help lists under `section`."""

    def __init__(self, *args, section: str = "Run", **kwargs):
        super().__init__(*args, **kwargs)
        self.section = section


class SectionedCommand(click.Command):
    """--help with the options under titled sections (SECTIONS order; options without one under "Other")."""

    def format_options(self, ctx, formatter):
        groups: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                groups.setdefault(getattr(param, "section", "Other"), []).append(record)
        for title in [*SECTIONS, "Other", *sorted(set(groups) - set(SECTIONS) - {"Other"})]:
            if groups.get(title):
                with formatter.section(title):
                    formatter.write_dl(groups[title])


def section_option(*decls, section: str, **kwargs):
    """click.option for a hand-written option, listed under `section`."""
    return click.option(*decls, cls=SectionOption, section=section, **kwargs)


def _window(ctx, param, value):
    if value is None:
        return None
    try:
        low, high = (int(v) for v in value.split(":"))
    except ValueError:
        raise click.BadParameter("give LOW:HIGH, e.g. 0:6")
    return low, high


def _click_type(meta: dict, py_type):
    if meta["choices"] is not None:
        return click.Choice([str(c) for c in meta["choices"]])
    args = [a for a in typing.get_args(py_type) if a is not type(None)]     # `int | None` is an int option
    py_type = args[0] if len(args) == 1 else py_type
    base = {"int": int, "float": float}.get(getattr(py_type, "__name__", str(py_type)), None)
    if base is int:
        return click.IntRange(min=meta["min"], max=meta["max"])
    if base is float:
        return click.FloatRange(min=meta["min"], max=meta["max"])
    return str


def field_options(cls, exclude: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> list[tuple[list, dict]]:
    """(declarations, keywords) of click options for `cls`'s fields that carry metadata (in field order), each
    defaulting to None."""
    out = []
    for f in fields(cls):
        meta = f.metadata.get("cli")
        if meta is None or f.name in exclude or (only is not None and f.name not in only):
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        shown = meta["shown_default"] or _shown(f.default)
        help_text = f"{meta['help']}  [default: {shown}]"
        if meta["kind"] == "pair":
            out.append(([f"{flag}/--no-{flag[2:]}", f.name], {"default": None, "help": help_text,
                                                              "section": meta["section"]}))
            continue
        if meta["kind"] == "flag":          # a switch that is off unless given
            out.append(([flag, f.name], {"is_flag": True, "default": False, "help": meta["help"],
                                         "section": meta["section"]}))
            continue
        extra = {"callback": _window} if meta["kind"] == "window" else {"type": _click_type(meta, f.type)}
        out.append(([flag, f.name], {"default": None, "help": help_text, "metavar": meta["metavar"],
                                     "section": meta["section"], **extra}))
    return out


def _shown(default) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    return "none" if default is None else str(default)


def dataclass_options(cls, exclude: tuple[str, ...] = (), only: tuple[str, ...] | None = None):
    """A decorator adding field_options(cls) to a click command (`only`: just these fields)."""
    def decorate(f):
        for decls, kwargs in reversed(field_options(cls, exclude, only)):
            f = click.option(*decls, cls=SectionOption, **kwargs)(f)
        return f
    return decorate


def given(cls, params: dict) -> dict:
    """{field: value} of `cls`'s options that were given (not None), converted to the field's type."""
    out = {}
    for f in fields(cls):
        meta = f.metadata.get("cli")
        if meta is None or params.get(f.name) is None:
            continue
        value = params[f.name]
        out[f.name] = int(value) if meta["kind"] == "int-choice" else value
    return out
