"""Scores computed outside training loops (generated-image quality)."""
