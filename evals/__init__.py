"""Scoring answers against gold answers; the four-mode evaluation builds on this."""
