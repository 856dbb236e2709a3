"""One DIVER reverse step as arithmetic that runs the same on torch tensors and numpy arrays (docs/algorithm.md,
steps 3-5).

Shapes: x, z_inh, x0_pred, eps: [B, C, h, w]; model_output: [B, 2C, h, w] = (eps, learned-variance values v).
"""

from diver_lite.core.schedule import StepParams


def cfg_combine(out_cond, out_uncond, scale: float, channels: int):
    """eps_u + s (eps_c - eps_u) on the first `channels` latent channels (3: original DiT, 4: diffusers). The
    other eps channels and the variance values stay the conditional branch's, as in DiT's forward_with_cfg."""
    guided = out_uncond[:, :channels] + scale * (out_cond[:, :channels] - out_uncond[:, :channels])
    out = out_cond * 1  # a copy that keeps the array type
    out[:, :channels] = guided
    return out


def cfg_denoise(run, concat, x, timestep: int, class_labels, null_labels, cfg_scale: float, channels: int):
    """The sampler's denoiser call over any backend. run(x, timestep, labels) -> model_output evaluates the DiT;
    concat joins along the batch. Unconditional: the null class alone. Conditional: the doubled batch
    [x; x] with labels [y; null], combined by CFG."""
    if class_labels is None:
        return run(x, timestep, null_labels)
    if cfg_scale == 1.0:
        return run(x, timestep, class_labels)
    B = x.shape[0]
    out = run(concat([x, x]), timestep, concat([class_labels, null_labels]))
    return cfg_combine(out[:B], out[B:], cfg_scale, channels)  # slice by B (not chunk) for symbolic batches


def predict_x0(x, eps, p: StepParams):
    """x0_pred = (x - sqrt(1 - abar_i) eps) / sqrt(abar_i), not clipped."""
    return (x - (1 - p.alpha_bar) ** 0.5 * eps) / p.alpha_bar ** 0.5


def learned_sigma(v, p: StepParams):
    """sigma_i = exp(1/2 log Sigma), log Sigma = f log beta_i + (1 - f) log beta~_i, f = (v + 1) / 2: DiT's
    learned range. Written as a power so that it needs no exp (numpy and torch alike)."""
    frac = (v + 1) * 0.5
    sigma_min = 2.718281828459045 ** (0.5 * p.log_posterior_var)
    ratio = 2.718281828459045 ** (0.5 * (p.log_beta - p.log_posterior_var))
    return sigma_min * ratio ** frac


def ddim_update(x0_pred, eps, p: StepParams):
    """DDIM with eta = 0: x_{i-1} = sqrt(abar_{i-1}) x0_pred + sqrt(1 - abar_{i-1}) eps."""
    return p.alpha_bar_prev ** 0.5 * x0_pred + (1 - p.alpha_bar_prev) ** 0.5 * eps


def ddpm_update(x, x0_pred, sigma, noise, p: StepParams):
    """The posterior mean of q(x_{i-1} | x_i, x0_pred) plus sigma_i * noise (no noise at i = 0)."""
    alpha = p.alpha_bar / p.alpha_bar_prev
    beta = 1 - alpha
    mean = (p.alpha_bar_prev ** 0.5 * beta / (1 - p.alpha_bar)) * x0_pred \
        + (alpha ** 0.5 * (1 - p.alpha_bar_prev) / (1 - p.alpha_bar)) * x
    return mean + sigma * noise if p.index > 0 else mean


# What the semantic guidance pulls toward the inherited latent: "x0", the step's prediction x0_pred (PReDD's code),
# or "xt", the running latent x_i (the DIVER paper's equation).
GUIDANCE_TARGETS = ("x0", "xt")


def semantic_guidance(x_prev, pulled, z_inh, sigma, p: StepParams, sigma_scaling: bool = True):
    """x_{i-1} <- x_{i-1} - lambda_i sigma_i (pulled - z_inh), `pulled` being x0_pred (PReDD) or x_i (the paper):
    closed form, no gradient through any model. No branch on lambda_i = 0 (the update is then exactly x_{i-1}),
    so the step traces into an ONNX graph."""
    scale = p.guidance * sigma if sigma_scaling else p.guidance
    return x_prev - scale * (pulled - z_inh)


def guidance_pulled(x, x0_pred, target: str):
    """The tensor the guidance pulls toward z_inh: x0_pred ("x0") or the step's input x_i ("xt")."""
    if target not in GUIDANCE_TARGETS:
        raise ValueError(f"guidance target {target!r} is not one of {GUIDANCE_TARGETS}")
    return x0_pred if target == "x0" else x


def diver_step(x, model_output, z_inh, p: StepParams, update, noise=None, sigma_scaling: bool = True,
               target: str = "x0"):
    """x_i -> (x_{i-1}, x0_pred) from the (CFG-combined) model output. `update(x, x0_pred, eps, sigma, noise, p)` is
    a sampler's (core/samplers/); the guidance then pulls `target` (GUIDANCE_TARGETS) toward z_inh."""
    c = x.shape[1]
    eps, v = model_output[:, :c], model_output[:, c:]
    x0_pred = predict_x0(x, eps, p)
    sigma = learned_sigma(v, p)
    x_prev = update(x, x0_pred, eps, sigma, noise, p)
    return semantic_guidance(x_prev, guidance_pulled(x, x0_pred, target), z_inh, sigma, p, sigma_scaling), x0_pred
