"""The live runtime without Qt: frame sources, the 2D detector, the demo person, tracking,
the pipeline, recording with crash recovery, and the capture-thread feed."""
