"""One module per source: its metadata (a ``Source``), arms, experiments, claims and chapter notes.

Importing this package registers every source in ``relustudy.reference.SOURCES``, its experiments
in ``relustudy.experiments.EXPERIMENTS`` and its claims in ``relustudy.claims.CLAIMS``. Nothing
imports it by hand: each of those registries imports it on its first lookup (``filled_by``), so
a process that never looks a source up (``relustudy --help``) does not pay for it; its cost on
top of the framework's is what ``python -X importtime -c "import relustudy.sources"`` shows. The
book's chapter order is ``_toc.yml``'s, not this file's. Adding a source: see docs/CONTRIBUTING.md.
"""

from . import he2015, smith, tf_rrelu_blog, theano_blog, xu2015  # noqa: F401  (registration)
