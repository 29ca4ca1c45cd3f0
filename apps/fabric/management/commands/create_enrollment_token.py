from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.fabric.services import enrollment
from apps.people.models import Team
from apps.people.selectors import administered_teams, is_org_admin


class _OneLineParser(CommandParser):
    """Bad arguments: one line and exit 2 (argparse would print the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        super().error(message)


class Command(BaseCommand):
    help = (
        "Create a single-use enrolment token for `orchcap-agent enroll` and print just the token "
        "(only its hash is stored)."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = _OneLineParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--auto-approve",
            action="store_true",
            help="The node may take work at once, without waiting in the approval queue.",
        )
        parser.add_argument(
            "--expires", default="24h", help="How long the token is valid: 30m, 24h, 7d (≤ 30d)."
        )
        parser.add_argument("--team", help="Slug of the team the node will belong to.")
        parser.add_argument(
            "--label",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A label every node enrolled with this token gets, e.g. site=branch-3.",
        )
        parser.add_argument("--note", default="", help="What the token is for (shown to admins).")
        parser.add_argument(
            "--owner",
            metavar="USER",
            help="Username of the admin who owns the nodes enrolled with this token (default: the "
            "first organisation administrator). A team admin may own only their team's nodes.",
        )

    def handle(self, *args: object, **options: Any) -> None:
        try:
            expires_in = enrollment.parse_duration(options["expires"])
            labels = enrollment.parse_label_args(options["label"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages), returncode=2) from None
        team = None
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"no team with slug {options['team']!r}", returncode=2)
        owner = self._owner(options["owner"], team)
        if owner is None:
            # Still a valid token; the node just has no owner (no *My machines* page) until an
            # admin sets one on its page.
            self.stderr.write("no organisation administrator exists: the node will have no owner")
        _, raw = enrollment.create_enrollment_token(
            created_by=owner,
            expires_in=expires_in,
            team=team,
            labels=labels,
            auto_approve=options["auto_approve"],
            note=options["note"] or "created from the command line",
        )
        self.stdout.write(raw)

    def _owner(self, username: str | None, team: Team | None) -> AbstractBaseUser | None:
        """The token's creator, who becomes the owner of the nodes enrolled with it."""
        users = get_user_model().objects.filter(is_active=True)
        if username is None:
            return users.filter(is_superuser=True).order_by("pk").first()
        owner = users.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if owner is None:
            raise CommandError(f"no active user {username!r}", returncode=2)
        if is_org_admin(user=owner):
            return owner
        if team is None:
            raise CommandError(
                f"{username!r} is not an organisation administrator: pass the --team they administer",
                returncode=2,
            )
        if not administered_teams(user=owner).filter(pk=team.pk).exists():
            raise CommandError(f"{username!r} is not an admin of team {team.slug!r}", returncode=2)
        return owner
