"""Progress bars with an ETA for the long commands (distill, train-prior, evaluate, export), on stderr."""

from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def step_bar(total: int, desc: str, unit: str = "step", initial: int = 0):
    """Yields update(n_done, **shown): moves the bar to n_done of total and shows the given values."""
    bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)

    def update(done: int, **shown) -> None:
        bar.n = done
        bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in shown.items()}, refresh=False)
        bar.refresh()
    try:
        yield update
    finally:
        bar.close()
