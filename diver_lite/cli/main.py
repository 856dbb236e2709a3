"""The `diver-lite` command group. Library exceptions become one line with the fix and exit code 2 (input or
usage) or 1 (runtime)."""

import logging
import os
import sys

import click

from diver_lite import __version__
from diver_lite.errors import DiverLiteError
from diver_lite.pipeline.run import Interrupted


class DiverGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DiverLiteError as e:
            click.echo(f"Error: {e.message}" + (f" -- fix: {e.hint}" if e.hint else ""), err=True)
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, Interrupted) as e:
            what = f" ({e})" if isinstance(e, Interrupted) else ""
            click.echo(f"\nInterrupted{what}. Finished work is kept; run the same command with --resume to go "
                       "on.", err=True)
            sys.exit(130)


@click.group(cls=DiverGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="diver-lite")
def cli():
    """Repair distilled datasets with DIVER: a pretrained class-conditional diffusion transformer (DiT) pulls each
    distilled image back toward natural images while keeping its semantics.

    \b
    Start with:  diver-lite recover --help
    """


def _register():
    from diver_lite.cli.distill import distill
    from diver_lite.cli.evaluate import evaluate
    from diver_lite.cli.export import export
    from diver_lite.cli.profile import profile
    from diver_lite.cli.recover import recover
    from diver_lite.cli.train_prior import train_prior
    cli.add_command(recover)
    cli.add_command(export)
    cli.add_command(profile)
    cli.add_command(distill)
    cli.add_command(evaluate)
    cli.add_command(train_prior)


_register()


def main():
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")   # diffusers' load-time chatter is not for users
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)   # torchao's import-time deprecations
    logging.getLogger("torchao").setLevel(logging.ERROR)   # its optional CUDA kernels, absent from a CPU build
    cli(prog_name="diver-lite")


if __name__ == "__main__":
    main()
