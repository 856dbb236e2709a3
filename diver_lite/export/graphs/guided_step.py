"""guided_step.onnx: (x, timestep, class_labels, z_inh, step_params) -> (x_prev, x0_pred): one whole DIVER DDIM
step, CFG and semantic guidance folded in, for runtimes that loop over one graph."""

from types import SimpleNamespace

import numpy as np
import torch

from diver_lite.core.guidance import (cfg_combine, ddim_update, guidance_pulled, learned_sigma, predict_x0,
                                     semantic_guidance)
from diver_lite.export.graph_spec import GraphSpec
from diver_lite.export.manifest import STEP_PARAMS


class GuidedStepGraph(torch.nn.Module):
    """One DIVER DDIM step on the doubled batch [x; x] with labels [y; null]: the same guidance.py functions the
    sampler calls, traced with the step's numbers as graph inputs."""

    def __init__(self, transformer, null_class: int, cfg_channels: int, sigma_scaling: bool,
                 guidance_target: str = "x0"):
        super().__init__()
        self.transformer, self.null_class = transformer, null_class
        self.cfg_channels, self.sigma_scaling = cfg_channels, sigma_scaling
        self.guidance_target = guidance_target      # x0 (PReDD's code) or xt (the paper's equation), fixed here

    def forward(self, x, timestep, class_labels, z_inh, step_params):
        B, C = x.shape[0], x.shape[1]
        p = SimpleNamespace(**{name: step_params[k] for k, name in enumerate(STEP_PARAMS)})
        null = torch.full_like(class_labels, self.null_class)
        out = self.transformer(torch.cat([x, x]), timestep=timestep.expand(2 * B),
                               class_labels=torch.cat([class_labels, null])).sample
        out = cfg_combine(out[:B], out[B:], p.cfg_scale, self.cfg_channels)     # slice by B: symbolic batch
        eps, v = out[:, :C], out[:, C:]
        x0_pred = predict_x0(x, eps, p)
        pulled = guidance_pulled(x, x0_pred, self.guidance_target)
        x_prev = semantic_guidance(ddim_update(x0_pred, eps, p), pulled, z_inh, learned_sigma(v, p), p,
                                   self.sigma_scaling)
        return x_prev, x0_pred


def step_params_array(p) -> np.ndarray:
    """A StepParams as guided_step.onnx's step_params input."""
    return np.array([getattr(p, name) for name in STEP_PARAMS], dtype=np.float32)


def example(models, batch: int) -> tuple:
    g = torch.Generator().manual_seed(batch)
    C, h = models.latent_channels, models.latent_size
    x = torch.randn(batch, C, h, h, generator=g)
    labels = torch.randint(0, models.num_classes, (batch,), generator=g)
    return (x, torch.tensor([500]), labels, torch.randn(batch, C, h, h, generator=g),
            torch.tensor([0.3, 0.35, -4.0, -4.2, 0.5, 4.0]))


ENTRY = GraphSpec(
    "guided_step", ("x", "timestep", "class_labels", "z_inh", "step_params"), ("x_prev", "x0_pred"),
    module=lambda models, cfg_channels, sigma_scaling, guidance_target: GuidedStepGraph(
        models.transformer, models.null_class, cfg_channels, sigma_scaling, guidance_target),
    example=example, unbatched=("timestep", "step_params"), order=1,
    contract="One DIVER DDIM step: CFG on [x; x] with labels [class_labels; null], x0_pred, the DDIM update and the "
             "semantic guidance, which pulls the manifest's guidance_target (x0: x0_pred; xt: x) toward z_inh. Under label_phase=concrete an unconditional step passes the null class as "
             "class_labels (both CFG halves are then the unconditional output) and step_params' guidance lambda_i "
             "is 0 there.")
