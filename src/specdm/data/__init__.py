"""Preprocessing: normalization, spatially disjoint splits, patches."""
