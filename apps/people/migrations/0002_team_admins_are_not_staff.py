"""The admin role used to make its holders staff (and so Django admin users) organisation-wide.
It is a team's role now: take `is_staff` back from those who got it that way. Superusers, the
organisation admins, keep theirs."""

from django.conf import settings
from django.db import migrations


def take_back_staff(apps, schema_editor):  # type: ignore[no-untyped-def]
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Membership = apps.get_model("people", "Membership")
    admins = Membership.objects.filter(role="admin").values("user_id")
    User.objects.filter(is_staff=True, is_superuser=False, pk__in=admins).update(is_staff=False)


class Migration(migrations.Migration):
    dependencies = [
        ("people", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(take_back_staff, migrations.RunPython.noop)]
