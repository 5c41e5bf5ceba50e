"""maskrt.export: checkpoint -> static TensorRT-friendly ONNX with metadata -> TensorRT engine (needs torch, onnx)."""
