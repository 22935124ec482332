"""Defaults shared by the library and its front ends, in a module that imports nothing, so the
command line can show them without loading the GIS stack."""

DEFAULT_BLOCK = 2048
"""Block edge in pixels: each pass holds about one block plus halo in memory."""
