"""relustudy: the reference, re-executable study of rectified activations."""

__version__ = "0.1.0"
