"""The plain values the classifiers app passes around: a case as the models read it, a
prediction, a field's contribution, a refusal to train. No scikit-learn here: importing this (as
most of orchcap does) costs nothing, while learning.py and features.py (about 1.2 s of imports and
their memory) load only where a model is trained or used."""

import math
from dataclasses import dataclass, field

EXCEPTION_REASON = "exception_reason"


@dataclass
class CaseInput:
    fields: dict
    exception_reason: str = ""
    exception_fields: list[str] = field(default_factory=list)


class TrainingRefused(ValueError):
    """The data cannot give a meaningful model (too few decisions, a single label, …)."""


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]

    @property
    def margin(self) -> float:
        """Top probability minus the runner-up: small means uncertain."""
        ranked = sorted(self.probabilities.values(), reverse=True)
        return ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)

    @property
    def entropy(self) -> float:
        return -sum(p * math.log(p) for p in self.probabilities.values() if p > 0)


@dataclass(frozen=True)
class Contribution:
    source: str  # a schema field name, or exception_reason
    effect: float  # predicted label's probability with the value minus without it
