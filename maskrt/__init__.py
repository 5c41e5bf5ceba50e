"""maskrt: instance segmentation from annotated lab images to a real-time camera.

The distribution has three stages, each an import package mapped from a top-level folder:
``maskrt.train`` (needs torch), ``maskrt.export`` (needs torch and onnx) and ``maskrt.runtime``
(numpy, OpenCV and ONNX Runtime or TensorRT; never torch). This package holds the CLI and the few
pieces every stage shares: the error type, the model-artifact contract and COCO RLE helpers.
"""

from maskrt.errors import MaskrtError

__version__ = "0.1.0"

__all__ = ["MaskrtError", "__version__"]
