"""The recovery options are made from RecoverConfig's fields (one declaration: help, type, choices, range), shared
by recover and profile, listed in --help under sections; --config FILE.toml sits between the command line and the
method's preset; every run writes run.toml, which repeats the run exactly."""

import json
import re
from dataclasses import fields

import click
import pytest
import torch
from click.testing import CliRunner

from conftest import assert_one_line_error
from diver_lite.cli.main import cli
from diver_lite.core.config import RecoverConfig
from diver_lite.options import SECTIONS

TINY = ["--model", "tiny-random", "--device", "cpu", "-q", "--no-png"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def command_option(command: str, name: str) -> click.Option:
    return next(p for p in cli.commands[command].params if p.name == name)


@pytest.mark.parametrize("command", ["recover", "profile"])
def test_every_recovery_field_is_an_option_with_the_fields_own_choices_and_range(command):
    from diver_lite.core.controls import CONTROLS
    from diver_lite.core.guidance import GUIDANCE_TARGETS

    with_cli = [f for f in fields(RecoverConfig) if "cli" in f.metadata]
    assert {f.name for f in with_cli} == {f.name for f in fields(RecoverConfig)} - {"batch_size"}
    for f in with_cli:
        option, meta = command_option(command, f.name), f.metadata["cli"]
        assert option.default is None and meta["help"] in option.help            # None: "not given"
        assert getattr(option, "section") == meta["section"]
        if meta["choices"] is not None:
            assert list(option.type.choices) == [str(c) for c in meta["choices"]]
    assert list(command_option(command, "control").type.choices) == list(CONTROLS)
    assert list(command_option(command, "guidance_target").type.choices) == list(GUIDANCE_TARGETS)
    assert command_option(command, "t_init").type.min == 0 and command_option(command, "num_sampling_steps").opts == \
        ["--sampling-steps"]


def test_the_model_options_are_one_declaration_shared_by_every_command_that_loads_a_model():
    from diver_lite.pipeline.engine import MODEL_FIELDS, EngineSpec

    for name in MODEL_FIELDS:
        meta = next(f for f in fields(EngineSpec) if f.name == name).metadata["cli"]
        for command in ("recover", "profile", "export"):
            if command == "profile" and name == "timestep_embedding":
                continue                       # profile's plans load the model as recover does, by folder
            option = command_option(command, name)
            assert option.default is None and meta["help"] in option.help, (command, name)


def test_the_engine_options_of_recover_are_engine_spec_fields():
    """--backend, --device, --onnx, --onnx-graph, --provider and --ort-sessions are EngineSpec's fields (help and
    choices from one declaration; not given = EngineSpec's default)."""
    from diver_lite.pipeline.engine import RUN_ENGINE_FIELDS, EngineSpec

    for f in fields(EngineSpec):
        if f.name not in RUN_ENGINE_FIELDS:
            continue
        meta, option = f.metadata["cli"], command_option("recover", f.name)
        assert option.default is None and meta["help"] in option.help, f.name
        if meta["choices"] is not None:
            assert list(option.type.choices) == list(meta["choices"]), f.name
    assert command_option("recover", "onnx_dir").opts == ["--onnx"]
    assert command_option("profile", "device").default is None


def test_the_run_options_of_recover_are_run_options_fields():
    """--layout, --experiment, --subset, --max-png, --resume and --overwrite are RunOptions' fields: the same
    choices, ranges and defaults from the command line and from Python (--max-png 1000 in both)."""
    from diver_lite.layouts import LAYOUTS
    from diver_lite.pipeline.run import RunOptions

    declared = {f.name: f for f in fields(RunOptions) if "cli" in f.metadata}
    assert set(declared) == {"layout", "experiment", "subset", "max_png", "resume", "overwrite"}
    for name, f in declared.items():
        option = command_option("recover", name)
        assert f.metadata["cli"]["help"] in option.help, name
    assert list(command_option("recover", "layout").type.choices) == list(LAYOUTS)
    experiment = command_option("recover", "experiment").type           # `int | None`: an integer option
    assert isinstance(experiment, click.IntRange) and experiment.min == 0
    assert command_option("recover", "resume").is_flag and RunOptions().max_png == 1000
    assert "[default: 1000]" in command_option("recover", "max_png").help


def test_help_lists_the_options_under_their_sections_in_order():
    text = run("recover", "--help").output
    titles = [line.rstrip(":") for line in text.splitlines() if line.rstrip(":") in SECTIONS]
    assert titles == list(SECTIONS)
    recovery, run_section = text.index("\nRecovery:"), text.index("\nRun:")
    assert recovery < text.index("--guidance-scale") < run_section < text.index("--seed")
    assert text.index("\nMemory:") < text.index("--precision") < recovery


def recover(src, out, *extra):
    result = run("recover", src, "-o", out, *TINY, *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())["config"]


def test_run_toml_repeats_a_run_exactly_and_the_command_line_wins_over_it(tmp_path, dm_file):
    first = recover(dm_file, tmp_path / "a", "--method", "dm", "--presets", "predd", "--guidance-scale", "0.3",
                    "--seed", "2", "--cfg-channels", "4", "--no-sigma-scaling", "--guidance-window", "1:4")
    again = recover(dm_file, tmp_path / "b", "--config", tmp_path / "a" / "run.toml")
    assert again == first
    read = lambda p: torch.load(p / "dm_set.pt", weights_only=True)["data"][0][0]     # noqa: E731
    assert torch.equal(read(tmp_path / "a"), read(tmp_path / "b"))
    assert (tmp_path / "b" / "run.toml").read_text() == (tmp_path / "a" / "run.toml").read_text()
    # command line > file > preset > default
    mixed = recover(dm_file, tmp_path / "c", "--config", tmp_path / "a" / "run.toml", "--guidance-scale", "0.7")
    assert mixed == {**first, "guidance_scale": 0.7}


def test_a_file_sits_between_the_preset_and_the_command_line(tmp_path, dm_file):
    (tmp_path / "part.toml").write_text("[recovery]\nguidance_scale = 0.25\nlabel_phase = \"concrete\"\n"
                                        "[run]\nbatch_size = 2\n")
    paper = RecoverConfig.preset_values("dm", 1, "paper")
    config = recover(dm_file, tmp_path / "o", "--method", "dm", "--presets", "paper", "--config",
                     tmp_path / "part.toml", "--label-phase", "all")
    assert config["guidance_scale"] == 0.25                        # the file over the preset (0.1)
    assert config["label_phase"] == "all"                          # the command line over the file
    assert config["t_init"] == paper["t_init"] and config["guidance_target"] == "xt"     # the preset's
    assert config["batch_size"] == 2


@pytest.mark.parametrize("text, needle", [
    ("[recovery]\nt_inti = 3\n", "unknown setting 't_inti'"),
    ("[recovery]\ncontrol = \"vae\"\n", "control = 'vae'"),
    ("[recovery]\nguidance_window = 3\n", "guidance_window"),
    ("[recovery]\nalign = \"yes\"\n", "align"),
    ("t_init = [\n", "not valid TOML"),
    ("out = \"elsewhere\"\n", "unknown setting 'out'"),
])
def test_a_bad_config_file_is_one_line_naming_the_setting(tmp_path, dm_file, text, needle):
    (tmp_path / "bad.toml").write_text(text)
    result = run("recover", dm_file, "-o", tmp_path / "o", *TINY, "--config", tmp_path / "bad.toml")
    assert_one_line_error(result, 2, needle)
    assert not (tmp_path / "o").exists()


def test_the_python_api_and_the_command_line_refuse_the_same_values_in_one_line(tmp_path, dm_file):
    from diver_lite.errors import ConfigError
    from diver_lite.pipeline.engine import EngineSpec

    with pytest.raises(ConfigError, match="budget_gb=nan"):
        EngineSpec(budget_gb=float("nan"))
    with pytest.raises(ConfigError, match="guidance window 5:9"):
        RecoverConfig(steps=4, guidance_window=(5, 9))
    result = run("recover", dm_file, "-o", tmp_path / "o", *TINY, "--steps", "4", "--guidance-window", "5:9")
    assert_one_line_error(result, 2, "guidance window 5:9")
    from diver_lite.pipeline.run import RunOptions

    for bad, needle in (({"layout": "bogus"}, "layout='bogus'"), ({"experiment": -1}, "not a count"),
                        ({"resume": True, "overwrite": True}, "contradict")):
        with pytest.raises(ConfigError, match=needle):
            RunOptions(**bad)
    assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "o", *TINY, "--resume", "--overwrite"), 2,
                          "contradict")


