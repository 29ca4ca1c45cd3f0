from django.conf import settings
from django.db import models

from apps.cases.models import Process
from apps.core.models import TimeStampedModel


class Rule(TimeStampedModel):
    """An explicit, owned rule of a process. Its condition and action live in versions; the rule
    set of a process is evaluated first-match by priority (DMN's "first" hit policy)."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_rules"
    )
    priority = models.IntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=False)
    current = models.ForeignKey(
        "RuleVersion", on_delete=models.PROTECT, null=True, related_name="+"
    )
    provenance = models.JSONField(
        default=dict, blank=True, help_text="hand-written, or induced from …"
    )

    class Meta:
        ordering = ["process", "priority", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["process", "name"], name="rule_name_unique_in_process")
        ]

    def __str__(self) -> str:
        return self.name


class RuleVersion(models.Model):
    """One version of a rule: condition tree, action, and the backtest it was judged by."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    condition = models.JSONField()
    action = models.JSONField()
    sentence = models.TextField(help_text="The rule as a readable sentence, when it was saved.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    backtest = models.JSONField(null=True, blank=True)
    backtested_at = models.DateTimeField(null=True, blank=True)
    # Where this version came from when not simply typed in, e.g. a chat model's draft.
    provenance = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="rule_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.rule} v{self.version}"


class RejectedCandidate(models.Model):
    """An induced (or drafted) rule an expert turned down, with why. Induction never proposes the
    same condition and action again (matched by fingerprint)."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="rejected_rules")
    condition = models.JSONField()
    action = models.JSONField()
    sentence = models.TextField()
    fingerprint = models.CharField(
        max_length=64, help_text="sha256 of the canonical JSON of condition and action."
    )
    reason = models.TextField()
    evidence = models.JSONField(
        default=dict, blank=True, help_text="What the candidate showed: method, support, precision."
    )
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    rejected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["process", "-rejected_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["process", "fingerprint"], name="rejected_candidate_unique"
            )
        ]

    def __str__(self) -> str:
        return self.sentence
