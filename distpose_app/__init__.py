"""distpose: camera-distortion-aware 3D human pose from one webcam (Cho et al., ICCV 2021)."""

__version__ = "0.1.0"
