"""--keep-modulation: under int8, the adaLN modulation layers stay in 16 bit (more memory, closer to fp32)."""

from diver_lite.memory.tactic import Tactic

ENTRY = Tactic(
    name="keep_modulation", default=False, order=6, label_order=6, option="--keep-modulation",
    help="int8: keep the adaLN modulation layers in 16 bit (more memory, closer to fp32).",
    label=lambda v: "keep-modulation" if v else None,
    parse=lambda part: {"keep_modulation": True} if part == "keep-modulation" else None,
    numerics=lambda plan: plan.keep_modulation and plan.precision == "int8")
