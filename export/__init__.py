"""ONNX export of the guided denoiser and the VAE (installed as diver_lite.export).

Not built yet: the ONNX issue adds it here. The seam it plugs into exists: `diver_lite.sampler.diver_sample`
drives any denoiser with the call of `diver_lite.denoiser.TorchDenoiser`, and `diver_lite.guidance` is plain
arithmetic that runs on numpy arrays as well as torch tensors.
"""
