"""The full-size DiT-XL/2 architecture with random weights (minutes of CPU, ~4 GB RAM): run with -m slow."""

import pytest
import torch

pytestmark = pytest.mark.slow


def test_tying_dit_xl2_embedders_saves_75m_parameters_and_keeps_outputs():
    from diffusers import DiTTransformer2DModel

    from diver_lite.models.tying import equalize_embedders, tie_embedders

    torch.manual_seed(0)
    dit = DiTTransformer2DModel(out_channels=8).eval()
    equalize_embedders(dit)  # as a converted checkpoint has them: 28 equal copies
    count = lambda: sum(p.numel() for p in dit.parameters())  # noqa: E731
    x, t, y = torch.randn(2, 4, 32, 32), torch.tensor([999, 20]), torch.tensor([207, 1000])
    with torch.no_grad():
        before, n_before = dit(x, timestep=t, class_labels=y).sample, count()
        saved = tie_embedders(dit)
        after, n_after = dit(x, timestep=t, class_labels=y).sample, count()
    assert round(n_before / 1e6, 1) == 749.8 and round(n_after / 1e6, 1) == 674.8
    assert saved == n_before - n_after and round(saved / 1e6) == 75
    assert torch.equal(before, after)
