"""Shadow comparison: observations in, diffs, noise, reports out."""
