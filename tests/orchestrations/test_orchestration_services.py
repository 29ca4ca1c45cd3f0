"""The services directly: the model version pinned against the autonomy earned with it, and two
concurrent promotions ending with exactly one live version."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.autonomy.models import ProcessAutonomy
from apps.orchestrations.models import OrchestrationVersion, StageChange
from apps.orchestrations.services import change_stage, create_version, diff_versions
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401


def test_a_level_is_only_asked_for_with_the_model_it_was_earned_with(
    manager,
    process,
    orchestration,
    fitted_model,  # noqa: F811
):
    earned_with = store_promoted_model(process, fitted_model)
    newer = store_promoted_model(process, fitted_model)
    ProcessAutonomy.objects.create(
        process=process, level=2, threshold=0.9, model_version=earned_with
    )

    with pytest.raises(ValidationError, match="earned with another model version"):
        create_version(
            orchestration=orchestration, actor=manager,
            values={"autonomy_level": 2, "model_version": newer.version},
        )  # fmt: skip
    with pytest.raises(ValidationError, match="earned level 2"):
        create_version(
            orchestration=orchestration, actor=manager,
            values={"autonomy_level": 3, "model_version": earned_with.version},
        )  # fmt: skip
    pinned = create_version(
        orchestration=orchestration, actor=manager,
        values={"autonomy_level": 2, "model_version": earned_with.version},
    )  # fmt: skip
    shadowing = create_version(
        orchestration=orchestration, actor=manager, values={"model_version": newer.version}
    )

    diff = diff_versions(old=pinned, new=shadowing)
    assert diff["components"]["model_version"] == {
        "from": earned_with.version,
        "to": newer.version,
    }
    assert {"name": "autonomy_level", "from": 2, "to": 0} in diff["settings"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_promotions_leave_exactly_one_live_version(manager, orchestration):
    drafts = [
        create_version(orchestration=orchestration, actor=manager, values={}) for _ in range(2)
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def promote(version: OrchestrationVersion) -> None:
        try:
            start.wait()
            change_stage(version=version, stage="live", actor=manager, reason="race")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(d,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stages = sorted(OrchestrationVersion.objects.values_list("stage", flat=True))
    assert stages == ["live", "retired"]
    moves = sorted(StageChange.objects.values_list("from_stage", "to_stage"))
    assert moves == [("draft", "live"), ("draft", "live"), ("live", "retired")]
