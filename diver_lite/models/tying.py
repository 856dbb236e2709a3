"""Sharing the per-block timestep/class embedder: diffusers keeps one identical copy per block (28 in DiT-XL/2,
75 M parameters); tied, the forward is unchanged and the copies cost nothing."""

import torch


def tie_embedders(transformer) -> int:
    """Share block 0's timestep/class embedder with every block. diffusers keeps one identical copy per block
    (28 in DiT-XL/2, 75 M parameters); the forward is unchanged. Returns the parameters saved (0 if the copies
    differ, e.g. after fine-tuning, in which case nothing is tied)."""
    blocks = transformer.transformer_blocks
    first = blocks[0].norm1.emb
    if first is None:
        return 0
    ref = first.state_dict()
    for block in blocks[1:]:
        other = block.norm1.emb
        if other is first:
            continue
        if other is None or any(not torch.equal(v, other.state_dict()[k]) for k, v in ref.items()):
            return 0
    saved = 0
    for block in blocks[1:]:
        if block.norm1.emb is not first:
            saved += sum(p.numel() for p in block.norm1.emb.parameters())
            block.norm1.emb = first
    return saved


def equalize_embedders(transformer) -> None:
    """Copy block 0's timestep/class embedder into every block, as a converted DiT checkpoint has them (a freshly
    built diffusers DiT draws each copy at random); afterwards `tie_embedders` can share them."""
    shared = transformer.transformer_blocks[0].norm1.emb.state_dict()
    for block in transformer.transformer_blocks[1:]:
        block.norm1.emb.load_state_dict(shared)


def untied_state_dict(module: "torch.nn.Module") -> dict[str, torch.Tensor]:
    """A state dict whose shared tensors are copies, as safetensors requires."""
    seen, out = set(), {}
    for k, v in module.state_dict().items():
        out[k] = v.clone() if v.data_ptr() in seen else v
        seen.add(v.data_ptr())
    return out


def tie_from_file(transformer, source) -> int:
    """Share block 0's embedder with every block if the file's copies are equal (read one at a time from
    `source`, a WeightsFile)."""
    blocks = transformer.transformer_blocks
    names = [n for n, _ in blocks[0].norm1.emb.named_parameters()]
    for i in range(1, len(blocks)):
        for n in names:
            a = source.get(f"transformer_blocks.0.norm1.emb.{n}")
            if not torch.equal(a, source.get(f"transformer_blocks.{i}.norm1.emb.{n}")):
                return 0
    saved = 0
    for block in blocks[1:]:
        saved += sum(p.numel() for p in block.norm1.emb.parameters())
        block.norm1.emb = blocks[0].norm1.emb
    return saved
