"""Search indexes a structured caption's text values, not its JSON.

A prompt text (or negative prompt) that is a structured caption is stored as its compact JSON
(prompts/structured.py). Indexed as it is, its keys ("subjects", "lighting"…) would match every
caption and its snippets would show braces and quotes. From here both databases index, for such
a text, its string values in document order, one per line, as prompts/structured.py's
searchable_text does; a text that is not a JSON object is indexed as before.

The rule lives in SQL, in the index's own triggers, so every write keeps it (bulk updates too):

- SQLite: the FTS5 triggers of migration 0003 are made again with ``caption_words_sqlite``
  (json_tree's text values, ordered by their position in the document).
- PostgreSQL: a function ``prompts_caption_text(text)`` (a recursive walk of the JSON, keeping
  its order), used by ``prompts_prompt_search_vector`` and by the snippets (prompts/search.py).

Existing captions are indexed again. Going back restores 0003's triggers and functions. A later
migration that rebuilds prompts_prompt on SQLite (and so drops its triggers) makes them again
with ``triggers_sqlite(caption_words_sqlite)``.
"""

from django.db import migrations

# The words of a prompt text: the text values of a JSON object, one per line, in document order
# (json_tree numbers its nodes in that order), else the text itself. No "%" in these statements:
# the database drivers would take it for a parameter.
CAPTION_WORDS_SQLITE = """(CASE WHEN substr({value}, 1, 1) = '{{' AND json_valid({value})
    THEN (SELECT coalesce(group_concat(value, char(10)), '')
          FROM (SELECT value FROM json_tree({value}) WHERE type = 'text' ORDER BY id))
    ELSE {value} END)"""


def caption_words_sqlite(value: str) -> str:
    return CAPTION_WORDS_SQLITE.format(value=value)


def plain_sqlite(value: str) -> str:
    return value


TAG_NAMES_SQLITE = """
    (SELECT coalesce(group_concat(t.name, ' '), '') FROM prompts_prompt_tags pt
     JOIN prompts_tag t ON t.id = pt.tag_id WHERE pt.prompt_id = {prompt_id})
"""


def triggers_sqlite(words) -> list[str]:
    """Migration 0003's insert and update triggers on prompts, each text through ``words``."""
    return [
        "DROP TRIGGER IF EXISTS prompts_prompt_fts_insert",
        "DROP TRIGGER IF EXISTS prompts_prompt_fts_update",
        f"""
        CREATE TRIGGER prompts_prompt_fts_insert AFTER INSERT ON prompts_prompt BEGIN
            DELETE FROM prompts_prompt_fts
                WHERE rowid IN (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.id);
            DELETE FROM prompts_prompt_fts_key WHERE prompt_id = new.id;
            INSERT INTO prompts_prompt_fts_key (prompt_id) VALUES (new.id);
            INSERT INTO prompts_prompt_fts (rowid, prompt_id, name, prompt_text, negative_prompt, tags)
                VALUES ((SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.id),
                        new.id, new.name, {words("new.prompt_text")}, {words("new.negative_prompt")},
                        {TAG_NAMES_SQLITE.format(prompt_id="new.id")});
        END
        """,
        f"""
        CREATE TRIGGER prompts_prompt_fts_update AFTER UPDATE OF id, name, prompt_text, negative_prompt
        ON prompts_prompt
        WHEN old.id IS NOT new.id OR old.name IS NOT new.name OR old.prompt_text IS NOT new.prompt_text
            OR old.negative_prompt IS NOT new.negative_prompt
        BEGIN
            UPDATE prompts_prompt_fts_key SET prompt_id = new.id WHERE prompt_id = old.id;
            UPDATE prompts_prompt_fts
                SET prompt_id = new.id, name = new.name, prompt_text = {words("new.prompt_text")},
                    negative_prompt = {words("new.negative_prompt")}
                WHERE rowid = (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.id);
        END
        """,
        # Captions written before: their text values now, in place of their JSON (or back).
        f"""
        UPDATE prompts_prompt_fts
            SET prompt_text = (SELECT {words("p.prompt_text")} FROM prompts_prompt p
                               WHERE p.id = prompts_prompt_fts.prompt_id),
                negative_prompt = (SELECT {words("p.negative_prompt")} FROM prompts_prompt p
                                   WHERE p.id = prompts_prompt_fts.prompt_id)
            WHERE rowid IN (SELECT k.id FROM prompts_prompt_fts_key k
                            JOIN prompts_prompt p ON p.id = k.prompt_id
                            WHERE substr(p.prompt_text, 1, 1) = '{{' OR substr(p.negative_prompt, 1, 1) = '{{')
        """,
    ]


