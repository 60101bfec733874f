"""Full-text search over prompts: the query language, and how each database runs it.

What users type: words (all must match), "exact phrases", prefix* terms and -excluded terms.
``parse_query`` turns any text at all into those terms and never fails: whatever is not a
letter or a digit only separates words, an unbalanced quote closes at the end, and the terms
reach the database as quoted FTS5 strings or quoted tsquery lexemes, never as syntax.

Where the index lives (migration 0003 creates it on the database in use):

- SQLite: the FTS5 table ``prompts_prompt_fts`` (name, text, negative prompt, tag names),
  kept in step by triggers on prompts, their tag links and tags; ranked with bm25, snippets
  from ``snippet()``.
- PostgreSQL: the tsvector column ``prompts_prompt.search_vector`` with a GIN index, kept by
  triggers too (tags live in another table, so a generated column cannot see them); ranked
  with ts_rank, snippets from ts_headline. Both sides split words the same way (any
  punctuation separates words) and ignore case and accents.

Ranking costs time for every matching prompt (3-6 µs each on SQLite, a heap row read on
PostgreSQL), so ranking every prompt that a common word matches in a million takes hundreds of
milliseconds. ``search`` therefore ranks at most ``RANK_WINDOW`` (500) matches: a query
matching more returns the best of a window of that many, on SQLite the most recently added
matches, on PostgreSQL the first ones its index finds, and ``count()`` says 500. A query
matching fewer is searched and ranked over the whole table, so a match in a prompt from years
ago is found. ``rank_window=None`` ranks and returns every match (the admin does, to list and
count them all); pages can show "500+" when a search returns exactly the window.

Highlighting: ``search_snippet`` (an excerpt of the prompt text) and ``search_name`` come back
as HTML-safe strings: the prompt's own text HTML-escaped, with each match wrapped in
<mark>…</mark>. ``marked_text`` turns them into plain text for a terminal.
"""

import html
import re
import unicodedata
from dataclasses import dataclass

from django.db import connections, models
from django.db.models import F, Func, Lookup, Q, Subquery, Value
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce, Replace
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# A ranked search looks at no more matches than this (see the module docstring); measured with
# bench/search.py, it keeps a search-as-you-type query on a million prompts near 10-20 ms.
RANK_WINDOW = 500
# Longer input is cut: nobody types more, and every term costs a posting-list read.
MAX_QUERY_LENGTH = 500
MAX_TERMS = 16
# A prefix of one letter matches a large part of any vocabulary and narrows nothing.
MIN_PREFIX_LENGTH = 2

# The PostgreSQL text search configuration migration 0003 creates (simple + unaccent).
TSEARCH_CONFIG = "prompts_search"

# Unicode noncharacters, reserved for a program's internal use, so never part of a prompt:
# the databases put them around matches, and mark_html turns them into <mark> tags.
MARK_START, MARK_END = "\ufdd0", "\ufdd1"
# ts_headline drops anything that looks like an HTML tag ("<b>"), which in a prompt is text:
# PostgreSQL gets "<" and ">" as these two, and mark_html turns them back.
LESS_THAN, GREATER_THAN = "\ufdd2", "\ufdd3"

# Letters and digits of any script: everything else separates words, as FTS5's unicode61
# tokenizer and the PostgreSQL side (punctuation replaced by spaces) both do.
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Term:
    """Words that must appear together, in order (one word, or a phrase)."""

    words: tuple[str, ...]
    prefix: bool = False  # the last word may be the start of a longer word
    excluded: bool = False

    def fts5(self) -> str:
        # An FTS5 string: its own tokenizer splits it, and nothing in it is an operator.
        text = '"' + " ".join(self.words).replace('"', '""') + '"'
        return text + "*" if self.prefix else text

    def tsquery(self) -> str:
        lexemes = ["'" + word.replace("\\", "\\\\").replace("'", "''") + "'" for word in self.words]
        if self.prefix:
            lexemes[-1] += ":*"
        text = " <-> ".join(lexemes)
        if len(lexemes) > 1:
            text = f"({text})"
        return f"!{text}" if self.excluded else text

    def __str__(self) -> str:
        text = " ".join(self.words)
        text = f'"{text}"' if len(self.words) > 1 else text
        return ("-" if self.excluded else "") + text + ("*" if self.prefix else "")


