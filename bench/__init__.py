"""Kosh's benchmark suite: `make bench` (full) and `make bench-quick` (smoke).

Every figure is measured next to its baseline in the same run on the same machine, so
the ratios hold even where the absolute numbers depend on the hardware.
"""