# Not PARALLEL SAFE: catching a cast error starts a subtransaction, which a parallel worker cannot.
CAPTION_TEXT_POSTGRESQL = r"""
CREATE FUNCTION prompts_caption_text(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    caption json;
BEGIN
    IF value IS NULL OR left(value, 1) <> '{' THEN
        RETURN value;
    END IF;
    BEGIN
        caption := value::json;
    EXCEPTION WHEN others THEN
        RETURN value;  -- text written before captions existed that only starts with "{"
    END;
    IF json_typeof(caption) <> 'object' THEN
        RETURN value;
    END IF;
    RETURN coalesce((
        WITH RECURSIVE node(path, item) AS (
            SELECT ARRAY[]::bigint[], caption
            UNION ALL
            SELECT node.path || child.position, child.item
            FROM node, LATERAL (
                SELECT o.position, o.item
                FROM json_each(CASE WHEN json_typeof(node.item) = 'object' THEN node.item ELSE '{}'::json END)
                     WITH ORDINALITY AS o(key, item, position)
                UNION ALL
                SELECT a.position, a.item
                FROM json_array_elements(CASE WHEN json_typeof(node.item) = 'array' THEN node.item ELSE '[]'::json END)
                     WITH ORDINALITY AS a(item, position)
            ) AS child
        )
        SELECT string_agg(item #>> '{}', E'\n' ORDER BY path) FROM node WHERE json_typeof(item) = 'string'
    ), '');
END $$
"""


def search_vector_postgresql(words: str, parallel: str) -> str:
    """Migration 0003's vector function, the texts through ``words`` (a SQL function name, or "")."""
    return f"""
    CREATE OR REPLACE FUNCTION prompts_prompt_search_vector(name text, prompt_text text, negative_prompt text, tags text)
    RETURNS tsvector LANGUAGE sql STABLE {parallel}
    AS $$ SELECT
        setweight(to_tsvector('prompts_search', prompts_search_words(name)), 'A')
        || setweight(to_tsvector('prompts_search', prompts_search_words(tags)), 'A')
        || setweight(to_tsvector('prompts_search', prompts_search_words({words}(prompt_text))), 'B')
        || setweight(to_tsvector('prompts_search', prompts_search_words({words}(negative_prompt))), 'D') $$
    """


REINDEX_POSTGRESQL = """
    UPDATE prompts_prompt SET search_vector = prompts_prompt_search_vector(
        name, prompt_text, negative_prompt, prompts_prompt_tag_names(id))
    WHERE left(prompt_text, 1) = '{' OR left(negative_prompt, 1) = '{'
"""

FORWARD_POSTGRESQL = [
    CAPTION_TEXT_POSTGRESQL,
    search_vector_postgresql("prompts_caption_text", "PARALLEL UNSAFE"),
    REINDEX_POSTGRESQL,
]

BACKWARD_POSTGRESQL = [
    search_vector_postgresql("", "PARALLEL SAFE"),
    REINDEX_POSTGRESQL,
    "DROP FUNCTION IF EXISTS prompts_caption_text(text)",
]


def index_caption_words(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": triggers_sqlite(caption_words_sqlite), "postgresql": FORWARD_POSTGRESQL}
    for statement in statements.get(vendor, []):
        schema_editor.execute(statement)


def index_json(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": triggers_sqlite(plain_sqlite), "postgresql": BACKWARD_POSTGRESQL}
    for statement in statements.get(vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("prompts", "0006_cosmos3_models"),
    ]

    operations = [
        migrations.RunPython(index_caption_words, index_json),
    ]
