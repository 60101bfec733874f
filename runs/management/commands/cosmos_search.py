import json

from django.core.management.base import BaseCommand, CommandParser
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prompts.models import Prompt
from prompts.search import marked_text, parse_query


class Command(BaseCommand):
    help = (
        'Search every prompt: words (all must match), "exact phrases", prefix*, -excluded. '
        "Prints the best matches first, with the matches marked »like this«."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", help="What to look for, e.g. 'neon \"oil painting\" -rain cyber*'.")
        parser.add_argument("--limit", type=int, default=20, help="How many prompts (default 20).")
        parser.add_argument("--json", action="store_true", help="Print a JSON array instead of a table.")

    def handle(self, *args, **options) -> None:
        query = parse_query(options["query"])
        results = list(
            Prompt.objects.search(options["query"]).prefetch_related("tags")[: max(0, options["limit"])]
        )
        if options["json"]:
            items = [self._item(prompt) for prompt in results]
            self.stdout.write(json.dumps(items, indent=2, ensure_ascii=False))
            return
        if not query:
            self.stdout.write(
                f"Nothing to search for in {options['query']!r}: give at least one word that is not excluded."
            )
            return
        if not results:
            self.stdout.write(f"No prompt matches {query}.")
            return
        table = Table(box=None, header_style="bold")
        for column in ("Prompt", "Name", "Match", "Tags", "Created"):
            table.add_column(column, overflow="fold")
        for prompt in results:
            table.add_row(
                prompt.id,
                escape(marked_text(prompt.search_name)),
                escape(marked_text(prompt.search_snippet)),
                ", ".join(tag.name for tag in prompt.tags.all()),
                prompt.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        Console(file=self.stdout, highlight=False, width=200).print(table)

    @staticmethod
    def _item(prompt: Prompt) -> dict:
        """A match: some of Prompt.to_dict's keys, and how well and where it matched."""
        item = prompt.to_dict(tags=True)
        return {
            "prompt_id": item["prompt_id"],
            "name": item["name"],
            "rank": float(prompt.search_rank),
            "snippet": marked_text(prompt.search_snippet),
            "snippet_html": str(prompt.search_snippet),
            "name_html": str(prompt.search_name),
            "tags": item["tags"],
            "created_at": item["created_at"],
        }
