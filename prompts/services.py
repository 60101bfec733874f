"""Operations on prompts that write rows or files: what commands, the admin and the pages call."""

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from cosmos_site.model_types import default_model_type
from prompts.models import Prompt, Tag, normalize_tag_name


def prompt_build(
    *,
    prompt_text: str,
    negative_prompt: str = "",
    name: str = "",
    model_type: str = "",
    inputs: dict | None = None,
    parameters: dict | None = None,
    owner: AbstractBaseUser | None = None,
    parent: Prompt | None = None,
) -> Prompt:
    """A validated prompt, not yet saved (ValidationError if it cannot be); a blank name is generated.

    Validating reads the database; a caller that saves inside a transaction builds first, so
    the transaction holds the write lock only for the writes.
    """
    prompt = Prompt(
        prompt_text=prompt_text,
        negative_prompt=negative_prompt,
        name=name,
        model_type=model_type or default_model_type(),
        inputs=inputs or {},
        parameters=parameters or {},
        owner=owner,
        parent=parent,
    )
    # The check constraint (a text that is not blank) is clean()'s own rule; the database enforces it
    # again on save. Evaluating it as a query here cost more than the rest of the validation.
    prompt.full_clean(validate_constraints=False)
    return prompt


def prompt_create(**fields: Any) -> Prompt:
    """A validated, saved prompt (the fields of prompt_build)."""
    prompt = prompt_build(**fields)
    prompt.save()
    return prompt


@transaction.atomic
def prompt_duplicate(*, prompt: Prompt, owner: AbstractBaseUser | None = None, name: str = "") -> Prompt:
    """A copy of ``prompt`` (text, settings, inputs, tags) to vary; the original is its parent."""
    copy = prompt_create(
        prompt_text=prompt.prompt_text,
        negative_prompt=prompt.negative_prompt,
        name=name or f"{prompt.name} (copy)"[: Prompt._meta.get_field("name").max_length],
        model_type=prompt.model_type,
        inputs=prompt.inputs,
        parameters=prompt.parameters,
        owner=owner or prompt.owner,
        parent=prompt,
    )
    copy.tags.set(prompt.tags.all())
    return copy


# --- Tags --------------------------------------------------------------------------------------


def _ids(prompts: Iterable[Prompt]) -> list[str]:
    if isinstance(prompts, QuerySet):
        return list(prompts.order_by().values_list("pk", flat=True))
    return [prompt.pk for prompt in prompts]


def tag_names_clean(names: Iterable[str]) -> list[str]:
    """Tag names in canonical form, each once, in the order given; ValidationError for an empty one."""
    cleaned = []
    for name in names:
        tag = normalize_tag_name(name)
        if not tag:
            raise ValidationError(f"{name!r} is not a tag: use letters or digits.")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def tags_parse(text: str) -> list[str]:
    """Tag names from what a person types: separated by commas (or new lines)."""
    return tag_names_clean(part for part in re.split(r"[,\n]", text) if part.strip())


@transaction.atomic
def prompt_tags_add(*, prompts: Iterable[Prompt], tags: Iterable[str]) -> int:
    """Tag every prompt with every tag (created as needed); returns how many tag links were new."""
    names = tag_names_clean(tags)
    prompt_ids = _ids(prompts)
    if not names or not prompt_ids:
        return 0
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    tag_ids = list(Tag.objects.filter(name__in=names).values_list("pk", flat=True))
    Link = Prompt.tags.through
    existing = set(
        Link.objects.filter(prompt_id__in=prompt_ids, tag_id__in=tag_ids).values_list("prompt_id", "tag_id")
    )
    new = [
        Link(prompt_id=prompt_id, tag_id=tag_id)
        for prompt_id in prompt_ids
        for tag_id in tag_ids
        if (prompt_id, tag_id) not in existing
    ]
    Link.objects.bulk_create(new, batch_size=500)
    return len(new)


@transaction.atomic
def prompt_tags_remove(*, prompts: Iterable[Prompt], tags: Iterable[str]) -> int:
    """Take the tags off the prompts; returns how many tag links went. Tags themselves stay."""
    names = tag_names_clean(tags)
    prompt_ids = _ids(prompts)
    deleted, _ = Prompt.tags.through.objects.filter(prompt_id__in=prompt_ids, tag__name__in=names).delete()
    return deleted


# --- Export and import -------------------------------------------------------------------------

EXPORT_FORMATS = ("json", "jsonl", "csv")
# The columns of every format, in this order (CSV's header), each with the Prompt.to_dict key it
# holds. Export then import into an empty database gives the same prompts: ids, texts, settings,
# tags, times and lineage.
EXPORT_COLUMNS = {
    "id": "prompt_id",
    "name": "name",
    "model_type": "model_type",
    "prompt_text": "prompt_text",
    "negative_prompt": "negative_prompt",
    "inputs": "inputs",
    "parameters": "parameters",
    "tags": "tags",
    "parent": "parent_id",
    "owner": "owner",
    "created_at": "created_at",
}
EXPORT_FIELDS = tuple(EXPORT_COLUMNS)
CONTENT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv"}


