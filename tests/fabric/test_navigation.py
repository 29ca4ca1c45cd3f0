from tests.conftest import client_for


def test_only_admins_see_the_fabric_in_the_navigation(admin, manager):
    assert 'href="/fabric/"' in client_for(admin).get("/").text
    assert 'href="/fabric/"' not in client_for(manager).get("/").text
