# Being written (review queue, case page, process pages); placeholders keep the URLconf importable.
from django.http import Http404


def _todo(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise Http404("not yet")


process_list = process_create = process_detail = process_edit = _todo
review = review_decide = review_skip = review_renew = review_undo = case_detail = _todo
