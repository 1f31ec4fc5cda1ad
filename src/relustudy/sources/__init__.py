"""One module per source: its metadata (a ``Source``), arms, experiments, claims and chapter notes.

Importing this package registers every source in ``relustudy.reference.SOURCES``, its experiments
in ``relustudy.experiments.EXPERIMENTS`` and its claims in ``relustudy.claims.CLAIMS``; the order
below is the order of the book's chapters and summary. Adding a source: see docs/CONTRIBUTING.md.
"""

from . import he2015, smith, tf_rrelu_blog, theano_blog, xu2015  # noqa: F401  (registration)

MODULES = (smith, theano_blog, tf_rrelu_blog, xu2015, he2015)
