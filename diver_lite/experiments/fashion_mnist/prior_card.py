"""The model card of a trained prior (MODEL_CARD.md): its data, models, training command and cost, measured
quality, and the train-prior command line that trains it again. No I/O: the CLI writes the text."""

from diver_lite.experiments.fashion_mnist.prior_training import PriorConfig


def _options(config: PriorConfig) -> str:
    """The train-prior options that differ from their defaults, so the card's command reproduces the run."""
    default = PriorConfig()
    flags = {"continued_from": "--continue-from", "vae_steps": "--vae-steps", "dit_steps": "--dit-steps",
             "dit_hidden": "--dit-width", "dit_depth": "--dit-depth", "dit_batch": "--dit-batch",
             "dit_lr_schedule": "--dit-lr-schedule"}
    if config.continued_from:   # the DiT's size is the folder's, and no VAE trains
        flags = {k: v for k, v in flags.items() if k not in ("vae_steps", "dit_hidden", "dit_depth")}
    return "".join(f" {flag} {getattr(config, k)}" for k, flag in flags.items()
                   if getattr(config, k) != getattr(default, k))


def training_command(config: PriorConfig, data_kind: str = "fashion-mnist") -> str:
    """The train-prior command line that trains `config` again (DIR: the output folder)."""
    data = "" if data_kind == "fashion-mnist" else " --data FOLDER"
    return f"diver-lite train-prior{data} -o DIR --seed {config.seed}" + _options(config)


def previous_training(previous_config: dict | None) -> str:
    """How the prior that --continue-from named was trained, from its metrics.json's config (None: unknown)."""
    if not previous_config:
        return "see that prior's card for how it was trained"
    fields = PriorConfig.__dataclass_fields__
    cfg = PriorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in previous_config.items() if k in fields})
    return f"which `{training_command(cfg)}` trained for {cfg.dit_steps} DiT steps" + (
        f", itself continued from {cfg.continued_from}" if cfg.continued_from else "")


def render_model_card(config: PriorConfig, metrics: dict, source: str, seconds: dict,
                      data_kind: str = "fashion-mnist") -> str:
    """MODEL_CARD.md: data, models, training (with its command and cost) and the measured quality."""
    params = metrics.get("parameters", {})
    classes = metrics.get("classes", [])
    latent = config.image_size // 2 ** (len(config.vae_channels) - 1)
    fmnist = data_kind == "fashion-mnist"
    if fmnist:
        title, what = "# diver-lite embedded default prior", "Fashion-MNIST"
        data = [f"- Fashion-MNIST training split ({source}); 28x28 grey images padded to 32x32 and replicated to 3 "
                "channels, in [-1, 1]. Labels 0-9: " + ", ".join(classes) + ".",
                "- Licence of the data: MIT (Zalando SE). Licence of these weights: MIT, as diver-lite."]
        purpose = ("It makes `diver-lite recover` work out of the box and gives the tests real weights. It is not a "
                   "substitute for DiT-XL/2 on ImageNet.")
    else:
        title, what = "# diver-lite prior for an image folder", "an image folder"
        data = [f"- {source}; RGB, edge-padded to {config.image_size}x{config.image_size} where the size is not a "
                f"multiple of 8, in [-1, 1]. Labels 0-{len(classes) - 1} (sorted folder names): "
                + ", ".join(classes) + ".",
                "- Licence of the data: its owner's. These weights derive from it."]
        purpose = "It recovers distilled sets of this data with `diver-lite recover --model DIR`."
    command = training_command(config, data_kind)
    return "\n".join([
        title, "",
        "A small class-conditional latent diffusion transformer and its VAE, of the diffusers classes that DiT-XL/2 "
        f"uses (DiTTransformer2DModel with learned sigma, AutoencoderKL), trained by `diver-lite train-prior` on "
        f"{what}. {purpose}", "",
        "## Data", "", *data, "",
        "## Models", "",
        f"- VAE: AutoencoderKL, block_out_channels {list(config.vae_channels)}, latent 4 x {latent} x {latent}, "
        f"scaling factor {metrics.get('scaling_factor', 0):.5f} (1 / std of the latents, as sd-vae's 0.18215); "
        f"{params.get('vae', 0):,} parameters.",
        f"- DiT: hidden {config.dit_hidden}, {config.dit_heads} heads, depth {config.dit_depth}, patch "
        f"{config.dit_patch} ({(latent // config.dit_patch) ** 2} tokens), {len(classes)} classes + the null class, "
        "learned sigma (8 output channels); "
        f"{params.get('dit', 0):,} parameters with the per-block embedders tied.", "",
        f"## Training (reproducible: `{command}`)", "",
        (f"- VAE: {config.vae_steps} steps, batch {config.vae_batch}, AdamW lr {config.vae_lr} cosine, L1 + "
         f"{config.vae_kl_weight} KL." if not config.continued_from else
         f"- VAE: {config.continued_from}'s, as it is (not retrained). DiT: starts from {config.continued_from}'s "
         f"weights ({previous_training(metrics.get('continued_from_config'))}); AdamW and the EMA start afresh."),
        f"- DiT: {config.dit_steps} {'more ' if config.continued_from else ''}steps, batch {config.dit_batch}, "
        f"AdamW lr {config.dit_lr} with warm-up{', cosine to zero' if config.dit_lr_schedule == 'cosine' else ''}, "
        f"hybrid loss (eps MSE + VB for the variance), {int(config.label_dropout * 100)} % label dropout, EMA "
        f"{config.ema_decay}; linear betas 1e-4..0.02 over 1000 steps (DiT's).",
        f"- Time on {metrics['device']}: " + ", ".join(
            f"{k} {v / 60:.1f} min" for k, v in seconds.items()) + ".",
        "- Loss curves: `loss.png`.", "",
        "## Quality (measured by the training command)", "",
        f"- VAE reconstruction PSNR on real test images: {metrics['vae_reconstruction_psnr_db']:.2f} dB."
        + (f" Bar: >= 30 dB ({'met' if metrics['vae_reconstruction_psnr_db'] >= 30 else 'missed'})." if fmnist
           else ""),
        f"- A ConvNet trained on the real training split scores {metrics['classifier_real_test_accuracy']:.1%} on the "
        f"real test split and labels {metrics['sample_accuracy']:.1%} of {metrics['samples']} class-conditional "
        f"samples correctly ({metrics['sampler']}, CFG {metrics['cfg_scale']})." + (
            f" Bar: >= 97 % ({'met' if metrics['sample_accuracy'] >= 0.97 else 'missed'})." if fmnist else ""),
        "- Samples, one row per class: `samples.png`.", "",
    ])
