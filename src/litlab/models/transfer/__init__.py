"""Transfer family: a timm backbone (``module``), where its weights come from (``weights``) and
freezing / gradual unfreezing (``finetuning``)."""

from litlab.models.transfer.module import TimmClassifier

__all__ = ["TimmClassifier"]
