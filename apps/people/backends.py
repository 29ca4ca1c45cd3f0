from django.contrib.auth.backends import ModelBackend

from apps.people.models import Membership, Role


class AdminRoleBackend(ModelBackend):
    """Holders of the admin role administer the organisation: every permission in the Django admin."""

    def authenticate(self, request, username=None, password=None, **kwargs):  # type: ignore[no-untyped-def]
        return None  # permissions only; ModelBackend does the logging in

    def has_perm(self, user_obj, perm, obj=None):  # type: ignore[no-untyped-def]
        if not user_obj.is_active or not user_obj.is_authenticated:
            return False
        if not hasattr(user_obj, "_orchcap_is_admin"):
            user_obj._orchcap_is_admin = Membership.objects.filter(
                user=user_obj, role=Role.ADMIN
            ).exists()
        return user_obj._orchcap_is_admin

    def has_module_perms(self, user_obj, app_label):  # type: ignore[no-untyped-def]
        return self.has_perm(user_obj, f"{app_label}.*")
