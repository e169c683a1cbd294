"""Shared foundations every stage may import: skeleton, metrics, rotations, errors, file I/O,
progress bars and paths (no Qt, no torch at import time)."""
