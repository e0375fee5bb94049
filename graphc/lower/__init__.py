"""Lowering: graphs to readable, standalone numpy source (printer, naming, emit, load)."""
