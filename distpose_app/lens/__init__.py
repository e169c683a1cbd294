"""Lens geometry: pinhole intrinsics, distortion models and their inverses, lens strings and
presets, calibration files, VideoPose3D's screen normalisation."""
