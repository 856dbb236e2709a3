"""Does the embedded prior's VAE reach 30 dB PSNR on the real test split with longer training or a wider network?
Trains one VAE, prints its loss and one JSON line (steps, channels, PSNR, minutes), writes OUT.safetensors.

    OMP_NUM_THREADS=1 python benchmarks/vae_steps.py STEPS CHANNELS OUT      # e.g. 6000 32,64,64 /tmp/vae6000
"""
import json
import sys
import time

import torch
from safetensors.torch import save_file

from diver_lite.experiments.fashion_mnist import data as fm
from diver_lite.experiments.fashion_mnist.prior_training import PriorConfig, reconstruction_psnr, train_vae

steps, channels, out = int(sys.argv[1]), tuple(int(c) for c in sys.argv[2].split(",")), sys.argv[3]
torch.set_num_threads(1)
train, _, _ = fm.load("train")
test, _, _ = fm.load("test")
cfg = PriorConfig(vae_steps=steps, vae_channels=channels)
start = time.perf_counter()
vae, hist = train_vae(fm.to_images(train), cfg, log=lambda s, l: print(f"step {s} loss {l:.4f}", flush=True))
seconds = time.perf_counter() - start
psnr = reconstruction_psnr(vae, fm.to_images(test)[:1000])
params = sum(p.numel() for p in vae.parameters())
save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, f"{out}.safetensors")
print(json.dumps({"steps": steps, "channels": channels, "psnr_db": psnr, "minutes": round(seconds / 60, 1),
                  "params": params}), flush=True)
