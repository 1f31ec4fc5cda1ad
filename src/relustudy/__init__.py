"""relustudy: the reference, re-executable study of rectified activations."""

__version__ = "0.1.0"

# Every entry point (CLI, notebooks, tests) sees the same registries: the source modules register
# their sources, experiments and claims on the first lookup of any of those registries
# (relustudy.registry.Registry's ``filled_by``), so importing the package stays cheap.
