"""artlens: artwork similarity search, recommendation and copyright checks without pooling images."""

__version__ = "0.1.0"
