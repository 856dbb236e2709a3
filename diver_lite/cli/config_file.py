"""--config FILE.toml and the run.toml every recovery writes. The file holds a command's options by their
parameter names, under tables named after the --help sections ([recovery], [model_and_backend], [memory],
[input_and_output], [run]); what the command line gives wins over the file, the file over a method's preset, the
preset over the defaults (for the recovery settings: cli/recover_settings.py). run.toml records the settings a
run actually used, so that `recover SET -o OUT2 --config OUT/run.toml` repeats it exactly."""

import math
import tomllib
from pathlib import Path

import click

from diver_lite.errors import ConfigError
from diver_lite.options import SECTIONS

# Per invocation, never read from or written to a file.
NOT_IN_FILE = ("input_path", "out", "config_file", "resume", "overwrite", "quiet", "shard")


def table_name(section: str) -> str:
    return section.lower().replace(" ", "_")


def read_config(path: Path, command: click.Command, ctx: click.Context) -> dict:
    """{parameter name: value} from a TOML file, each checked by its option's own type; unknown names refused."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read --config {path}: {getattr(e, 'strerror', None) or e}", "check the path")
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {path} is not valid TOML: {e}",
                          "fix the file: tables of option names, as a run's run.toml writes them")
    params = {p.name: p for p in command.params if p.name not in NOT_IN_FILE}
    values = {}
    for table, entries in data.items():
        if not isinstance(entries, dict):
            entries, table = {table: entries}, None      # a key outside any table
        for name, value in entries.items():
            if name not in params:
                raise ConfigError(f"--config {path}: unknown setting {name!r}" + (f" in [{table}]" if table else ""),
                                  "use the option's parameter name (t_init for --t-init; see run.toml of a run)")
            values[name] = _convert(params[name], value, ctx, path)
    return values


def _convert(param: click.Parameter, value, ctx, path: Path):
    try:
        if param.name == "guidance_window":
            low, high = (int(v) for v in value)
            return low, high
        if isinstance(param, click.Option) and (param.is_flag or param.is_bool_flag):
            if not isinstance(value, bool):
                raise TypeError(f"{value!r} is not true or false")
            return value
        if isinstance(value, (dict, list)):
            raise TypeError(f"{value!r} is not a single value")
        numeric = isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not numeric:
            value = str(value)                 # a choice such as cfg_channels = 3, as the command line gives it
        return param.type.convert(value, param, ctx)
    except (TypeError, ValueError, click.BadParameter) as e:
        msg = e.format_message() if isinstance(e, click.BadParameter) else str(e)
        raise ConfigError(f"--config {path}: {param.name} = {value!r}: {msg}", f"fix {param.name} in the file")


def apply_file(ctx: click.Context, params: dict, from_file: dict) -> dict:
    """The parameters with the file's values where the command line left the default."""
    source = ctx.get_parameter_source
    return {**params, **{k: v for k, v in from_file.items()
                         if source(k) in (None, click.core.ParameterSource.DEFAULT)}}


def write_run_toml(path: Path, command: click.Command, params: dict, recovery: dict, header: str) -> None:
    """run.toml: `recovery` (the RecoverConfig fields that ran) and the command's other parameters as used."""
    from diver_lite.layouts.files import atomic_write

    sections = {table_name(s): {} for s in SECTIONS}
    sections["recovery"].update(recovery)
    for p in command.params:
        value = params.get(p.name)
        if p.name in NOT_IN_FILE or p.name in recovery or value is None:
            continue
        section = table_name(getattr(p, "section", "Run"))
        sections.setdefault(section, {})[p.name] = value
    lines = [f"# {line}" for line in header.splitlines()]
    for table, entries in sections.items():
        if entries:
            lines += ["", f"[{table}]"] + [f"{k} = {_toml(v)}" for k, v in entries.items()]
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
