"""The skill framework (areas, skills, levels, evidence rules, roles), what people hold (evidence,
levels, their history, manual evidence) and their plans. One framework per organisation, i.e. per
orchcap installation. See docs/skills.md."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel

User = settings.AUTH_USER_MODEL


class SkillArea(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    area = models.ForeignKey(SkillArea, on_delete=models.PROTECT, related_name="skills")
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    # Suggested order only: a prerequisite advises, it never locks a skill.
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="leads_to"
    )

    class Meta:
        ordering = ["area__position", "position", "name"]

    def __str__(self) -> str:
        return self.name


class LevelMatch(models.TextChoices):
    ALL = "all", "every rule"
    ANY = "any", "any one rule"


class SkillLevel(models.Model):
    """One step of a skill's proficiency scale (rank 1 is the first). It is granted when its
    evidence rules are met (all or any of them) and every lower level is held."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="levels")
    rank = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=60)
    description = models.TextField(blank=True)
    match = models.CharField(max_length=3, choices=LevelMatch.choices, default=LevelMatch.ALL)

    class Meta:
        ordering = ["skill", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["skill", "rank"], name="skill_level_rank_unique"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="skill_level_rank_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.skill}: {self.name}"


class EvidenceRule(models.Model):
    """Data, not code: an evidence kind (apps/core/evidence_kinds.py) with its parameters, and the
    thresholds its measurement must reach over the last `period_days` (None: all time)."""

    level = models.ForeignKey(SkillLevel, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=80)
    params = models.JSONField(default=dict, blank=True)
    min_count = models.PositiveIntegerField(default=1)
    min_value = models.FloatField(null=True, blank=True)
    period_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["level", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_days__isnull=True) | Q(period_days__gte=1),
                name="evidence_rule_period_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.level}"


class CareerRole(models.Model):
    """A role people grow into (knowledge author, AI trainer…): the skill levels it asks for, and
    the roles it leads to. Not a team role (people.Role): it grants no permission."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    leads_to = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="comes_from"
    )

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class RoleRequirement(models.Model):
    role = models.ForeignKey(CareerRole, on_delete=models.CASCADE, related_name="requirements")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField(help_text="The level of the skill the role asks for.")

    class Meta:
        ordering = ["role", "skill__area__position", "skill__position"]
        constraints = [
            models.UniqueConstraint(fields=["role", "skill"], name="role_requirement_unique")
        ]

    def __str__(self) -> str:
        return f"{self.role} asks {self.skill} level {self.rank}"


class Evidence(models.Model):
    """The latest measurement of one rule for one person (recomputed, upserted)."""

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(EvidenceRule, on_delete=models.CASCADE, related_name="evidence")
    count = models.PositiveIntegerField(default=0)
    value = models.FloatField(null=True, blank=True)
    met = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField()
    refs = models.JSONField(default=list, blank=True, help_text="[{label, url}] of counted rows")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "rule"], name="evidence_one_per_rule")
        ]

    def __str__(self) -> str:
        return f"{self.rule} for {self.person}: {self.count}"


class PersonSkill(models.Model):
    """The level a person holds in a skill now (None: none yet, or lost)."""

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    level = models.ForeignKey(SkillLevel, on_delete=models.SET_NULL, null=True, related_name="+")
    since = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "skill"], name="person_skill_unique")
        ]

    def __str__(self) -> str:
        return f"{self.person}: {self.skill} {self.level}"


class LevelEvent(models.Model):
    """History: a level granted or lost, with the evidence that decided it. Never edited."""

    GRANTED, LOST = "granted", "lost"

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    level = models.ForeignKey(SkillLevel, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=[(GRANTED, "granted"), (LOST, "lost")])
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["person", "-at"])]

    def __str__(self) -> str:
        return f"{self.person}: {self.level} {self.kind}"


class ManualEvidence(models.Model):
    """A course, a certificate…: counts (kind `skills.manual`) once a manager approves it."""

    class Kind(models.TextChoices):
        COURSE = "course", "Course"
        CERTIFICATE = "certificate", "Certificate"
        OTHER = "other", "Other"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a manager"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.COURSE)
    title = models.CharField(max_length=200)
    url = models.URLField(blank=True)
    note = models.TextField(blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    submitted_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.person}: {self.title}"


class PlanState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AGREED = "agreed", "Agreed"
    ACTIVE = "active", "Active"
    DONE = "done", "Done"


class Plan(TimeStampedModel):
    """A person's plan towards a target role: draft → agreed → active → done."""

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    target_role = models.ForeignKey(CareerRole, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=8, choices=PlanState.choices, default=PlanState.DRAFT)
    proposed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    agreed_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.person} → {self.target_role} ({self.state})"


