"""Training and evaluation data: BVH and mocap reading, pose edits, virtual webcams and splits,
the synthetic set and its cache, detector noise, joint masking, the training lens sampler and
the external `.npz` format."""