@dataclass(frozen=True)
class ParsedQuery:
    terms: tuple[Term, ...] = ()

    @property
    def included(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if not term.excluded)

    @property
    def excluded(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.excluded)

    def __bool__(self) -> bool:
        # Exclusions alone would mean "every prompt but…": no results, rather than the whole table.
        return bool(self.included)

    def fts5(self) -> str:
        expression = "(" + " AND ".join(term.fts5() for term in self.included) + ")"
        return expression + "".join(f" NOT {term.fts5()}" for term in self.excluded)

    def tsquery(self) -> str:
        return " & ".join(term.tsquery() for term in self.terms)

    def __str__(self) -> str:
        return " ".join(str(term) for term in self.terms)


def parse_query(text: str) -> ParsedQuery:
    """The terms of what a user typed; any input gives a query (perhaps an empty one), never an error.

    - words separated by spaces must all match; case and accents are ignored;
    - "double quotes" make a phrase (its words adjacent, in order); an unbalanced quote closes
      at the end of the input;
    - a trailing * makes the last word a prefix (at least two letters; a shorter prefix is
      left out);
    - a leading - excludes the word or phrase that follows;
    - punctuation, symbols and emoji only separate words, so "sci-fi" is the phrase "sci fi"
      and a chunk of punctuation alone is ignored.
    """
    text = unicodedata.normalize("NFC", str(text or ""))[:MAX_QUERY_LENGTH]
    terms: list[Term] = []
    position, end = 0, len(text)
    while position < end and len(terms) < MAX_TERMS:
        if text[position].isspace():
            position += 1
            continue
        start = position
        while position < end and text[position] == "-":
            position += 1
        excluded = position > start
        if position < end and text[position] == '"':
            closing = text.find('"', position + 1)
            closing = end if closing == -1 else closing
            body, position = text[position + 1 : closing], closing + 1
        else:
            start = position
            while position < end and not text[position].isspace() and text[position] != '"':
                position += 1
            body = text[start:position]
        prefix = False
        if body.endswith("*") or text.startswith("*", position):
            prefix = True
            body = body.rstrip("*")
            while position < end and text[position] == "*":
                position += 1
        words = tuple(word.lower() for word in _WORD.findall(body))
        if prefix and words and len(words[-1]) < MIN_PREFIX_LENGTH:
            words, prefix = words[:-1], False
        term = Term(words=words, prefix=prefix and bool(words), excluded=excluded)
        if words and term not in terms:
            terms.append(term)
    return ParsedQuery(tuple(terms))


def only_exclusions(text: str) -> bool:
    """Whether ``text`` only leaves words out ("-fog"): such a search finds nothing (see ParsedQuery),
    and a page should say why rather than just "no match"."""
    query = parse_query(text)
    return bool(query.terms) and not query.included


def prefix_suggestion(text: str) -> str:
    """``text`` with each bare word it looks for made a prefix ("cyber city" → "cyber* city*"), to
    suggest when it finds nothing: search matches whole words, so a fragment finds nothing until
    it ends in *. Blank when no word would change (phrases, exclusions, prefixes already, words
    shorter than MIN_PREFIX_LENGTH)."""
    query = parse_query(text)
    terms = tuple(
        Term(term.words, prefix=True)
        if len(term.words) == 1
        and not term.prefix
        and not term.excluded
        and len(term.words[0]) >= MIN_PREFIX_LENGTH
        else term
        for term in query.terms
    )
    return str(ParsedQuery(terms)) if terms != query.terms else ""