class PlanEvent(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=8, blank=True)
    to_state = models.CharField(max_length=8)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    note = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"plan {self.plan_id}: {self.from_state} → {self.to_state}"


class PlanReview(models.Model):
    """A request for a manager to look at a plan's progress, and their answer."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="reviews")
    requested_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    requested_at = models.DateTimeField()
    note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    response = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"review of plan {self.plan_id}"


# --- practice on known answers (docs/skills.md, "Practice") -------------------------------------


class GoldCase(models.Model):
    """A decided case whose answer is known: its final label when a manager marked it, and the
    rationale kept with it. Practice serves it; the review queue slips it in for experts new to
    the process. Unmarking keeps the row (and its attempts) with `unmarked_at` set."""

    case = models.OneToOneField("cases.Case", on_delete=models.CASCADE, related_name="+")
    process = models.ForeignKey("cases.Process", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=100)
    reason_code = models.CharField(max_length=100, blank=True)
    rationale = models.TextField(blank=True)
    marked_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    marked_at = models.DateTimeField()
    unmarked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-marked_at", "-pk"]
        indexes = [
            models.Index(
                fields=["process"], condition=Q(unmarked_at__isnull=True), name="gold_active_idx"
            )
        ]

    def __str__(self) -> str:
        return f"gold case {self.case_id}: {self.label}"

    @property
    def is_active(self) -> bool:
        return self.unmarked_at is None


class AttemptSource(models.TextChoices):
    PRACTICE = "practice", "Practice queue"
    QUEUE = "queue", "Mixed into the review queue"


class PracticeAttempt(models.Model):
    """One answer to a gold case. Never a production decision: the case is not touched."""

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    gold = models.ForeignKey(GoldCase, on_delete=models.CASCADE, related_name="attempts")
    process = models.ForeignKey("cases.Process", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=100)
    reason_code = models.CharField(max_length=100, blank=True)
    rationale = models.TextField(blank=True)
    correct = models.BooleanField()
    source = models.CharField(
        max_length=8, choices=AttemptSource.choices, default=AttemptSource.PRACTICE
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["person", "process", "at"]),
            models.Index(fields=["gold", "person"]),
        ]

    def __str__(self) -> str:
        return f"{self.person} → {self.label} on gold {self.gold_id}"


class GoldServe(models.Model):
    """A gold case handed out in a person's real review queue, shown as a normal case: pending
    until they answer (a practice attempt) or skip it. One per person and gold case."""

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    gold = models.ForeignKey(GoldCase, on_delete=models.CASCADE, related_name="+")
    process = models.ForeignKey("cases.Process", on_delete=models.CASCADE, related_name="+")
    served_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    skipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "gold"], name="gold_serve_once"),
        ]
        indexes = [models.Index(fields=["person", "process"])]

    def __str__(self) -> str:
        return f"gold {self.gold_id} served to {self.person}"


class PracticeSetting(models.Model):
    """A process's share of gold cases in the review queue of experts new to it (fewer than
    `new_below` decisions there). No row: share 0."""

    process = models.OneToOneField("cases.Process", on_delete=models.CASCADE, related_name="+")
    gold_share = models.FloatField(default=0)
    new_below = models.PositiveIntegerField(default=20)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(gold_share__gte=0) & Q(gold_share__lte=0.5),
                name="practice_gold_share_range",
            ),
            models.CheckConstraint(condition=Q(new_below__gte=1), name="practice_new_below_min"),
        ]

    def __str__(self) -> str:
        return f"{self.process}: gold share {self.gold_share}"


# --- routing by measured expertise (apps/skills/routing*.py, docs/skills.md#routing) -------------


class RoutingStrategy(models.TextChoices):
    ORDER = "order", "Today's order (the review queue)"
    EXPERTISE = "expertise", "By measured expertise"


class RoutingPolicy(models.Model):
    """How a process's new cases find their first reviewer, and the knobs of the expertise score.
    Kept here, not on cases.Process: the strategy reads skills' measured profiles."""

    process = models.OneToOneField("cases.Process", on_delete=models.CASCADE, related_name="+")
    strategy = models.CharField(
        max_length=10, choices=RoutingStrategy.choices, default=RoutingStrategy.ORDER
    )
    learning_share = models.FloatField(
        default=0.1, help_text="Share of cases sent to people growing into the process."
    )
    prior_weight = models.PositiveIntegerField(
        default=10, help_text="Shrinkage: decisions' worth of the process mean in an accuracy."
    )
    expert_min_decisions = models.PositiveIntegerField(
        default=20, help_text="Decided labels in the process before someone counts as its expert."
    )
    speed_weight = models.FloatField(default=0.05)
    load_penalty = models.FloatField(default=0.01, help_text="Score lost per open case assigned.")
    # Numeric fields' quartile cut points {field: [q1, q2, q3]}, set by the full refresh so that an
    # incremental refresh buckets the same way.
    bounds = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(learning_share__gte=0) & Q(learning_share__lte=1),
                name="routing_learning_share_range",
            )
        ]

    def __str__(self) -> str:
        return f"routing of {self.process}: {self.strategy}"


