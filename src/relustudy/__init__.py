"""relustudy: the reference, re-executable study of rectified activations."""

__version__ = "0.1.0"

# Every entry point (CLI, notebooks, tests) sees the same registries: the source modules register
# their sources, experiments and claims when the package is imported.
from . import sources  # noqa: E402,F401
