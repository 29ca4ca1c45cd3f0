import importlib

import pytest

from apps.capital.models import PhaseCriterion

# The default criteria are rows a data migration writes. A transactional test elsewhere on the
# same test worker flushes the tables at its end, rows of data migrations included: put them back.
_defaults = importlib.import_module("apps.capital.migrations.0002_assessment_battle_roadmap")


@pytest.fixture(autouse=True)
def default_phase_criteria(db):
    if not PhaseCriterion.objects.exists():
        for position, (phase, kind, threshold) in enumerate(_defaults.DEFAULT_CRITERIA):
            PhaseCriterion.objects.create(
                phase=phase, kind=kind, threshold=threshold, position=position
            )
