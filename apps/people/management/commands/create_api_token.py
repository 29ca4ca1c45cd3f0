from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.people import services


class Command(BaseCommand):
    help = "Create a personal API token for USER and print just the token (stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="created from the command line")

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        user = User.objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {options['username']!r}", returncode=2)
        _, raw = services.create_api_token(user=user, name=str(options["name"]))
        self.stdout.write(raw)
