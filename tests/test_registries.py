"""The registries: a layout, a memory tactic, an ONNX graph or a sampler is one file, and everything a user sees of
it (CLI choices, plan labels, detection, the exported graphs) comes from that file."""

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from diver_lite.cli.main import cli
from diver_lite.registry import discover, module_names


@pytest.mark.parametrize("package", ["diver_lite.layouts", "diver_lite.memory.tactics", "diver_lite.export.graphs",
                                     "diver_lite.core.samplers"])
def test_each_entry_is_named_after_its_own_file(package):
    """Each module's ENTRY carries that module's name (two entries that swapped names would fail here)."""
    import importlib

    named = {}
    for name in module_names(package):
        entry = getattr(importlib.import_module(f"{package}.{name}"), "ENTRY", None)
        if entry is not None:
            named[name] = entry.name
    assert named and all(module == entry for module, entry in named.items()), named
    assert sorted(e.name for e in discover(package)) == sorted(named.values())


def test_a_new_file_in_a_registry_folder_is_picked_up(tmp_path, monkeypatch):
    pkg = tmp_path / "myreg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "second.py").write_text("from types import SimpleNamespace\nENTRY = SimpleNamespace(name='b', order=2)\n")
    (pkg / "first.py").write_text("from types import SimpleNamespace\nENTRY = SimpleNamespace(name='a', order=1)\n")
    (pkg / "helper.py").write_text("X = 1\n")          # no ENTRY: not an entry
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [e.name for e in discover("myreg")] == ["a", "b"]
    sys.modules.pop("myreg", None)


def test_every_tactic_round_trips_through_its_label_and_has_a_cli_option():
    from diver_lite.memory.plan import TACTICS, RuntimePlan

    help_text = CliRunner().invoke(cli, ["recover", "--help"], terminal_width=200).output
    for tactic in TACTICS:
        assert tactic.option in help_text, tactic.name
        values = [True] if isinstance(tactic.default, bool) else [c for c in (tactic.choices or ("4",))
                                                                   if c != tactic.default]
        for value in values:
            kw = {tactic.name: value}
            if tactic.name == "keep_modulation":
                kw["precision"] = "int8"
            plan = RuntimePlan(**kw)
            assert RuntimePlan.parse(plan.label) == plan, plan.label


def test_tactics_marked_exact_are_what_a_resumed_run_may_change():
    from diver_lite.memory.plan import RuntimePlan

    streamed = RuntimePlan("bf16", "stream", attention_slice="2", vae_slicing=True)
    assert streamed.numerics() == RuntimePlan("bf16")
    assert RuntimePlan("bf16", vae_tiling=True).numerics().label == "bf16+vae-tiling"
    assert RuntimePlan("bf16", keep_modulation=True).numerics() == RuntimePlan("bf16")


def test_layout_choices_and_graph_choices_come_from_the_registries():
    """The options' own choices, not a search of --help's text."""
    from diver_lite.layouts import LAYOUTS

    layout = next(p for p in cli.commands["recover"].params if p.name == "layout")
    assert list(layout.type.choices) == list(LAYOUTS)
    assert list(LAYOUTS) == [e.name for e in discover("diver_lite.layouts")]          # in their detection order
    graphs = module_names("diver_lite.export.graphs")
    export = cli.commands["export"]
    choice = next(p for p in export.params if p.name == "graphs")
    assert set(graphs) == {"dit", "guided_step", "vae_encoder", "vae_decoder"}
    from diver_lite.export.spec import ExportSpec

    assert choice.default is None and list(ExportSpec().graphs) == graphs   # every graph file unless --graphs narrows
    assert ",".join(graphs) in choice.help


def test_the_sampler_callback_reports_each_step_as_k_diffusion_does():
    from diver_lite.core.config import RecoverConfig
    from diver_lite.core.sampler import diver_sample
    from diver_lite.core.schedule import build_schedule
    from diver_lite.models.diver_models import DIT_SCHEDULE

    schedule = build_schedule(RecoverConfig(t_init=4, steps=5), DIT_SCHEDULE)
    z = np.zeros((2, 4, 2, 2), np.float32)
    seen = []
    x0 = diver_sample(lambda x, t, y, s: np.concatenate([x * 0.1, x * 0], axis=1), z + 1, z, np.array([1, 2]), schedule,
                      callback=seen.append)
    assert [s["i"] for s in seen] == [4, 3, 2, 1, 0]
    assert all({"x", "i", "x0_pred"} <= set(s) for s in seen)
    assert np.array_equal(seen[-1]["x"], x0)
