"""`diver-lite profile`: peak memory, time and fidelity of each runtime plan against the fp32 reference."""

from pathlib import Path

import click

from diver_lite.cli.dataclass_options import SectionedCommand, dataclass_options, given, section_option
from diver_lite.core.config import RecoverConfig
from diver_lite.pipeline.engine import EngineSpec
from diver_lite.errors import ConfigError

IO, MODEL, MEMORY, RUN = "Input and output", "Model and backend", "Memory", "Run"

EXAMPLE = """
\b
Examples:
  # the embedded default on 16 real Fashion-MNIST test images: fp32, bf16, int8 and the offload plans
  diver-lite profile -o out/profile
\b
  # DiT-XL/2 from a diffusers folder on a GPU, the plans you name, 2 images
  diver-lite profile -o out/xl --model ./DiT-XL-2-256 --device cuda --images 2 \\
      --plans fp16,int8,fp16+offload-stream
\b
Plans are written precision[+offload-X][+vae-P][+slice-N][+vae-slicing][+vae-tiling][+keep-modulation],
e.g. int8+keep-modulation or bf16+offload-stream+vae-slicing; ONNX Runtime plans as ort-int8 or ort-fp32+resident
with the exported folders given by --onnx. Each runs in its own process; the fp32 reference always runs first.
Outputs: profile.json, profile.md, profile.png.
"""


@click.command(cls=SectionedCommand, epilog=EXAMPLE, context_settings={"show_default": True})
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path(path_type=Path))
@section_option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Report folder.", section=IO)
@dataclass_options(EngineSpec, only=("model", "vae", "device"))
@section_option("--plans", default=None, section=MEMORY,
                help="Comma-separated plans to compare with fp32.  [default: bf16, int8, bf16+offload-model, "
                "bf16+offload-stream on CPU; fp16, bf16, int8 and the offloads on CUDA]")
@section_option("--images", "num_images", type=click.IntRange(min=1), default=16, section=IO,
                help="Images to recover per plan (the first of INPUT, or of the real Fashion-MNIST test split).")
@section_option("--layout", default=None, help="INPUT's layout; detected when omitted.", section=IO)
@section_option("--subset", default=None, section=IO,
                help="ImageNet class map for INPUT's labels (as for recover).")
@dataclass_options(RecoverConfig)
@section_option("--batch-size", type=click.IntRange(min=1), default=4, help="Images per DiT batch.", section=RUN)
@section_option("--judge/--no-judge", default=None, help="Report how often a real-data classifier agrees with the "
              "reference.  [default: on for the embedded default]", section=RUN)
@section_option("--timeout", type=click.FloatRange(min=1), default=None, help="Seconds per plan before it is "
              "stopped and reported as failed.", section=RUN)
@section_option("--onnx", "onnx_dirs", multiple=True, type=click.Path(path_type=Path),
              help="An exported folder (diver-lite export) for the ONNX Runtime plans ort-fp32, ort-fp16, ort-int8 "
              "(+resident: all graphs held); repeat it for each precision.", section=MODEL)
@section_option("--overwrite", is_flag=True, help="Replace a previous report in -o.", section=IO)
def profile(input_path, out, model, vae, device, plans, num_images, layout, subset, batch_size, judge, timeout,
            onnx_dirs, overwrite, **recovery):
    """Profile runtime plans against the fp32 reference on the same images and seeds.

    Reports peak memory (CPU: peak RSS of each plan's process; CUDA: torch's peak allocation and the driver's
    count), time per DiT step and per image, the pre-flight memory estimate and its error, and fidelity: the
    latent's relative L2 distance to the reference, PSNR of the decoded images, and on the embedded default the
    agreement of a classifier trained on real Fashion-MNIST.
    """
    import numpy as np

    from diver_lite.core.classmap import resolve_class_map
    from diver_lite.pipeline.engine import resolve_device
    from diver_lite.profiling.profile import DEFAULT_PLANS, parse_plan
    from diver_lite.profiling.profile import profile as run_profile
    from diver_lite.memory.runtime import sizes_of
    from diver_lite.models.open import open_models

    config = RecoverConfig(**given(RecoverConfig, recovery), batch_size=batch_size)   # the same for every plan
    device = device or EngineSpec.device          # not given: EngineSpec's default (auto)
    dev = resolve_device(device).type
    plan_list = [parse_plan(p) for p in (plans.split(",") if plans else DEFAULT_PLANS[dev]) if p.strip()]
    if not plan_list:
        raise ConfigError("--plans is empty", "name at least one plan, e.g. --plans bf16,int8")
    images, labels, space = _inputs(input_path, layout, num_images)
    sizes = sizes_of(open_models(model, vae))   # weightless from safetensors: nothing read
    dit_ids = np.array(resolve_class_map(subset, None, int(labels.max()) + 1, sizes.num_classes))[labels]
    use_judge = judge if judge is not None else model is None
    judge_fn = _fashion_mnist_judge(space, click.echo) if use_judge else None
    from diver_lite.output_policy import check_output

    check_output(out, [input_path, model, vae], overwrite)
    report = run_profile(images, dit_ids, space, out, plan_list, config, model, vae, device, judge_fn,
                         timeout_s=timeout, overwrite=overwrite, log=lambda m: click.echo(m, err=True),
                         onnx=list(onnx_dirs))
    click.echo((Path(out) / "profile.md").read_text())
    failed = [r["plan"]["label"] for r in report["plans"] if "error" in r]
    if failed:
        click.echo(f"{len(failed)} plan(s) failed: {', '.join(failed)} (see the table)", err=True)


def _inputs(input_path, layout, n):
    import numpy as np

    if input_path is None:
        from diver_lite.experiments.fashion_mnist import data as fm

        images, labels, _ = fm.load("test")
        picks = np.concatenate([np.flatnonzero(labels == c)[: -(-n // 10)] for c in range(10)])
        picks = np.sort(picks)[:n] if n >= 10 else picks[np.argsort(picks % 10)][:n]
        return fm.to_images(images[picks]), labels[picks], "unit"
    from diver_lite.layouts import get_layout, read_set

    dset = read_set(input_path, layout)
    if get_layout(dset.layout).mosaic:
        raise ConfigError(f"profile takes single images, not {dset.layout} mosaics", "give another layout or no INPUT")
    return dset.images[:n], dset.hard_labels[:n], dset.pixel_space


def _fashion_mnist_judge(space, echo):
    """A ConvNet trained on real Fashion-MNIST (the Debian package, else the vendored subset)."""
    import numpy as np

    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.core.prepare import to_unit
    from diver_lite.experiments.fashion_mnist.students import predict, train_classifier

    images, labels, source = fm.load("train")
    picks = np.random.default_rng(0).permutation(len(images))[:10000]
    echo(f"training the judge on {len(picks)} real Fashion-MNIST images ({source}) ...", err=True)
    model = train_classifier(fm.to_images(images[picks]), labels[picks], epochs=3, seed=0)
    return lambda x: predict(model, np.clip(to_unit(x, space), 0, 1))
