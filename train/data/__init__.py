"""maskrt.train.data: one internal dataset record, importers for COCO, labelme, VIA and CVAT, and checks.

Example:
    >>> from maskrt.train.data import load_dataset
    >>> ds = load_dataset("data/taylor-bubbles-coco")      # format detected from the path
    >>> ds.class_counts(), len(ds.problems)
    ({'taylor bubble': 151}, 0)
"""

from maskrt.train.data.loader import FORMATS, detect_format, load_dataset
from maskrt.train.data.record import Annotation, Dataset, ImageRecord

__all__ = ["FORMATS", "Annotation", "Dataset", "ImageRecord", "detect_format", "load_dataset"]
