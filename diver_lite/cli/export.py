"""`diver-lite export`: the DiT, the DIVER guided step and the VAE as validated ONNX graphs."""

from pathlib import Path

import click

from diver_lite.cli.dataclass_options import SectionedCommand, dataclass_options, given, section_option
from diver_lite.export.spec import ExportSpec
from diver_lite.pipeline.engine import MODEL_FIELDS, EngineSpec

EXAMPLE = """
\b
Examples:
  diver-lite export -o onnx/default                           # the embedded default prior
  diver-lite export --model ./DiT-XL-2-256 -o onnx/xl-int8 --precision int8      # CPU deployment
  diver-lite export --model DiT-XL-2-256x256.pt --vae ./sd-vae-ft-mse -o onnx/xl-fp16 --precision fp16  # CUDA
\b
Then: diver-lite recover SET -o OUT --backend onnxruntime --onnx onnx/default
"""


@click.command(cls=SectionedCommand, epilog=EXAMPLE, context_settings={"show_default": True})
@dataclass_options(EngineSpec, only=MODEL_FIELDS)
@section_option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the graphs.",
                section="Input and output")
@dataclass_options(ExportSpec)
@section_option("--overwrite", is_flag=True, help="Replace graphs already in the folder.", section="Input and output")
def export(model, vae, timestep_embedding, out, overwrite, **settings):
    """Export the DiT (dynamic batch), the guided DIVER step and the VAE encoder/decoder to ONNX (opset 18),
    each validated against torch on random inputs; writes manifest.json."""
    from diver_lite.cli.progress import step_bar
    from diver_lite.output_policy import check_output, mark
    from diver_lite.export.onnx import export_models
    from diver_lite.models.load import load_models
    from diver_lite.models.source import is_embedded_prior

    spec = ExportSpec(**given(ExportSpec, settings))
    check_output(out, [model, vae], overwrite)                  # before the (large) model is loaded
    made_for, precision = None, spec.precision
    if spec.provider is not None:
        from diver_lite.backends.providers import full_name, preferred_precision

        made_for, precision = full_name(spec.provider), precision or preferred_precision(spec.provider)
    precision = precision or "fp32"
    models = load_models(model, vae, device="cpu", timestep_embedding=timestep_embedding)
    mark(out, "export")
    with step_bar(len(spec.graphs), "export", "graph") as update:
        manifest = export_models(models, out, precision, spec.graphs, spec.cfg_channels, made_for=made_for,
                                 guidance_target=spec.target_for(is_embedded_prior(model)),
                                 log=lambda m: click.echo(m, err=True), progress=lambda k, name: update(k, last=name))
    sizes = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
    click.echo(f"Exported {', '.join(manifest['graphs'])} ({precision}, opset {manifest['opset']}, {sizes:.1f} MiB) "
               f"-> {out}")