class ExpertiseStat(models.Model):
    """A person's measured accuracy in a process (dimension `process`), a label region (`label`:
    the model's predicted label) or a field segment (`segment`: "field=value" or "field=q1..q4"),
    and, for `process`, their median review seconds. Recomputed by SQL aggregates."""

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    process = models.ForeignKey("cases.Process", on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=8)
    key = models.CharField(max_length=200, blank=True)
    decisions = models.PositiveIntegerField()
    agreed = models.PositiveIntegerField()
    median_seconds = models.FloatField(null=True)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["process", "dimension", "key", "person"], name="expertise_stat_unique"
            )
        ]
        indexes = [models.Index(fields=["person", "process"], name="expertise_stat_person_idx")]

    def __str__(self) -> str:
        return f"{self.person_id} {self.dimension}:{self.key} {self.agreed}/{self.decisions}"


class ProfileChange(models.Model):
    """The last transaction (its id) that changed a person's ExpertiseStat rows in a process,
    whoever changed them: written by triggers on skills_expertisestat (migration 0004), so the
    ORM, bulk SQL and the admin are all seen. Routing keeps each process's profiles in memory and
    reads again only the people changed since its last read (routing.py, "Profiles in memory").
    Plain ids, no foreign keys: a row outlives the stats it stood for (deleting them is a change
    too), and a cascade deleting a process must not trip over the row its own delete writes."""

    process_id = models.BigIntegerField()
    person_id = models.BigIntegerField()
    xid = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["process_id", "person_id"], name="profile_change_unique"
            )
        ]
        indexes = [models.Index(fields=["process_id", "xid"], name="profile_change_xid_idx")]

    def __str__(self) -> str:
        return f"process {self.process_id} person {self.person_id} at xid {self.xid}"


class RoutedCase(models.Model):
    """Who the expertise strategy sent a case to and why; a learning case names its checker."""

    case = models.OneToOneField("cases.Case", on_delete=models.CASCADE, related_name="+")
    process = models.ForeignKey("cases.Process", on_delete=models.CASCADE, related_name="+")
    assignee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    checker = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    learning = models.BooleanField(default=False)
    region = models.CharField(max_length=100, blank=True)
    expected_accuracy = models.FloatField(null=True)
    score = models.FloatField(null=True)
    routed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["process", "-routed_at"], name="routed_case_recent_idx")]

    def __str__(self) -> str:
        return f"case {self.case_id} → {self.assignee_id}"