def mark_html(marked: str | None) -> SafeString:
    """HTML for a snippet from the database: the text escaped, each match wrapped in <mark>."""
    text = escape(marked or "").replace(LESS_THAN, "&lt;").replace(GREATER_THAN, "&gt;")
    text = re.sub(f"{MARK_START}([^{MARK_START}{MARK_END}]*){MARK_END}", r"<mark>\1</mark>", text)
    text = text.replace(MARK_START, "").replace(MARK_END, "")
    # Words of one phrase arrive marked one by one: show the phrase as one mark.
    text = re.sub(r"</mark>(\s+)<mark>", r"\1", text)
    return mark_safe(text)  # built from escaped text and our own tags only


def marked_text(marked_html: str, *, start: str = "»", end: str = "«") -> str:
    """Plain text of a highlighted snippet, with the matches between ``start`` and ``end``."""
    text = str(marked_html).replace("<mark>", start).replace("</mark>", end)
    return html.unescape(text)


class HighlightField(models.TextField):
    """The type of snippet annotations: converts the database's markers into safe HTML."""

    def from_db_value(self, value, expression, connection):
        return mark_html(value)


class FTS5Column(models.TextField):
    """An FTS5 table's hidden column named after the table: what MATCH and snippet() take."""


@FTS5Column.register_lookup
class Match(Lookup):
    lookup_name = "match"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} MATCH {rhs}", [*lhs_params, *rhs_params]


def search(queryset, text: str, *, rank_window: int | None = RANK_WINDOW, highlight: bool = True):
    """``queryset``'s prompts that match ``text``, best first.

    Each has ``search_rank`` (higher is better) and, with ``highlight``, ``search_snippet`` and
    ``search_name`` (safe HTML, matches in <mark>). Apply other filters before this call: the
    rank window counts the matches of the queryset it is given. Keep the ordering it sets:
    reordering a search loses its speed.
    """
    query = parse_query(text)
    if not query:
        return queryset.none().annotate(
            search_rank=Value(0.0, output_field=models.FloatField()),
            search_snippet=Value("", output_field=HighlightField()),
            search_name=Value("", output_field=HighlightField()),
        )
    vendor = connections[queryset.db].vendor
    if vendor == "sqlite":
        return _search_sqlite(queryset, query, rank_window=rank_window, highlight=highlight)
    if vendor == "postgresql":
        return _search_postgresql(queryset, query, rank_window=rank_window, highlight=highlight)
    raise NotImplementedError(f"prompt search needs SQLite or PostgreSQL, not {vendor}")


# --- SQLite: FTS5 ------------------------------------------------------------------------------

# Columns of prompts_prompt_fts, in order: prompt_id (unindexed), name, prompt_text,
# negative_prompt, tags. snippet() and highlight() take a column's index.
_FTS_NAME, _FTS_TEXT = 1, 2


def _search_sqlite(queryset, query: ParsedQuery, *, rank_window: int | None, highlight: bool):
    matches = Q(search_document__document__match=query.fts5())
    results = queryset.filter(matches)
    if rank_window:
        # The rowid of the window's oldest match: FTS5 walks the matches newest first and stops
        # there, then ranks only rows from it on. No such row (fewer matches): rank them all.
        if queryset.query.where:
            # Other filters: the window counts only the prompts that pass them.
            newest = queryset.filter(matches).order_by("-search_document__rowid")
            cutoff = newest.values("search_document__rowid")[rank_window - 1 : rank_window]
        else:
            # No filter: the index alone answers, without reading a prompt row per match.
            documents = queryset.model._meta.get_field("search_document").related_model.objects
            newest = documents.filter(document__match=query.fts5()).order_by("-rowid")
            cutoff = newest.values("rowid")[rank_window - 1 : rank_window]
        results = results.filter(search_document__rowid__gte=Coalesce(Subquery(cutoff), 0))
    document = F("search_document__document")
    results = results.annotate(search_rank=-F("search_document__rank"))
    if highlight:
        results = results.annotate(
            search_snippet=Func(
                document,
                Value(_FTS_TEXT),
                Value(MARK_START),
                Value(MARK_END),
                Value("…"),
                Value(24),
                function="snippet",
                output_field=HighlightField(),
            ),
            search_name=Func(
                document,
                Value(_FTS_NAME),
                Value(MARK_START),
                Value(MARK_END),
                function="highlight",
                output_field=HighlightField(),
            ),
        )
    # ORDER BY the FTS5 rank column itself: FTS5 then sorts inside the index and hands rows over
    # best first, so a LIMIT stops the join (and the snippets) after the rows it needs.
    return results.order_by("search_document__rank")


