"""What a training loop must keep to resume bit for bit: both random generators (torch's global one, which draws
network initialisations and label dropout, and the loop's own), and where its shuffled batches stand."""

import torch


def rng_state(g: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "generator": g.get_state()}


def set_rng_state(state: dict, g: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    g.set_state(state["generator"])


class Batches:
    """Index batches of `batch` from a fresh permutation of n each time one runs out (the same draws, in the same
    order, as a generator that shuffles at its first batch); its position is part of a checkpoint."""

    def __init__(self, n: int, batch: int, g: torch.Generator):
        self.n, self.batch, self.g = n, batch, g
        self.perm, self.k = None, 0

    def next(self) -> torch.Tensor:
        if self.perm is None or self.k + self.batch > self.n:
            self.perm, self.k = torch.randperm(self.n, generator=self.g), 0
        self.k += self.batch
        return self.perm[self.k - self.batch:self.k]

    def state_dict(self) -> dict:
        return {"perm": self.perm if self.perm is not None else torch.zeros(0, dtype=torch.long), "k": self.k,
                "started": self.perm is not None}

    def load_state_dict(self, state: dict) -> None:
        self.perm, self.k = (state["perm"] if state["started"] else None), int(state["k"])


def snapshot(step: int, history: list, parts: dict, g: torch.Generator) -> dict:
    """A loop's whole state after `step` steps: each part's state_dict (a tensor: its values), the generators, the
    history."""
    return {"step": step, "history": history, "rng": rng_state(g),
            **{name: part.detach().clone() if isinstance(part, torch.Tensor) else part.state_dict()
               for name, part in parts.items()}}


def resume(saved: dict, parts: dict, g: torch.Generator) -> tuple[int, list]:
    """Put a snapshot back into the loop's parts; returns (the step to go on from, the history so far)."""
    for name, part in parts.items():
        if isinstance(part, torch.Tensor):
            with torch.no_grad():
                part.copy_(saved[name])
        else:
            part.load_state_dict(saved[name])
    set_rng_state(saved["rng"], g)
    return int(saved["step"]), list(saved["history"])
