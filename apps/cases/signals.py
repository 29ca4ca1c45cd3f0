"""Signals other domains listen to (classifiers, autonomy) without cases importing them.

Both are sent after the transaction commits, so receivers see the saved rows; a receiver's error
is logged, never turned into a failed intake or decision.
"""

from django.dispatch import Signal

# process_id: int, case_ids: list[int] — new cases were saved.
cases_created = Signal()
# case_id: int, decision_id: int, source: str, status: str — a label was recorded on a case;
# status is the case's status after it (open, adjudication or decided).
decision_recorded = Signal()
# case_id: int, decision_id: int, status: str — an expert undid their label (the decision is kept,
# marked retracted); status is the case's status after it.
decision_retracted = Signal()