def _export_row(prompt: Prompt) -> dict[str, Any]:
    """Prompt.to_dict under the export's column names; no parent or owner is "" (as CSV has it)."""
    item = prompt.to_dict(detail=True, tags=True)
    return {column: "" if item[key] is None else item[key] for column, key in EXPORT_COLUMNS.items()}


def prompts_export(*, prompts: QuerySet, format: str) -> Iterator[str]:
    """The prompts as JSON (an array), JSONL or CSV, in chunks of text (stream them to a file or response).

    In CSV, inputs and parameters are JSON and tags are comma-separated.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}")
    rows = (
        _export_row(prompt)
        for prompt in prompts.select_related("owner")
        .prefetch_related("tags")
        .order_by("created_at", "id")
        .iterator(chunk_size=500)
    )
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_FIELDS)
        for row in rows:
            row = {
                **row,
                "inputs": json.dumps(row["inputs"], ensure_ascii=False, sort_keys=True),
                "parameters": json.dumps(row["parameters"], ensure_ascii=False, sort_keys=True),
                "tags": ", ".join(row["tags"]),
            }
            writer.writerow([row[name] for name in EXPORT_FIELDS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()
        return
    separator = "[\n" if format == "json" else ""
    for row in rows:
        line = json.dumps({name: row[name] for name in EXPORT_FIELDS}, ensure_ascii=False)
        if format == "json":
            yield f"{separator}{line}"
            separator = ",\n"
        else:
            yield f"{line}\n"
    if format == "json":
        yield "[]\n" if separator == "[\n" else "\n]\n"


@dataclass(frozen=True)
class RowError:
    row: int  # 1 = the first prompt in the file (CSV: the line after the header)
    field: str
    message: str

    def __str__(self) -> str:
        if not self.row:
            return self.message  # the file as a whole
        where = f"row {self.row}, {self.field}" if self.field else f"row {self.row}"
        return f"{where}: {self.message}"


class PromptImportError(ValueError):
    """Nothing was imported; ``errors`` names each bad row and field."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(error) for error in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"nothing imported: {shown}{more}")


def import_format_for(filename: str) -> str | None:
    suffix = Path(filename).suffix.lower().lstrip(".")
    return {"json": "json", "jsonl": "jsonl", "ndjson": "jsonl", "csv": "csv"}.get(suffix)


def _read_rows(data: str, format: str) -> list[Any]:
    """The file's records, in order; PromptImportError when the file itself cannot be read."""
    if format == "json":
        try:
            rows = json.loads(data)
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON (line {exc.lineno}: {exc.msg})"
            raise PromptImportError([RowError(0, "", problem)]) from None
        if not isinstance(rows, list):
            raise PromptImportError([RowError(0, "", "a JSON export is an array of prompts")])
        return rows
    if format == "jsonl":
        rows = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PromptImportError(
                    [RowError(len(rows) + 1, "", f"line {number} is not valid JSON ({exc.msg})")]
                ) from None
        return rows
    if format == "csv":
        reader = csv.DictReader(io.StringIO(data, newline=""))
        missing = [name for name in ("prompt_text",) if name not in (reader.fieldnames or [])]
        if missing:
            raise PromptImportError([RowError(0, "", f"the CSV header has no {missing[0]} column")])
        rows = []
        for row in reader:
            if None in row:  # more cells than header columns
                rows.append({"__error__": "the row has more cells than the header"})
                continue
            rows.append(row)
        return rows
    raise ValueError(f"unknown import format {format!r}; use one of {', '.join(EXPORT_FORMATS)}")


_ID = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def _json_object(value: Any, name: str) -> dict:
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValidationError(f"{name} is not valid JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be a JSON object")
    return value


