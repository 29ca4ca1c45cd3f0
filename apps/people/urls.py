from django.urls import path

from apps.people import views

urlpatterns = [
    path("", views.home, name="home"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/members/add", views.team_member_add, name="team_member_add"),
    path(
        "teams/<slug:slug>/members/<int:user_id>/roles",
        views.team_member_roles,
        name="team_member_roles",
    ),
    path(
        "teams/<slug:slug>/members/<int:user_id>/remove",
        views.team_member_remove,
        name="team_member_remove",
    ),
    path("teams/<slug:slug>/invitations", views.team_invite, name="team_invite"),
    path(
        "teams/<slug:slug>/invitations/<int:invitation_id>/revoke",
        views.team_invitation_revoke,
        name="team_invitation_revoke",
    ),
    path("invite/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke", views.api_token_revoke, name="api_token_revoke"),
]
