"""maskrt.runtime: load a model artifact and segment frames with numpy, OpenCV and ONNX Runtime or TensorRT; never torch."""