def _tag_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return tags_parse(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tag_names_clean(value)
    raise ValidationError("tags must be a list of names (in CSV: names separated by commas)")


def _created_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError("not an ISO 8601 time, such as 2026-01-31T12:00:00+00:00") from None
    if moment.tzinfo is None:
        raise ValidationError("give the time zone, such as 2026-01-31T12:00:00+00:00")
    return moment


@dataclass
class _Parsed:
    row: int
    prompt: Prompt
    tags: list[str] = field(default_factory=list)
    parent: str = ""


def _parse_row(number: int, record: Any, owners: dict, default_owner) -> tuple[_Parsed | None, list]:
    errors: list[RowError] = []
    if not isinstance(record, dict):
        return None, [RowError(number, "", "a prompt is an object with the export's fields")]
    if "__error__" in record:
        return None, [RowError(number, "", record["__error__"])]
    unknown = sorted(set(record) - set(EXPORT_FIELDS))
    if unknown:
        known = ", ".join(EXPORT_FIELDS)
        errors.append(RowError(number, unknown[0], f"unknown field; the fields are {known}"))
    values: dict[str, Any] = {}
    checks = {
        "inputs": lambda value: _json_object(value, "inputs"),
        "parameters": lambda value: _json_object(value, "parameters"),
        "tags": _tag_list,
        "created_at": _created_at,
    }
    for name, check in checks.items():
        try:
            values[name] = check(record.get(name))
        except ValidationError as exc:
            errors.append(RowError(number, name, exc.messages[0]))
    text_fields = ("id", "name", "model_type", "prompt_text", "negative_prompt", "parent", "owner")
    for name in text_fields:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(RowError(number, name, "must be text"))
    prompt_id = str(record.get("id") or "").strip()
    if prompt_id and not _ID.match(prompt_id):
        errors.append(RowError(number, "id", "an id is up to 20 letters, digits, _ or -"))
    if errors:
        return None, errors
    owner_name = (record.get("owner") or "").strip()
    prompt = Prompt(
        name=record.get("name") or "",
        model_type=record.get("model_type") or default_model_type(),
        prompt_text=record.get("prompt_text") or "",
        negative_prompt=record.get("negative_prompt") or "",
        inputs=values["inputs"],
        parameters=values["parameters"],
        owner=owners.get(owner_name, default_owner),
    )
    if prompt_id:
        prompt.id = prompt_id
    if values["created_at"]:
        prompt.created_at = values["created_at"]
    try:
        # Uniqueness is checked for the whole file at once, below.
        prompt.full_clean(exclude=["parent"], validate_unique=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            name = "" if name == "__all__" else name
            errors.extend(RowError(number, name, message) for message in messages)
        return None, errors
    return _Parsed(number, prompt, values["tags"], (record.get("parent") or "").strip()), []


def prompts_import(*, data: str | bytes, format: str, owner: AbstractBaseUser | None = None) -> list[Prompt]:
    """Create the prompts of an export file, all or none.

    Ids, texts, settings, tags, creation times and parents are kept. A prompt whose owner (a
    username) exists here keeps it; others belong to ``owner``. A blank id gets a new one. Any
    problem (bad JSON, a blank text, an id already used here or twice in the file, a parent in
    neither the file nor the database…) raises PromptImportError naming every bad row and field,
    and nothing is written.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PromptImportError([RowError(0, "", "the file is not UTF-8 text")]) from None
    data = data.removeprefix("\ufeff")
    records = _read_rows(data, format)
    usernames = {str(record.get("owner") or "").strip() for record in records if isinstance(record, dict)}
    User = get_user_model()
    owners = {
        user.get_username(): user for user in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": usernames})
    }
    parsed, errors = [], []
    for number, record in enumerate(records, start=1):
        item, row_errors = _parse_row(number, record, owners, owner)
        errors.extend(row_errors)
        if item:
            parsed.append(item)
    errors.extend(_conflicts(parsed))
    if errors:
        raise PromptImportError(sorted(errors, key=lambda error: error.row))
    return _import_parsed(parsed)


def _conflicts(parsed: list[_Parsed]) -> list[RowError]:
    """What rows valid on their own get wrong together: an id used twice or already, an unknown parent."""
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for item in parsed:
        if item.prompt.id in seen:
            first = seen[item.prompt.id]
            errors.append(RowError(item.row, "id", f"{item.prompt.id} is also the id of row {first}"))
        seen.setdefault(item.prompt.id, item.row)
    taken = set(Prompt.objects.filter(pk__in=list(seen)).values_list("pk", flat=True))
    errors.extend(
        RowError(item.row, "id", f"{item.prompt.id} exists already: blank the id to import a copy")
        for item in parsed
        if item.prompt.id in taken
    )
    parents = {item.parent for item in parsed if item.parent}
    known = set(seen) | set(Prompt.objects.filter(pk__in=parents).values_list("pk", flat=True))
    errors.extend(
        RowError(item.row, "parent", f"{item.parent} is neither in the file nor in the database")
        for item in parsed
        if item.parent and item.parent not in known
    )
    return errors


@transaction.atomic
def _import_parsed(parsed: list[_Parsed]) -> list[Prompt]:
    """Write the checked rows: the prompts, then their parents (maybe later in the file), then tags."""
    prompts = Prompt.objects.bulk_create([item.prompt for item in parsed], batch_size=500)
    linked = [item for item in parsed if item.parent]
    for item in linked:
        item.prompt.parent_id = item.parent
    Prompt.objects.bulk_update([item.prompt for item in linked], ["parent"], batch_size=500)
    by_tag: dict[str, list[Prompt]] = {}
    for item in parsed:
        for tag in item.tags:
            by_tag.setdefault(tag, []).append(item.prompt)
    for tag, tagged in by_tag.items():
        prompt_tags_add(prompts=tagged, tags=[tag])
    return prompts
