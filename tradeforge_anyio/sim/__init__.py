"""The embedded gateway simulator: a paper exchange and its contract catalogue."""
