"""Training the lifter: the baseline, augmented and meta (MAML) loops, close-up views, and
multi-process helpers."""
