"""ONNX export: one GraphSpec per graph (graphs/), export and validation against torch (onnx.py, needs torch), and
manifest.json's contract with the ONNX Runtime backend (manifest.py, backends/ort.py)."""
