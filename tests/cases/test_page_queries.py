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


def test_home_page_queries_do_not_grow_with_the_processes(
    team, expert, manager, second_expert, django_assert_max_num_queries
):
    from apps.cases.services.processes import set_process_people
    from tests.factories import make_process

    processes = [make_process(team, slug=f"process-{i}") for i in range(8)]
    # Named people on some: the expert reviews one of them, the manager adjudicates none.
    set_process_people(process=processes[0], reviewers=[second_expert], adjudicators=[expert])
    set_process_people(process=processes[1], reviewers=[expert], adjudicators=[])
    client = client_for(expert)
    with django_assert_max_num_queries(30):
        page = client.get(reverse("home")).content.decode()
    # Reviews every process but the one that names only someone else.
    review_work = page.split('id="review-work"', 1)[1].split("</section>", 1)[0]
    for process in processes[1:]:
        assert reverse("process_detail", args=[process.slug]) in review_work
    assert reverse("process_detail", args=[processes[0].slug]) not in review_work
    # Named adjudicator of the first process (no case awaits it yet, so no row): no error.
    manager_page = client_for(manager).get(reverse("home"))
    assert manager_page.status_code == 200
