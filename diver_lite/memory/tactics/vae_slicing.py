"""--vae-slicing: the VAE encodes and decodes one image at a time."""

from diver_lite.memory.tactic import Tactic


def _estimate(e, plan, s, device_type: str, batch: int) -> None:
    if plan.vae_slicing:
        e.vae_images = 1


def _apply(models, plan) -> None:
    models.vae.use_slicing = plan.vae_slicing


ENTRY = Tactic(
    name="vae_slicing", default=False, order=4, label_order=4, option="--vae-slicing",
    help="Run the VAE one image at a time.", exact=True,
    label=lambda v: "vae-slicing" if v else None,
    parse=lambda part: {"vae_slicing": True} if part == "vae-slicing" else None, estimate=_estimate, apply=_apply)
