"""Test-time adaptation to an unknown lens. `adapt_model` (in `iso`) is the one entry point the
app, `distpose process` and the evaluation call; `lens_fit` is the lens-space fit it runs by
default, `iso` also holds the weight-space ISO and few-shot adaptation."""

from distpose_app.adapt.iso import (
    ADAPTATIONS,
    DEFAULT_ADAPTATION,
    MIN_ADAPT_FRAMES,
    AdaptResult,
    adapt_model,
    adaptation_message,
)

__all__ = [
    "ADAPTATIONS",
    "DEFAULT_ADAPTATION",
    "MIN_ADAPT_FRAMES",
    "AdaptResult",
    "adapt_model",
    "adaptation_message",
]
