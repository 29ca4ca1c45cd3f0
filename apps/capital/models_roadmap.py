"""Assessment, first battle and roadmap models (imported by apps/capital/models.py).

What the team types by hand is kept apart from what orchcap measures: listed assets, data
sources and named processes are the manager's inventory; everything else on the assessment is
computed, and a recorded `Assessment` freezes those figures with the manager's answers.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from apps.cases.models import Process
from apps.fabric.models import ComputeNode, NodeClass
from apps.orchestrations.models import Orchestration
from apps.people.models import Team

__all__ = [
    "Assessment",
    "AssessmentAnswer",
    "BattleChoice",
    "BattleWeights",
    "CandidateProcess",
    "DataSource",
    "ListedAsset",
    "PhaseCriterion",
    "PhaseEntry",
]


class ListedAsset(models.Model):
    """A machine the team says it has (enrolled or not): the denominator of "share of the
    infrastructure in the fabric". `node` is set once it is enrolled."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_assets")
    name = models.CharField(max_length=120)
    asset_class = models.CharField(max_length=16, choices=NodeClass.choices)
    site = models.CharField(max_length=120, blank=True)
    note = models.CharField(max_length=300, blank=True)
    node = models.ForeignKey(
        ComputeNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint("team", Lower("name"), name="capital_asset_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DataSource(models.Model):
    """A data source the team uses, listed by hand. It is reachable by orchestrations when a
    non-retired, approved node of the team (or of no team) hosts it (`ComputeNode.data_sources`,
    the agent's `--data-source`): computed, never typed."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_data_sources")
    name = models.CharField(max_length=120, help_text="As nodes name it (--data-source).")
    system = models.CharField(max_length=120, blank=True)
    site = models.CharField(max_length=120, blank=True)
    note = models.CharField(max_length=300, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint("team", Lower("name"), name="capital_source_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class CandidateProcess(models.Model):
    """What the manager says about a first-battle candidate: a process orchcap already receives
    cases for (`process` set: only its owner and note are typed), or one the team names but has
    not connected (`process` null: its volume and minutes are the manager's estimates, shown as
    such)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_candidates")
    process = models.OneToOneField(
        Process, on_delete=models.CASCADE, null=True, blank=True, related_name="capital_candidate"
    )
    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cases_per_week = models.FloatField(null=True, blank=True)
    minutes_per_case = models.FloatField(null=True, blank=True)
    backlog = models.PositiveIntegerField(null=True, blank=True)
    labels = models.JSONField(default=list, blank=True, help_text="Known outcomes.")
    fields = models.JSONField(default=list, blank=True, help_text="Known inputs.")
    note = models.CharField(max_length=300, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint("team", Lower("name"), name="capital_candidate_name_unique"),
            models.CheckConstraint(
                condition=Q(cases_per_week__isnull=True) | Q(cases_per_week__gte=0),
                name="capital_candidate_volume_positive",
            ),
            models.CheckConstraint(
                condition=Q(minutes_per_case__isnull=True) | Q(minutes_per_case__gte=0),
                name="capital_candidate_minutes_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_connected(self) -> bool:
        return self.process_id is not None


class AssessmentAnswer(models.Model):
    """The manager's current answer to one gap question (keyed); recording an assessment copies
    the questions and answers into it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    question = models.CharField(max_length=120)
    answer = models.TextField()
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    answered_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "question"], name="capital_answer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team_id}:{self.question}"


class Assessment(models.Model):
    """A recorded reality assessment: the figures as measured at `recorded_at` and the gap
    questions with their answers, frozen. Never edited; the next version is compared with it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_assessments")
    version = models.PositiveIntegerField()
    figures = models.JSONField()
    questions = models.JSONField(help_text="[{key, pillar, text, answer}]")
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["team", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["team", "version"], name="capital_assessment_version"),
        ]

    def __str__(self) -> str:
        return f"{self.team} assessment v{self.version}"


class BattleWeights(models.Model):
    """The manager's weights of the three first-battle criteria (default equal)."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="capital_weights")
    pain = models.FloatField(default=1, help_text="High pain, clear boundaries.")
    data = models.FloatField(default=1, help_text="Existing data, available infrastructure.")
    stakeholders = models.FloatField(default=1, help_text="Engaged stakeholders.")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    set_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(pain__gte=0) & Q(data__gte=0) & Q(stakeholders__gte=0),
                name="capital_weights_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team_id}: {self.pain}/{self.data}/{self.stakeholders}"


class BattleChoice(models.Model):
    """The first battle a manager picked, with the reason, the ranking row and the estimate of
    value made at that moment. A later choice supersedes it (history kept). The estimate is
    frozen when an orchestration of the chosen process first goes live."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_battles")
    candidate = models.ForeignKey(
        CandidateProcess, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    process = models.ForeignKey(
        Process, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    name = models.CharField(max_length=120)
    reason = models.TextField()
    scores = models.JSONField(help_text="The candidate's ranking row when it was chosen.")
    weights = models.JSONField()
    estimated_hours_per_week = models.FloatField(
        help_text="Expert hours a week the process takes by hand: the most it can save."
    )
    estimate_basis = models.JSONField(help_text="{cases_per_week, minutes_per_case, source}")
    estimate_frozen_at = models.DateTimeField(null=True, blank=True)
    frozen_by_orchestration = models.ForeignKey(
        Orchestration, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    chosen_at = models.DateTimeField()
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team", "-chosen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"],
                condition=Q(superseded_at__isnull=True),
                name="capital_one_current_battle",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.name}"


class PhaseCriterion(models.Model):
    """One exit criterion of a roadmap phase for the whole organisation: a measured kind
    (apps/capital/criteria.py) and its threshold. Organisation admins edit them."""

    phase = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=40)
    threshold = models.FloatField()
    position = models.PositiveSmallIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["phase", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["phase", "kind"], name="capital_criterion_unique"),
            models.CheckConstraint(
                condition=Q(phase__gte=1) & Q(phase__lte=4), name="capital_criterion_phase"
            ),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="capital_threshold_min"),
        ]

    def __str__(self) -> str:
        return f"phase {self.phase}: {self.kind} ≥ {self.threshold}"


class PhaseEntry(models.Model):
    """When a team entered a roadmap phase: written once, when the previous phase's criteria
    are first found met (dated by when the last of them was met), never moved back."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_phases")
    phase = models.PositiveSmallIntegerField()
    entered_at = models.DateTimeField()
    evidence = models.JSONField(default=list, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "phase"]
        constraints = [
            models.UniqueConstraint(fields=["team", "phase"], name="capital_phase_entry_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team} phase {self.phase} since {self.entered_at:%Y-%m-%d}"
