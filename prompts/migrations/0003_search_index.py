"""The full-text index of prompts (name, text, negative prompt, tag names), kept by triggers.

SQLite: an FTS5 table. Its rowid must be an integer and prompts have text ids, so a small
key table gives each prompt a stable integer (a prompt's own implicit rowid could change on
VACUUM or a table rebuild). The FTS5 table keeps its own copy of the text, so it never
depends on the prompts table's layout.

PostgreSQL: a tsvector column with a GIN index. Tag names live in another table, so a
generated column cannot include them: triggers compute the vector instead.

Both split words at any punctuation and ignore case and accents (FTS5's unicode61 with
remove_diacritics; on PostgreSQL, punctuation replaced by spaces and a "simple" configuration
with unaccent), so a query finds the same prompts on both.

Careful: Django rebuilds a SQLite table for some later AlterField/RemoveField operations on
prompts_prompt, prompts_tag or prompts_prompt_tags, and a rebuild drops that table's
triggers. tests/prompts/test_search.py checks they exist after every migration; a migration
that drops them must create them again (copy FORWARD_SQLITE's triggers; those on prompts_prompt
as migration 0006 makes them, which index a structured caption's text values).
"""

from django.db import migrations, models, transaction

import prompts.search

TAG_NAMES_SQLITE = """
    (SELECT coalesce(group_concat(t.name, ' '), '') FROM prompts_prompt_tags pt
     JOIN prompts_tag t ON t.id = pt.tag_id WHERE pt.prompt_id = {prompt_id})
"""

FORWARD_SQLITE = [
    """
    CREATE TABLE prompts_prompt_fts_key (
        id INTEGER PRIMARY KEY,
        prompt_id varchar(20) NOT NULL UNIQUE
    )
    """,
    # prefix='2 3 4': the first letters typed in a search-as-you-type box are found in an index
    # of their own instead of merging the postings of every word that starts with them.
    """
    CREATE VIRTUAL TABLE prompts_prompt_fts USING fts5(
        prompt_id UNINDEXED, name, prompt_text, negative_prompt, tags,
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4'
    )
    """,
    # Column weights of the rank: a match in the name or a tag counts most, in the negative prompt least.
    "INSERT INTO prompts_prompt_fts (prompts_prompt_fts, rank) VALUES ('rank', 'bm25(0.0, 4.0, 1.0, 0.25, 4.0)')",
    """
    CREATE TRIGGER prompts_prompt_fts_insert AFTER INSERT ON prompts_prompt BEGIN
        DELETE FROM prompts_prompt_fts
            WHERE rowid IN (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.id);
        DELETE FROM prompts_prompt_fts_key WHERE prompt_id = new.id;
        INSERT INTO prompts_prompt_fts_key (prompt_id) VALUES (new.id);
        INSERT INTO prompts_prompt_fts (rowid, prompt_id, name, prompt_text, negative_prompt, tags)
            VALUES ((SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.id),
                    new.id, new.name, new.prompt_text, new.negative_prompt, """
    + TAG_NAMES_SQLITE.format(prompt_id="new.id")
    + """);
    END
    """,
    """
    CREATE TRIGGER prompts_prompt_fts_update AFTER UPDATE OF id, name, prompt_text, negative_prompt
    ON prompts_prompt
    WHEN old.id IS NOT new.id OR old.name IS NOT new.name OR old.prompt_text IS NOT new.prompt_text
        OR old.negative_prompt IS NOT new.negative_prompt
    BEGIN
        UPDATE prompts_prompt_fts_key SET prompt_id = new.id WHERE prompt_id = old.id;
        UPDATE prompts_prompt_fts
            SET prompt_id = new.id, name = new.name, prompt_text = new.prompt_text,
                negative_prompt = new.negative_prompt
            WHERE rowid = (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.id);
    END
    """,
    """
    CREATE TRIGGER prompts_prompt_fts_delete AFTER DELETE ON prompts_prompt BEGIN
        DELETE FROM prompts_prompt_fts
            WHERE rowid = (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = old.id);
        DELETE FROM prompts_prompt_fts_key WHERE prompt_id = old.id;
    END
    """,
    """
    CREATE TRIGGER prompts_prompt_tags_fts_insert AFTER INSERT ON prompts_prompt_tags BEGIN
        UPDATE prompts_prompt_fts SET tags = """
    + TAG_NAMES_SQLITE.format(prompt_id="new.prompt_id")
    + """
            WHERE rowid = (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = new.prompt_id);
    END
    """,
    """
    CREATE TRIGGER prompts_prompt_tags_fts_delete AFTER DELETE ON prompts_prompt_tags BEGIN
        UPDATE prompts_prompt_fts SET tags = """
    + TAG_NAMES_SQLITE.format(prompt_id="old.prompt_id")
    + """
            WHERE rowid = (SELECT id FROM prompts_prompt_fts_key WHERE prompt_id = old.prompt_id);
    END
    """,
    """
    CREATE TRIGGER prompts_tag_fts_update AFTER UPDATE OF name ON prompts_tag
    WHEN old.name IS NOT new.name
    BEGIN
        UPDATE prompts_prompt_fts SET tags = """
    + TAG_NAMES_SQLITE.format(prompt_id="prompts_prompt_fts.prompt_id")
    + """
            WHERE rowid IN (SELECT k.id FROM prompts_prompt_fts_key k
                            JOIN prompts_prompt_tags pt ON pt.prompt_id = k.prompt_id
                            WHERE pt.tag_id = new.id);
    END
    """,
    # Prompts that exist already, oldest first (the rank window takes the newest rowids).
    "INSERT INTO prompts_prompt_fts_key (prompt_id) SELECT id FROM prompts_prompt ORDER BY created_at, id",
    """
    INSERT INTO prompts_prompt_fts (rowid, prompt_id, name, prompt_text, negative_prompt, tags)
    SELECT k.id, p.id, p.name, p.prompt_text, p.negative_prompt, """
    + TAG_NAMES_SQLITE.format(prompt_id="p.id")
    + """
    FROM prompts_prompt_fts_key k JOIN prompts_prompt p ON p.id = k.prompt_id
    """,
]

