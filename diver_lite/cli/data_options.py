"""The options `train-prior`, `distill` and `evaluate` share for a user's image folder."""

import click

from diver_lite.experiments.datasets import MAX_SIZE

max_size_option = click.option("--max-size", type=click.IntRange(min=8), default=MAX_SIZE,
                               help="Largest image side --data may have.")
