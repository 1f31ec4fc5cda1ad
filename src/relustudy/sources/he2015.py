"""He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers" (through reading-group notes).

Metadata and the mapping of its published rows; its experiments and chapter are not built yet
(ImageNet is out of reach here; a CIFAR-10 he_net chapter is planned).
"""

from __future__ import annotations

from ..reference import SOURCES, Source

SOURCE = SOURCES.register(
    "he2015",
    Source(
        key="he2015",
        citation='K. He et al., "Delving Deep into Rectifiers", 2015 (through reading-group notes)',
        label="He et al. 2015",
        paper_columns={"test_error": "top1_error", "test_top5_error": "top5_error"},
    ),
)
