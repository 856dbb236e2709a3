"""--resume and --checkpoint-every for the commands that train (train-prior, distill): their loops save their whole
state every so often, and a run that was interrupted, killed or failed goes on from there, ending where an
uninterrupted run ends, bit for bit."""

import click


def checkpoint_options(f):
    f = click.option("--checkpoint-every", type=click.FloatRange(min=0), default=60.0, metavar="SECONDS",
                     help="Save the training state at most this often (and when a phase ends).")(f)
    return click.option("--resume", is_flag=True,
                        help="Go on with an interrupted run into the same -o, from its last checkpoint (the same "
                        "options are required; a finished or absent run starts afresh).")(f)
