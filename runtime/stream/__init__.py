"""Live streams: any camera, stream, video or image folder in; pipelined segmentation, tracking and outputs.

Example:
    >>> from maskrt.runtime.stream import stream
    >>> for frame, inst, stats in stream("bubbles.onnx", "rtsp://192.168.1.20/stream"):
    ...     print(stats["frame"], stats["count"], stats["void_fraction"])

The ``maskrt run`` command is this pipeline plus the writers of :mod:`maskrt.runtime.stream.outputs`.
Like the rest of the runtime it never imports torch.
"""

from maskrt.runtime.stream.pipeline import Stream, load_segmenter, stream
from maskrt.runtime.stream.sources import SourceSpec, open_source, parse_source
from maskrt.runtime.stream.tracking import Tracker, Wall
from maskrt.runtime.stream.types import StreamOptions, StreamResult

__all__ = [
    "SourceSpec",
    "Stream",
    "StreamOptions",
    "StreamResult",
    "Tracker",
    "Wall",
    "load_segmenter",
    "open_source",
    "parse_source",
    "stream",
]