def test_export_options_are_its_spec_and_python_gets_the_same_errors(tmp_path):
    """export's options are ExportSpec's fields; a bad value is refused in one line by the CLI and by the
    dataclass alike, before any model is loaded or folder written."""
    from diver_lite.errors import ConfigError
    from diver_lite.export.spec import GRAPHS, ExportSpec

    for f in fields(ExportSpec):
        meta = f.metadata["cli"]
        option = command_option("export", f.name)
        assert option.default is None and meta["help"] in option.help, f.name
        if meta["choices"] is not None:
            assert list(option.type.choices) == [str(c) for c in meta["choices"]], f.name
    assert ExportSpec().graphs == GRAPHS and ExportSpec(graphs="dit, vae_decoder").graphs == ("dit", "vae_decoder")
    assert ExportSpec().target_for(embedded_prior=True) == "x0" and ExportSpec().target_for(False) == "xt"
    assert ExportSpec(guidance_target="x0").target_for(False) == "x0"
    for bad, needle in ((dict(graphs="dit,unet"), "unknown graphs ['unet']"), (dict(graphs=","), "unknown graphs"),
                        (dict(precision="int4"), "precision='int4'"), (dict(cfg_channels=5), "cfg_channels=5"),
                        (dict(guidance_target="z"), "guidance_target='z'"), (dict(provider=""), "provider=''")):
        with pytest.raises(ConfigError, match=re.escape(needle)):
            ExportSpec(**bad)
    out = tmp_path / "x"
    assert_one_line_error(run("export", "--model", "tiny-random", "-o", out, "--graphs", "dit,unet"), 2,
                          "unknown graphs ['unet']")
    assert not out.exists()
