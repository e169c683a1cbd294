"""Exceptions that reach a user as a one-line message (CLI: exit code 2; GUI: a dialog)."""


class DistposeError(Exception):
    """A problem with the user's input or environment, not a bug: shown as one line."""


class LensError(DistposeError, ValueError):
    """A lens description that cannot be parsed or is physically invalid."""


class DataFormatError(DistposeError, ValueError):
    """A data file (npz, BVH, calibration) that breaks its documented format."""


class WeightsError(DistposeError):
    """A weight file that is missing, truncated or does not fit the model."""
