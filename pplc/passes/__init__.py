"""Optimization passes: pure functions Graph -> Graph, one file a pass."""
