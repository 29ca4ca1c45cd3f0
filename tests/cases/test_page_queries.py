"""Query-count guards for pages that once made a query per row (N+1): enough rows that one
query per row would break the bound."""

from django.urls import reverse

from tests.conftest import client_for
from tests.factories import make_cases


def test_process_page_queries_do_not_grow_with_its_cases(
    process, manager, django_assert_max_num_queries
):
    make_cases(process, 30)
    client = client_for(manager)
    url = reverse("process_detail", args=[process.slug])
    with django_assert_max_num_queries(20):
        page = client.get(url)
    assert page.status_code == 200
    assert page.content.decode().count('href="/cases/') == 25  # one page of cases
