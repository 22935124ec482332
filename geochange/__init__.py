"""geochange: synthetic, georeferenced change-detection data."""

__version__ = "0.1.0"
