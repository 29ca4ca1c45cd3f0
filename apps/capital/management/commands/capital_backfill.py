from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.capital.snapshots import backfill
from apps.people.models import Team


class Command(BaseCommand):
    help = (
        "Write the daily capital snapshots of each team (or --team) from its first recorded "
        "event (or --since) to today, from what orchcap recorded. Idempotent: days already "
        "written are measured again and replaced."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", help="a team's slug (default: every team)")
        parser.add_argument("--since", help="first day, YYYY-MM-DD")
        parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")

    def handle(self, *args: object, **options: object) -> None:
        since = self._day(options.get("since"), "--since")
        until = self._day(options.get("until"), "--until")
        if since and until and since > until:
            raise CommandError("--since must not be after --until")
        teams = Team.objects.order_by("pk")
        if options.get("team"):
            teams = teams.filter(slug=options["team"])
            if not teams.exists():
                raise CommandError(f"no team {options['team']!r}")
        for team in teams:
            days = backfill(team=team, since=since, until=until)
            self.stdout.write(f"capital: {team.slug}: {days} daily snapshots")

    @staticmethod
    def _day(value: object, name: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError as error:
            raise CommandError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from error
