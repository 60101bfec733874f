from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.models import ApiToken


class Command(BaseCommand):
    help = "API keys for scripts: create one for a user (shown once), list them, or revoke one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create a key for USER and print it (once).")
        create.add_argument("user")
        create.add_argument("--name", default="", help="What the key is for.")
        actions.add_parser("list", help="Keys, by their first characters.")
        revoke = actions.add_parser("revoke", help="Revoke the key that starts with PREFIX.")
        revoke.add_argument("prefix")

    def handle(self, *args, **options) -> None:
        if options["action"] == "create":
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}", returncode=2)
            _, key = ApiToken.issue(user=user, name=options["name"])
            self.stdout.write(key)
            self.stderr.write("Keep this key: it is not stored and cannot be shown again.")
        elif options["action"] == "list":
            for token in ApiToken.objects.select_related("user"):
                used = (
                    token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "never used"
                )
                owner, name = token.user.get_username(), token.name or "-"
                self.stdout.write(f"{token.prefix}…  {owner:<16} {name:<20} {used}")
        else:
            self._revoke(options["prefix"])

    def _revoke(self, prefix: str) -> None:
        # Prefixes are the key's first ten characters ("cw_" and seven more): shorter could name several.
        matches = list(ApiToken.objects.filter(prefix__startswith=prefix[:10]).select_related("user"))
        if not matches:
            raise CommandError(f"no key starts with {prefix!r}: see cosmos_token list", returncode=2)
        if len(matches) > 1:
            names = ", ".join(f"{token.prefix} ({token.user.get_username()})" for token in matches)
            raise CommandError(
                f"{prefix!r} starts {len(matches)} keys: {names}; give more of it", returncode=2
            )
        matches[0].delete()
        self.stdout.write(f"Revoked {matches[0].prefix}… of {matches[0].user.get_username()}")
