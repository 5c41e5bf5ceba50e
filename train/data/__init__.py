"""maskrt.train.data: one internal dataset record, importers for COCO, labelme, VIA and CVAT, and checks."""
