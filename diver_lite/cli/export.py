"""`diver-lite export`: the DiT, the DIVER guided step and the VAE as validated ONNX graphs."""

from pathlib import Path

import click

from diver_lite.cli.dataclass_options import dataclass_options
from diver_lite.export.manifest import PRECISIONS
from diver_lite.pipeline.engine import MODEL_FIELDS, EngineSpec
from diver_lite.registry import module_names

EXAMPLE = """
\b
Examples:
  diver-lite export -o onnx/default                           # the embedded default prior
  diver-lite export --model ./DiT-XL-2-256 -o onnx/xl-int8 --precision int8      # CPU deployment
  diver-lite export --model DiT-XL-2-256x256.pt --vae ./sd-vae-ft-mse -o onnx/xl-fp16 --precision fp16  # CUDA
\b
Then: diver-lite recover SET -o OUT --backend onnxruntime --onnx onnx/default
"""

GRAPHS = module_names("diver_lite.export.graphs")   # export/graphs/, one file per graph


@click.command(epilog=EXAMPLE, context_settings={"show_default": True})
@dataclass_options(EngineSpec, only=MODEL_FIELDS)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the graphs.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Of the DiT graphs: fp16 for GPU providers, int8 (dynamic quantization) for CPU. The VAE stays "
              "fp32.  [default: fp32, or what --provider runs best]")
@click.option("--provider", default=None, metavar="NAME",
              help="The ONNX Runtime provider the graphs are for (cpu, cuda, tensorrt, directml, coreml, openvino, "
              "rocm): the DiT graphs in the precision it runs best (int8 for cpu, fp32 for openvino, else fp16); "
              "recorded in manifest.json. Need not be installed here.")
@click.option("--graphs", default=",".join(GRAPHS), help="Comma-separated subset of: " + ", ".join(GRAPHS) +
              ". guided_step is the single-graph DIVER step; recovery with --backend onnxruntime needs dit and "
              "the VAE graphs.")
@click.option("--cfg-channels", type=click.Choice(["3", "4"]), default="3", help="Baked into guided_step.")
@click.option("--guidance-target", type=click.Choice(["auto", "x0", "xt"]), default="auto",
              help="Baked into guided_step: what the semantic guidance pulls toward the inherited latent, x0 (the "
              "predicted clean latent, PReDD's code) or xt (the running latent, the DIVER paper's equation). auto: "
              "what recover uses by default for that model (xt, the paper's, for any --model; x0 for the embedded "
              "prior).")
@click.option("--overwrite", is_flag=True, help="Replace graphs already in the folder.")
def export(model, vae, timestep_embedding, out, precision, provider, graphs, cfg_channels, guidance_target,
           overwrite):
    """Export the DiT (dynamic batch), the guided DIVER step and the VAE encoder/decoder to ONNX (opset 18),
    each validated against torch on random inputs; writes manifest.json."""
    from diver_lite.cli.progress import step_bar
    from diver_lite.errors import ConfigError
    from diver_lite.output_policy import check_output, mark
    from diver_lite.export.onnx import export_models
    from diver_lite.models.load import load_models

    chosen = tuple(g.strip() for g in graphs.split(",") if g.strip())
    unknown = sorted(set(chosen) - set(GRAPHS))
    if unknown or not chosen:
        raise ConfigError(f"unknown graphs {unknown or graphs!r}", f"choose from {', '.join(GRAPHS)}")
    check_output(out, [model, vae], overwrite)                  # before the (large) model is loaded
    made_for = None
    if provider is not None:
        from diver_lite.backends.providers import full_name, preferred_precision

        made_for, precision = full_name(provider), precision or preferred_precision(provider)
    precision = precision or "fp32"
    if guidance_target == "auto":
        from diver_lite.models.source import is_embedded_prior

        guidance_target = "x0" if is_embedded_prior(model) else "xt"
    models = load_models(model, vae, device="cpu", timestep_embedding=timestep_embedding)
    mark(out, "export")
    with step_bar(len(chosen), "export", "graph") as update:
        manifest = export_models(models, out, precision, chosen, int(cfg_channels), made_for=made_for,
                                 guidance_target=guidance_target,
                                 log=lambda m: click.echo(m, err=True), progress=lambda k, name: update(k, last=name))
    sizes = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
    click.echo(f"Exported {', '.join(manifest['graphs'])} ({precision}, opset {manifest['opset']}, {sizes:.1f} MiB) "
               f"-> {out}")
