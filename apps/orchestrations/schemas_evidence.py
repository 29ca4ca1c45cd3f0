from datetime import datetime

from ninja import Field, Schema


class ShareOut(Schema):
    """`count` of `of`, with the 95 % Wilson interval; `small_sample` below 30."""

    count: int
    of: int
    share: float | None
    low: float | None
    high: float | None
    small_sample: bool


class ModelSideOut(Schema):
    predicted: int = Field(description="Items it gave a label.")
    precision: ShareOut = Field(description="Its label is the experts' outcome (judged items).")
    coverage: ShareOut = Field(
        description="Items at or above the version's threshold: those it would decide alone "
        "at level 3."
    )
    precision_at_threshold: ShareOut


class LabelRowOut(Schema):
    label: str
    experts: int = Field(description="Items experts decided with this label.")
    champion_predicted: int
    champion_precision: ShareOut
    challenger_predicted: int
    challenger_precision: ShareOut


class DisagreementOut(Schema):
    champion: str
    challenger: str
    count: int
    judged: int = Field(description="Of them, items with an expert outcome.")
    champion_right: int
    challenger_right: int
    runs: list[int] = Field(description="Up to 5 run ids, newest first.")


class ComparisonOut(Schema):
    model_version: int = Field(description="The challenger's model version number.")
    is_current: bool
    champion_models: list[int] = Field(description="The live versions' model numbers seen.")
    since: datetime
    until: datetime
    items: int = Field(description="Items of the period with a challenger prediction.")
    truncated: bool = Field(description="Only the latest 50,000 items were read.")
    expert_outcomes: int
    both_predicted: int
    agreement: ShareOut
    champion: ModelSideOut
    challenger: ModelSideOut
    labels: list[LabelRowOut]
    disagreements: list[DisagreementOut]


class ChallengerEventOut(Schema):
    action: str
    model_version: int | None
    draft: int | None
    actor: str | None
    reason: str
    at: datetime


class ChallengerOut(Schema):
    challenger: int | None = Field(description="The current challenger's model version number.")
    challenger_since: datetime | None
    live_model_version: int | None
    comparison: ComparisonOut | None = Field(
        description="Null without a challenger (current or asked for)."
    )
    log: list[ChallengerEventOut]


class ChallengerIn(Schema):
    model_version: int | None = Field(
        description="A model version number of the process; null clears the challenger."
    )
    reason: str = Field("", max_length=2000)


class PromoteIn(Schema):
    reason: str = Field(max_length=2000)


class ChallengerFilters(Schema):
    since: datetime | None = Field(None, description="Default: 30 days before `until`.")
    until: datetime | None = Field(None, description="Default: now.")
    model_version: int | None = Field(
        None, ge=1, le=2**31, description="An earlier challenger; default: the current one."
    )


class OutcomesOut(Schema):
    standard: int = 0
    decided: int = 0
    routed: int = 0


class ShadowEvidenceOut(Schema):
    items: int = Field(description="Live items the version evaluated in shadow.")
    truncated: bool
    since: datetime
    until: datetime
    expert_outcomes: int
    same_as_live: ShareOut = Field(description="Same outcome and label as the live version.")
    outcomes: OutcomesOut
    live_outcomes: OutcomesOut
    precision: ShareOut = Field(description="Its label is the experts' outcome.")
    live_precision: ShareOut = Field(description="The live version's label, on the same items.")
    decisions_precision: ShareOut = Field(
        description="Of the items it would have decided, judged by experts: decided right."
    )
    decided: ShareOut
    live_decided: ShareOut
    runs_differing: list[int] = Field(description="Up to 10 runs where it differs from live.")


class CanarySideOut(Schema):
    runs: int
    outcomes: OutcomesOut
    decided: ShareOut
    straight_through: ShareOut = Field(description="Decided or standard: no person involved.")
    expert_outcomes: int
    precision: ShareOut = Field(description="Its label (decided or suggested) is the experts'.")


class CanaryEvidenceOut(Schema):
    since: datetime
    until: datetime
    truncated: bool
    share: float | None
    candidate: CanarySideOut
    live: CanarySideOut = Field(description="The other runs of the same period (live version).")
    live_versions: list[int]


class EvidenceOut(Schema):
    version: int
    stage: str
    shadow: ShadowEvidenceOut | None
    canary: CanaryEvidenceOut | None
