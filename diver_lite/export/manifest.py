"""The contract between `diver-lite export` and the ONNX Runtime backend: manifest.json's format and the keys the
backend reads. No torch here."""

FORMAT = "diver-lite-onnx/1"
OPSET = 18                     # opset 17 gave a Split that ONNX Runtime rejects
PRECISIONS = ("fp32", "fp16", "int8")
STEP_GRAPHS = ("dit", "guided_step")          # what the ONNX Runtime backend calls per sampling step
VAE_GRAPHS = ("vae_encoder", "vae_decoder")   # what it calls before and after sampling
# step_params of guided_step.onnx, in this order (float32 [6]).
STEP_PARAMS = ("alpha_bar", "alpha_bar_prev", "log_beta", "log_posterior_var", "guidance", "cfg_scale")
# What the backend reads from manifest.json, with its type.
MANIFEST_KEYS = {"graphs": dict, "image_size": int, "latent_channels": int, "latent_size": int,
                 "scaling_factor": (int, float), "num_classes": int, "null_class": int, "schedule": dict,
                 "precision": str, "source_hash": str, "step_params": list}
