"""The design system's components (templates/components/, docs/ui.md) as pages use them."""

from django.urls import reverse

from tests.conftest import client_for


def test_a_field_shows_its_error_beside_the_input_it_labels(expert):
    response = client_for(expert).post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_old_password">' in html
    assert 'id="id_old_password"' in html
    assert 'aria-invalid="true"' in html
    old_password = html.index('id="id_old_password"')
    error = html.index('class="field-error"', old_password)
    assert error < html.index('<label for="id_new_password1">')


def test_a_list_with_nothing_in_it_shows_an_empty_state(manager, expert):
    for user, next_step in ((manager, "send cases through the API"), (expert, "A manager")):
        html = client_for(user).get(reverse("process_list")).content.decode()

        assert 'class="empty-state"' in html
        assert "No processes yet." in html
        assert next_step in html
        assert "<table" not in html
