"""maskrt: instance segmentation from annotated lab images to a real-time camera.

The distribution has three stages, each an import package mapped from a top-level folder:
``maskrt.train`` (needs torch), ``maskrt.export`` (needs torch and onnx) and ``maskrt.runtime``
(numpy, OpenCV and ONNX Runtime or TensorRT; never torch). This package holds the CLI (``maskrt.cli``)
and, beside it, the few ground-floor pieces every stage shares: the error type, the model-artifact
contract, atomic writes, output-path checks, run locks and COCO RLE helpers; and the training, mask and
export options with their defaults (``maskrt.options``), which the CLI reads without importing
``maskrt.train`` or ``maskrt.export``. They stay here rather than in a ``maskrt/core/``: each already
sits at the path its name says (only the three stage folders are mapped), and ``maskrt.errors`` and
``maskrt.artifact`` are names users import.
"""

from maskrt.errors import MaskrtError

__version__ = "0.1.0"

__all__ = ["MaskrtError", "__version__"]