BACKWARD_SQLITE = [
    "DROP TRIGGER IF EXISTS prompts_tag_fts_update",
    "DROP TRIGGER IF EXISTS prompts_prompt_tags_fts_delete",
    "DROP TRIGGER IF EXISTS prompts_prompt_tags_fts_insert",
    "DROP TRIGGER IF EXISTS prompts_prompt_fts_delete",
    "DROP TRIGGER IF EXISTS prompts_prompt_fts_update",
    "DROP TRIGGER IF EXISTS prompts_prompt_fts_insert",
    "DROP TABLE IF EXISTS prompts_prompt_fts",
    "DROP TABLE IF EXISTS prompts_prompt_fts_key",
]

# unaccent is a trusted extension (PostgreSQL 13+): the database owner may create it. Without
# it the configuration is plain "simple" and searches are accent-sensitive on PostgreSQL.
UNACCENT_POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    """
    ALTER TEXT SEARCH CONFIGURATION prompts_search
        ALTER MAPPING FOR word, numword, hword, numhword, hword_part, hword_numpart WITH unaccent, simple
    """,
]

FORWARD_POSTGRESQL = [
    "CREATE TEXT SEARCH CONFIGURATION prompts_search (COPY = pg_catalog.simple)",
    # Punctuation separates words, as in SQLite's tokenizer: "sci-fi", "f/2.8" and "don't" index
    # the same words on both databases (the default parser would keep "f/2.8" as one token).
    """
    CREATE FUNCTION prompts_search_words(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT regexp_replace(coalesce(value, ''), '[[:punct:]]+', ' ', 'g') $$
    """,
    # Weights: A name and tags, B prompt text, D negative prompt (ts_rank weighs them).
    """
    CREATE FUNCTION prompts_prompt_search_vector(name text, prompt_text text, negative_prompt text, tags text)
    RETURNS tsvector LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT
        setweight(to_tsvector('prompts_search', prompts_search_words(name)), 'A')
        || setweight(to_tsvector('prompts_search', prompts_search_words(tags)), 'A')
        || setweight(to_tsvector('prompts_search', prompts_search_words(prompt_text)), 'B')
        || setweight(to_tsvector('prompts_search', prompts_search_words(negative_prompt)), 'D') $$
    """,
    """
    CREATE FUNCTION prompts_prompt_tag_names(prompt varchar) RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(string_agg(t.name, ' '), '') FROM prompts_prompt_tags pt
          JOIN prompts_tag t ON t.id = pt.tag_id WHERE pt.prompt_id = prompt $$
    """,
    "ALTER TABLE prompts_prompt ADD COLUMN search_vector tsvector",
    """
    CREATE FUNCTION prompts_prompt_search_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := prompts_prompt_search_vector(
            NEW.name, NEW.prompt_text, NEW.negative_prompt, prompts_prompt_tag_names(NEW.id));
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER prompts_prompt_search_insert BEFORE INSERT ON prompts_prompt
    FOR EACH ROW EXECUTE FUNCTION prompts_prompt_search_trigger()
    """,
    """
    CREATE TRIGGER prompts_prompt_search_update BEFORE UPDATE OF id, name, prompt_text, negative_prompt
    ON prompts_prompt FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.prompt_text IS DISTINCT FROM NEW.prompt_text
          OR OLD.negative_prompt IS DISTINCT FROM NEW.negative_prompt)
    EXECUTE FUNCTION prompts_prompt_search_trigger()
    """,
    """
    CREATE FUNCTION prompts_prompt_tags_search_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE prompts_prompt p SET search_vector = prompts_prompt_search_vector(
                p.name, p.prompt_text, p.negative_prompt, prompts_prompt_tag_names(p.id))
            WHERE p.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.prompt_id ELSE NEW.prompt_id END;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER prompts_prompt_tags_search AFTER INSERT OR DELETE ON prompts_prompt_tags
    FOR EACH ROW EXECUTE FUNCTION prompts_prompt_tags_search_trigger()
    """,
    """
    CREATE FUNCTION prompts_tag_search_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE prompts_prompt p SET search_vector = prompts_prompt_search_vector(
                p.name, p.prompt_text, p.negative_prompt, prompts_prompt_tag_names(p.id))
            WHERE p.id IN (SELECT prompt_id FROM prompts_prompt_tags WHERE tag_id = NEW.id);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER prompts_tag_search AFTER UPDATE OF name ON prompts_tag FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION prompts_tag_search_trigger()
    """,
    """
    UPDATE prompts_prompt SET search_vector = prompts_prompt_search_vector(
        name, prompt_text, negative_prompt, prompts_prompt_tag_names(id))
    """,
    "CREATE INDEX prompts_prompt_search_gin ON prompts_prompt USING gin (search_vector)",
]

