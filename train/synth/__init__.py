"""maskrt.train.synth: synthetic bubble and droplet scenes with exact instance masks (numpy + OpenCV, no torch).

The built-in default dataset: :func:`generate_dataset` writes COCO images + ``annotations.json``;
:func:`render_video` writes a moving sequence with per-frame ground truth for stream tests and the demo.
Nothing here imports torch, so the runtime's tests may render videos too.
"""

from maskrt.train.synth.dataset import generate_dataset, render_image
from maskrt.train.synth.scenes import CLASSES, SCENE_NAMES, SCENES
from maskrt.train.synth.video import ground_truth_path, render_video

__all__ = ["CLASSES", "SCENES", "SCENE_NAMES", "generate_dataset", "ground_truth_path", "render_image", "render_video"]
