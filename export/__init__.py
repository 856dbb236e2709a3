"""ONNX export of the DiT, the DIVER guided step and the VAE (onnx.py, needs torch), and the ONNX Runtime backend
that runs them without torch (ort.py). Installed as diver_lite.export."""