BACKWARD_POSTGRESQL = [
    "DROP TRIGGER IF EXISTS prompts_tag_search ON prompts_tag",
    "DROP TRIGGER IF EXISTS prompts_prompt_tags_search ON prompts_prompt_tags",
    "DROP TRIGGER IF EXISTS prompts_prompt_search_update ON prompts_prompt",
    "DROP TRIGGER IF EXISTS prompts_prompt_search_insert ON prompts_prompt",
    "DROP FUNCTION IF EXISTS prompts_tag_search_trigger()",
    "DROP FUNCTION IF EXISTS prompts_prompt_tags_search_trigger()",
    "DROP FUNCTION IF EXISTS prompts_prompt_search_trigger()",
    "ALTER TABLE prompts_prompt DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS prompts_prompt_tag_names(varchar)",
    "DROP FUNCTION IF EXISTS prompts_prompt_search_vector(text, text, text, text)",
    "DROP FUNCTION IF EXISTS prompts_search_words(text)",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS prompts_search",
]


def create_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for statement in FORWARD_SQLITE:
            schema_editor.execute(statement)
    elif vendor == "postgresql":
        schema_editor.execute(FORWARD_POSTGRESQL[0])
        try:
            with transaction.atomic(using=schema_editor.connection.alias):
                for statement in UNACCENT_POSTGRESQL:
                    schema_editor.execute(statement)
        except Exception:  # noqa: BLE001 - no right to create the extension: accent-sensitive search
            pass
        for statement in FORWARD_POSTGRESQL[1:]:
            schema_editor.execute(statement)


def drop_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": BACKWARD_SQLITE, "postgresql": BACKWARD_POSTGRESQL}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('prompts', '0002_tags'),
    ]

    operations = [
        migrations.CreateModel(
            name='PromptSearchDocument',
            fields=[
                ('prompt', models.OneToOneField(db_column='prompt_id', db_constraint=False, on_delete=models.deletion.DO_NOTHING, primary_key=True, related_name='search_document', serialize=False, to='prompts.prompt')),
                ('rowid', models.IntegerField(db_column='rowid')),
                ('document', prompts.search.FTS5Column(db_column='prompts_prompt_fts')),
                ('rank', models.FloatField(db_column='rank')),
            ],
            options={
                'db_table': 'prompts_prompt_fts',
                'managed': False,
            },
        ),
        migrations.RunPython(create_index, drop_index),
    ]
