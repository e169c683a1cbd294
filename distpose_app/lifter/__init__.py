"""The lifter: 2D keypoint windows -> 3D joints (temporal convolution network, streaming,
checkpoints, training losses)."""

# The frame rate every lifter runs at (the Bandai mocap's native rate): sources are resampled to it.
MODEL_FPS = 30.0