# --- PostgreSQL: tsvector ----------------------------------------------------------------------


class _Column(Expression):
    """A column of the queryset's own table that is no model field (search_vector, ctid)."""

    def __init__(self, column: str, output_field: models.Field) -> None:
        super().__init__(output_field=output_field)
        self.column = column

    def as_sql(self, compiler, connection):
        alias = compiler.query.get_initial_alias()
        return f"{compiler.quote_name(alias)}.{compiler.quote_name(self.column)}", []


class _OwnTupleIn(Func):
    """The row's tuple id (ctid) is one of those the subquery returns: a TID scan fetches them."""

    template = "%(ctid)s = ANY(ARRAY%(expressions)s)"
    output_field = models.BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        ctid = _Column("ctid", models.TextField()).as_sql(compiler, connection)[0]
        return super().as_sql(compiler, connection, ctid=ctid, **extra_context)


# ts_headline's options, written once (Django's SearchHeadline composes them on every query).
# Snippet: up to two excerpts around the matches, short words kept at their edges ("A …").
_SNIPPET_OPTIONS = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=24, MinWords=12, ShortWord=0, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)
_NAME_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_END}, HighlightAll=true"


class _Headline(Func):
    function = "ts_headline"
    output_field = HighlightField()


class _CaptionText(Func):
    """A prompt text as the index has it: a caption's text values (migration 0006), else the text."""

    function = "prompts_caption_text"
    output_field = models.TextField()


def _headline(field: str, tsquery, options: str, *, caption: bool = False) -> _Headline:
    from django.contrib.postgres.search import SearchConfig

    source = _CaptionText(F(field)) if caption else F(field)
    text = Replace(Replace(source, Value("<"), Value(LESS_THAN)), Value(">"), Value(GREATER_THAN))
    return _Headline(SearchConfig(TSEARCH_CONFIG), text, tsquery, Value(options))


def _search_postgresql(queryset, query: ParsedQuery, *, rank_window: int | None, highlight: bool):
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField

    tsquery = SearchQuery(query.tsquery(), search_type="raw", config=TSEARCH_CONFIG)
    vector = _Column("search_vector", SearchVectorField())
    matches = queryset.alias(search_vector=vector).filter(search_vector=tsquery)
    results = matches
    if rank_window:
        # The first matches the GIN index yields, fetched back by their tuple ids (a TID scan,
        # no second index lookup): ranking then reads only those rows.
        window = matches.order_by().annotate(tid=_Column("ctid", models.TextField())).values("tid")
        results = queryset.filter(_OwnTupleIn(Subquery(window[:rank_window])))
    # Weights D, C, B, A: negative prompt, -, prompt text, name and tags; 1 divides by log(length).
    annotations = {
        "search_rank": SearchRank(vector, tsquery, weights=[0.05, 0.1, 0.4, 1.0], normalization=Value(1))
    }
    if highlight:
        # ts_headline costs more than PostgreSQL's threshold for postponing a select-list
        # expression, so it runs after ORDER BY … LIMIT, for the returned rows only.
        annotations["search_snippet"] = _headline("prompt_text", tsquery, _SNIPPET_OPTIONS, caption=True)
        annotations["search_name"] = _headline("name", tsquery, _NAME_OPTIONS)
    return results.annotate(**annotations).order_by("-search_rank", "-created_at")
