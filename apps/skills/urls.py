from django.urls import path

from apps.skills import framework_io_views, matrix_views, views

urlpatterns = [
    path("skills/", views.my_skills, name="my_skills"),
    path("skills/paths/", views.skill_paths, name="skill_paths"),
    path("skills/reviews/", views.skill_reviews, name="skill_reviews"),
    path("skills/people/<int:user_id>/", views.person_skills, name="person_skills"),
    path("skills/people/<int:user_id>/refresh", views.person_refresh, name="person_skills_refresh"),
    path(
        "skills/people/<int:user_id>/evidence",
        views.manual_evidence_add,
        name="manual_evidence_add",
    ),
    path("skills/people/<int:user_id>/plans", views.plan_create, name="skill_plan_create"),
    path(
        "skills/evidence/<int:evidence_id>/review",
        views.manual_evidence_review,
        name="manual_evidence_review",
    ),
    path("skills/plans/<int:plan_id>/", views.plan_detail, name="skill_plan"),
    path(
        "skills/plans/<int:plan_id>/transition", views.plan_transition, name="skill_plan_transition"
    ),
    path("skills/plans/<int:plan_id>/reviews", views.plan_review_request, name="skill_plan_review"),
    path(
        "skills/plan-reviews/<int:review_id>/answer",
        views.plan_review_answer,
        name="skill_plan_review_answer",
    ),
    path("skills/framework/", views.skills_framework, name="skills_framework"),
    path(
        "skills/framework/export",
        framework_io_views.framework_export,
        name="skills_framework_export",
    ),
    path(
        "skills/framework/import",
        framework_io_views.framework_import,
        name="skills_framework_import",
    ),
    path("skills/teams/", matrix_views.skill_matrices, name="skill_matrices"),
    path("skills/teams/<slug:team_slug>/", matrix_views.team_matrix, name="team_skill_matrix"),
    path(
        "skills/teams/<slug:team_slug>/people/<int:user_id>/skills/<int:skill_id>/",
        matrix_views.matrix_cell,
        name="team_skill_matrix_cell",
    ),
    path("skills/framework/skills/<int:skill_id>/", views.skill_edit, name="skill_edit"),
    path(
        "skills/framework/rules/<int:rule_id>/delete",
        views.evidence_rule_delete,
        name="evidence_rule_delete",
    ),
    path("skills/framework/roles/<int:role_id>/", views.career_role_edit, name="career_role_edit"),
]
