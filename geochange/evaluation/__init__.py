"""Measuring a model: image metrics, a small segmenter for semantic fidelity, and the quality
report."""
