"""The evaluation's results as a Markdown table (accuracies, then paired differences against the baseline set) and
a chart (mean accuracy per student, then each set's paired difference with its 95 % interval). No I/O."""

import numpy as np

from diver_lite.experiments.fashion_mnist.evaluate import PROXY, EvalConfig
from diver_lite.experiments.fashion_mnist.paired import holm, smallest_detectable
from diver_lite.experiments.fashion_mnist.students import CROSS_ARCH, NORM_GROUPS, SHALLOW, norm_group

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _signed(v: float) -> str:
    return f"{v:+.2f}".replace("-", "−")


def interval(p: dict, adjusted_p: float | None = None) -> str:
    """mean [95 % interval] and a verdict: from the interval, or (per student, exploratory) from the Holm-adjusted
    p-value within the row; "neutral" comes with the smallest effect the comparison could detect (80 % power)."""
    if p["lo"] is None:
        return f"{_signed(p['mean'])} (one seed)"
    verdict = p["verdict"] if adjusted_p is None else (
        "neutral" if adjusted_p >= 0.05 else "helps" if p["mean"] > 0 else "hurts")
    if verdict == "neutral" and p.get("sd") is not None:
        verdict += f" (detectable ±{smallest_detectable(p['sd'], p['n']):.1f})"
    return f"{_signed(p['mean'])} [{_signed(p['lo'])}, {_signed(p['hi'])}] {verdict}"


def render_table(results: dict[str, dict], cfg: EvalConfig, baseline: str | None = None) -> str:
    names = list(cfg.students)
    cross = [n for n in CROSS_ARCH if n in names]
    shallow = [n for n in SHALLOW if n in names]
    lines = [f"Test accuracy (%) on real images, EMA weights; protocol `{cfg.protocol}` ({cfg.epochs} epochs, lr "
             f"{cfg.lr}{', per-student overrides ' + str(cfg.lr_overrides) if cfg.lr_overrides else ''}), seeds "
             f"{list(cfg.seeds)}, DSA {cfg.dsa}. cross-arch = mean over {', '.join(cross) or '(none evaluated)'} "
             f"(PReDD's score); shallow = mean over {', '.join(shallow) or '(none evaluated)'}; {PROXY} is the "
             "distillation proxy, shown beside the score. ± is the sample SD over seeds.", "",
             "| set | " + " | ".join(names) + f" | cross-arch | {PROXY} (proxy) | shallow |",
             "|---|" + "---|" * (len(names) + 3)]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for label, r in results.items():
        cells = [f"{r['students'][n]['mean']:.2f} ± {r['students'][n]['std']:.2f}" for n in names]
        proxy = r["students"][PROXY]["mean"] if PROXY in r["students"] else None
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(r['cross_arch'])} | {fmt(proxy)} | "
                     f"{fmt(r['shallow'])} |")
    groups = {g: [n for n in names if norm_group(n, cfg.resnet_norm) == g] for g in NORM_GROUPS}
    groups = {g: members for g, members in groups.items() if members}
    lines += ["", "By where the students' normalisation statistics come from (mean accuracy of the group; BatchNorm "
              "estimates them from the set's batches, so a set's pixel statistics reach it directly): "
              + "; ".join(f"{g}: {', '.join(m)}" for g, m in groups.items()) + ".", "",
              "| set | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for label, r in results.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{np.mean([r['students'][n]['mean'] for n in m]):.2f}" for m in groups.values()) + " |")
    paired = {label: r["paired"] for label, r in results.items() if "paired" in r}
    if paired:
        cols = names + (["cross_arch"] if cross else [])
        lines += ["", f"Paired difference against `{baseline}` (points; same student, same seeds; mean [95 % "
                  "interval], Student t). cross-arch: 'helps' / 'hurts' when the interval excludes zero. Per student "
                  "(exploratory): 'helps' / 'hurts' when the Holm-adjusted p within the row is below 0.05. 'neutral' "
                  "gives the smallest difference the seeds could detect with 80 % power, not 'no effect'.", "",
                  "| set | " + " | ".join(c.replace("_", "-") for c in cols) + " |", "|---|" + "---|" * len(cols)]
        for label, p in paired.items():
            adjusted = holm({c: p[c]["p"] for c in names if c in p and p[c].get("p") is not None})
            lines.append(f"| {label} | " + " | ".join(
                interval(p[c], adjusted.get(c) if c != "cross_arch" else None) if c in p else "-" for c in cols)
                + " |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, dict], students: tuple[str, ...], width: int = 840, height: int = 560) -> np.ndarray:
    """Top: grouped bars of mean accuracy (one group per student, one bar per set). Bottom: each compared set's
    paired difference against the baseline, a dot with its 95 % interval, per student and for the score."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, right = 50, width - 10
    cols = list(students) + ["cross_arch"]
    group = (right - left) / len(cols)
    # Top panel: accuracy.
    top, bottom = 30, height // 2 - 30
    bar = group * 0.8 / max(1, len(results))
    draw.line([left, bottom, right, bottom], fill=(0, 0, 0))
    for g, name in enumerate(cols):
        x0 = left + g * group + group * 0.1
        for k, r in enumerate(results.values()):
            acc = r["cross_arch"] if name == "cross_arch" else r["students"][name]["mean"]
            if acc is None:
                continue
            y = bottom - (bottom - top) * acc / 100
            draw.rectangle([x0 + k * bar, y, x0 + (k + 1) * bar - 2, bottom], fill=COLOURS[k % len(COLOURS)])
        draw.text((x0, bottom + 4), name[:12], fill=(0, 0, 0))
    for k, label in enumerate(results):
        draw.text((left + 5 + 200 * k, 8), label[-30:], fill=COLOURS[k % len(COLOURS)])
    draw.text((2, top - 4), "100 %", fill=(0, 0, 0))
    draw.text((20, bottom - 10), "0", fill=(0, 0, 0))
    # Bottom panel: paired differences with intervals.
    paired = [(k, r["paired"]) for k, r in enumerate(results.values()) if "paired" in r]
    top, bottom = height // 2 + 10, height - 30
    values = [v for _, p in paired for d in p.values() for v in (d["lo"], d["hi"], d["mean"]) if v is not None]
    span = max([1.0] + [abs(v) for v in values]) * 1.1
    y_of = lambda v: (top + bottom) / 2 - (bottom - top) / 2 * v / span  # noqa: E731
    draw.line([left, y_of(0), right, y_of(0)], fill=(120, 120, 120))
    draw.text((2, top), f"+{span:.1f}", fill=(0, 0, 0))
    draw.text((2, bottom - 10), f"-{span:.1f}", fill=(0, 0, 0))
    draw.text((left + 5, top - 12), "paired difference vs baseline (points, 95 % interval)", fill=(0, 0, 0))
    for g, name in enumerate(cols):
        for j, (k, p) in enumerate(paired):
            if name not in p:
                continue
            x = left + g * group + group * (j + 1) / (len(paired) + 1)
            d, colour = p[name], COLOURS[k % len(COLOURS)]
            if d["lo"] is not None:
                draw.line([x, y_of(d["lo"]), x, y_of(d["hi"])], fill=colour, width=2)
            draw.ellipse([x - 3, y_of(d["mean"]) - 3, x + 3, y_of(d["mean"]) + 3], fill=colour)
        draw.text((left + g * group + group * 0.1, bottom + 4), name[:12], fill=(0, 0, 0))
    return np.asarray(img)
