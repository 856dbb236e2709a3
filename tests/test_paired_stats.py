"""The statistics behind every 'helps / hurts / neutral' and the pre-registered analysis: Student-t p-values and
quantiles against tabled values, Holm's step-down adjustment, the smallest detectable effect."""

import numpy as np
import pytest

from diver_lite.experiments.fashion_mnist.paired import (holm, paired_difference, paired_test, smallest_detectable,
                                                         t_quantile, t_two_sided_p)


@pytest.mark.parametrize("t,df,p", [(2.145, 14, 0.05), (2.776, 4, 0.05), (12.706, 1, 0.05), (2.977, 14, 0.01),
                                    (1.761, 14, 0.10), (0.0, 9, 1.0)])
def test_t_p_values_match_the_tables(t, df, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 14) == pytest.approx(2.1448, abs=1e-3)
    assert t_quantile(0.8, 14) == pytest.approx(0.8681, abs=1e-3)
    assert t_quantile(0.99375, 14) == pytest.approx(2.8640, abs=2e-3)


def test_holm_steps_down_and_stays_monotone():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})
    assert holm({"x": 0.3, "y": 0.6}) == pytest.approx({"x": 0.6, "y": 0.6})


def test_paired_test_and_difference_agree_and_detectable_effect_shrinks_with_n():
    rng = np.random.default_rng(0)
    a, b = rng.normal(50, 2, 15), rng.normal(49, 2, 15)
    t, d = paired_test(list(a - b)), paired_difference(list(a), list(b))
    assert t["mean"] == pytest.approx(d["mean"]) and t["lo"] == pytest.approx(d["lo"]) and t["p"] == pytest.approx(
        d["p"])
    assert t["sd"] == pytest.approx(float(np.std(a - b, ddof=1)))
    assert smallest_detectable(1.7, 15) == pytest.approx((2.1448 + 0.8681) * 1.7 / 15 ** 0.5, rel=1e-3)
    assert smallest_detectable(1.7, 60) < smallest_detectable(1.7, 15)


def test_the_preregistered_analysis_uses_whole_seeds_on_one_cpu_and_holm_over_the_four(tmp_path):
    """benchmarks/decisive_analyse.py on made-up runs: a seed counts only when all of its 60 runs exist on one
    CPU; D - R is computed per seed as the mean over the two stage-1 sets; Holm is over the four comparisons."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import decisive_analyse as d

    rng = np.random.default_rng(1)
    sets, rows = {}, {"A": [], "B": []}
    shift = {"S": 0.0, "P": 5.0, "R": 5.5, "D": 8.0, "Q": 1.0}
    for stage in d.SETS:
        for arm in d.ARMS:
            for seed in range(4):
                fp = f"{stage}{arm}{seed if arm in d.PER_SEED else ''}"
                sets[fp] = [stage, arm, seed if arm in d.PER_SEED else None]
                if seed == 3 and stage == "B" and arm == "Q":
                    continue                                   # seed 3 is not whole
                for student in d.STUDENTS:
                    rows[stage].append({"setting": "x", "set": fp, "student": student, "seed": seed, "cpu": "cpu1",
                                        "ema": 40 + shift[arm] + rng.normal(0, 1), "raw": None})
    (tmp_path / "sets.json").write_text(json.dumps({"cpu1": sets}))
    for stage in d.SETS:
        (tmp_path / f"runs_{stage}.jsonl").write_text("\n".join(json.dumps(r) for r in rows[stage]) + "\n")
    text = d.analyse(tmp_path)
    assert "INTERIM analysis: 3 of 15 seeds complete" in text and "cpu1: [0, 1, 2]" in text
    table = d.scores(d.load_rows(tmp_path), d.whole_seeds(d.load_rows(tmp_path)))
    by_hand = [np.mean([d.score(table[(st, "D", s)]) - d.score(table[(st, "R", s)]) for st in d.SETS])
               for s in range(3)]
    assert d.differences(table, [0, 1, 2], "D", "R") == pytest.approx(by_hand)
    assert f"| D − R: what the DiT adds over the VAE round trip | {np.mean(by_hand):+.2f}" in text
    assert text.count("Holm") >= 2
    # Seeds finished on a second CPU: the protocol's sensitivity analysis repeats the four comparisons on the
    # largest single-CPU block only (here cpu1's seeds 0-2, so its D - R is the one computed by hand above).
    sets2 = {}
    for stage in d.SETS:
        for arm in d.ARMS:
            for seed in (4, 5):
                fp = f"2{stage}{arm}{seed if arm in d.PER_SEED else ''}"
                sets2[fp] = [stage, arm, seed if arm in d.PER_SEED else None]
                for student in d.STUDENTS:
                    rows[stage].append({"setting": "x", "set": fp, "student": student, "seed": seed, "cpu": "cpu2",
                                        "ema": 60 + shift[arm] + rng.normal(0, 1), "raw": None})
    (tmp_path / "sets.json").write_text(json.dumps({"cpu1": sets, "cpu2": sets2}))
    for stage in d.SETS:
        (tmp_path / f"runs_{stage}.jsonl").write_text("\n".join(json.dumps(r) for r in rows[stage]) + "\n")
    text = d.analyse(tmp_path)
    assert "5 of 15 seeds complete" in text and "cpu2: [4, 5]" in text
    sensitivity = text[text.index("largest single-CPU block, cpu1, seeds [0, 1, 2]"):]
    assert f"| D − R: what the DiT adds over the VAE round trip | {np.mean(by_hand):+.2f}" in sensitivity


def test_the_raw_dit_follow_up_pairs_w_with_the_decisive_seeds_of_its_cpu(tmp_path):
    """benchmarks/followup_analyse.py: the five lowest whole decisive seeds of this CPU are chosen (by number, not
    by results), W is paired with set A's D and S of those seeds, Holm over the two comparisons."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import decisive_analyse as d
    import followup_analyse as f

    rng = np.random.default_rng(2)
    decisive, keep = tmp_path / "decisive", tmp_path / "followup"
    decisive.mkdir()
    keep.mkdir()
    sets, rows = {}, {"A": [], "B": []}
    shift = {"S": 0.0, "P": 5.0, "R": 5.5, "D": 8.0, "Q": 1.0}
    for seed in (1, 2, 4, 5, 6, 7):                     # seed 0 and 3 are not whole on this CPU
        for stage in d.SETS:
            for arm in d.ARMS:
                fp = f"{stage}{arm}{seed if arm in d.PER_SEED else ''}"
                sets[fp] = [stage, arm, seed if arm in d.PER_SEED else None]
                rows[stage] += [{"setting": "x", "set": fp, "student": s, "seed": seed, "cpu": "cpu1",
                                 "ema": 40 + shift[arm] + rng.normal(0, 1), "raw": None} for s in d.STUDENTS]
    (decisive / "sets.json").write_text(json.dumps({"cpu1": sets}))
    for stage in d.SETS:
        (decisive / f"runs_{stage}.jsonl").write_text("\n".join(json.dumps(r) for r in rows[stage]) + "\n")
    assert f.chosen_seeds(decisive, "cpu1") == [1, 2, 4, 5, 6] and f.chosen_seeds(decisive, "cpu2") == []
    w = [{"setting": "x", "set": f"W{s}", "student": st, "seed": s, "cpu": "cpu1", "ema": 44 + rng.normal(0, 1),
          "raw": None} for s in (1, 2, 4, 5, 6) for st in d.STUDENTS]
    (keep / "runs_W.jsonl").write_text("\n".join(json.dumps(r) for r in w) + "\n")
    text = f.analyse(keep, decisive, "cpu1")
    assert "Final analysis of the raw-DiT arm: 5 of 5 seeds" in text
    table = d.scores(d.load_rows(decisive), {s: "cpu1" for s in (1, 2, 4, 5, 6)})
    ws = f.w_scores(keep, "cpu1")
    by_hand = [d.score(table[("A", "D", s)]) - d.score(ws[s]) for s in (1, 2, 4, 5, 6)]
    assert f"| D − W: what inheritance and guidance add over sampling the class | {np.mean(by_hand):+.2f}" in text
    # the runs the evaluation keeps go to KEEP and come back, this CPU's only
    state = tmp_path / "runs" / "eval_W" / ".diver-lite" / "runs.jsonl"
    assert f.copy_rows(keep / "runs_W.jsonl", state, "cpu2") == 0
    assert f.copy_rows(keep / "runs_W.jsonl", state, "cpu1") == 30 and f.copy_rows(state, keep / "runs_W.jsonl") == 0


