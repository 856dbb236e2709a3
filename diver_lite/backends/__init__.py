"""Where the networks run, behind one `Backend` protocol (base.py): torch (the reference) and ONNX Runtime."""
