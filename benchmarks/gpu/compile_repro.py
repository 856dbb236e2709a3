"""Which torch.compile mode holds on this CUDA build: two Linear blocks compiled one by one with CUDA graphs (the
upstream bug pytorch/pytorch#152887: the second block's replay frees the first one's output), against the same two
blocks compiled as one module (what memory/tactics/compile.py does). Prints one JSON line per mode."""

import json

import torch

with torch.no_grad():
    for mode in ("per-block", "whole"):
        torch._dynamo.reset()
        blocks = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 64)).cuda()
        if mode == "per-block":
            for b in blocks:
                b.compile(mode="reduce-overhead")
        else:
            blocks.compile(mode="reduce-overhead")
        try:
            for k in range(4):
                x = torch.randn(8, 64, device="cuda")
                y = blocks(x).clone()
                y.sum().item()
            print(json.dumps({"compile": mode, "ok": True}))
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"compile": mode, "ok": False, "error": f"{type(e).__name__}: {str(e)[:160]}"}))
