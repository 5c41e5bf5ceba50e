"""maskrt.train: datasets, synthetic scenes, augmentation, Mask R-CNN presets, training and evaluation (needs torch)."""
