"""maskrt.runtime: load a model artifact and segment frames with numpy, OpenCV and ONNX Runtime or TensorRT; never torch.

Example:
    >>> from maskrt.runtime import Segmenter, measure_instances, frame_stats, draw_overlay
    >>> seg = Segmenter("bubbles.onnx")            # Segmenter() loads the bundled model
    >>> inst = seg(frame)                           # Instances: boxes, scores, class_ids, masks...
    >>> rows = measure_instances(inst, um_per_px=3.2)
    >>> stats = frame_stats(inst, inst.frame_hw, um_per_px=3.2)
    >>> view = draw_overlay(frame, inst, status=f"{len(inst)} bubbles")
"""

from maskrt.runtime.draw import draw_overlay
from maskrt.runtime.instances import Instances
from maskrt.runtime.measure import frame_stats, measure_instances
from maskrt.runtime.segmenter import BUNDLED_MODEL, Segmenter

__all__ = ["BUNDLED_MODEL", "Instances", "Segmenter", "draw_overlay", "frame_stats", "measure_instances"]
