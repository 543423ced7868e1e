"""The in-memory fake Azure ML, published as :mod:`mlboot.testing`."""
