"""Regression tracking: pairing runs (compare), verdicts, baselines, history and their views."""
