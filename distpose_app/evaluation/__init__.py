"""Scoring: the evaluation protocol behind `distpose evaluate` and label-free plausibility
checks for real media."""