def test_the_mtt_follow_up_runs_the_same_analysis_on_its_one_stage_1_set(tmp_path):
    """benchmarks/followup_mtt_analyse.py: the decisive analysis with one stage-1 set (M) and n = 5: a seed is whole
    with its 30 runs, d_s is set M's own difference, and the tables have one column per set, no pooled one."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import decisive_analyse as d
    import followup_mtt_analyse as m

    rng = np.random.default_rng(3)
    sets, rows = {}, []
    shift = {"S": 0.0, "P": 4.0, "R": 4.5, "D": 6.0, "Q": 2.0}
    for arm in d.ARMS:
        for seed in range(3):
            fp = f"M{arm}{seed if arm in d.PER_SEED else ''}"
            sets[fp] = ["M", arm, seed if arm in d.PER_SEED else None]
            for student in d.STUDENTS[:5] if (seed, arm) == (2, "D") else d.STUDENTS:     # seed 2 lacks one run
                rows.append({"setting": "x", "set": fp, "student": student, "seed": seed, "cpu": "cpu1",
                             "ema": 40 + shift[arm] + rng.normal(0, 1), "raw": None})
    (tmp_path / "sets.json").write_text(json.dumps({"cpu1": sets}))
    (tmp_path / "runs_M.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = d.load_rows(tmp_path, m.MTT)
    assert d.whole_seeds(loaded, m.MTT) == {0: "cpu1", 1: "cpu1"} and d.load_rows(tmp_path) == []
    text = d.analyse(tmp_path, m.MTT)
    assert "INTERIM analysis: 2 of 5 seeds complete (60 of 150 runs)" in text
    assert "| arm | M: score | ConvNet M |" in text and "| comparison | set M |" in text and "B only" not in text
    assert "## The pre-declared comparisons (the follow-up's, secondary; Holm over the four)" in text
    table = d.scores(loaded, {0: "cpu1", 1: "cpu1"})
    by_hand = [d.score(table[("M", "D", s)]) - d.score(table[("M", "R", s)]) for s in (0, 1)]
    assert f"| D − R: what the DiT adds over the VAE round trip | {np.mean(by_hand):+.2f}" in text
    assert d.set_path(tmp_path, "M", "D", 4, m.MTT) == tmp_path / "M" / "D" / "seed4" / "mtt"
