from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

from apps.autonomy.demo import seed_autonomy_demo
from apps.capital.demo_roadmap import seed_roadmap_demo
from apps.cases.demo import seed_demo_cases
from apps.classifiers.demo import seed_learning_demo
from apps.orchestrations.demo import seed_orchestration_demo
from apps.people.demo import seed_demo_organisation
from apps.skills.demo import seed_skills_demo


class Command(BaseCommand):
    help = (
        "Create (idempotently) the demo organisation: two teams and one user per role, then the "
        "synthetic demo processes with their cases and historical decisions, induced rules, trained "
        "models and their autonomy levels, and a live orchestration of the invoice process."
    )

    def handle(self, *args: object, **options: object) -> None:
        result = seed_demo_organisation()
        if result.new_logins:
            self.stdout.write(f"Demo logins (shown once; also saved to {result.logins_file}):")
            for line in result.new_logins:
                self.stdout.write(f"  {line}")
        else:
            self.stdout.write(
                f"Demo organisation already present; logins are in {result.logins_file}"
            )
        self.stdout.write(seed_demo_cases())
        learning = seed_learning_demo()
        if learning:
            self.stdout.write(learning)
        self.stdout.write(seed_autonomy_demo())
        self.stdout.write(seed_roadmap_demo())
        self.stdout.write(seed_orchestration_demo())
        # Last: skills are measured from everything seeded above.
        self.stdout.write(seed_skills_demo())
        # Thousands of rows just written: without statistics the planner guesses and the first
        # pages are several times slower (quality 450 ms vs 47 ms) until autovacuum gets there.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        # The capital dashboard's history, measured from the decisions and levels just recorded.
        call_command("capital_backfill", stdout=self.stdout)
