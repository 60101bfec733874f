"""Readable prompt names made from the prompt text, with no model download.

The old tool needed KeyBERT (and a model fetch) just to name a prompt. A name only has to be
recognisable in a list, so the first few content words do, and the same text always gives the
same name. A structured caption is named from its summary (its first subject, say), not from
its JSON.
"""

import hashlib
import re
import unicodedata

from prompts.structured import caption_of, prompt_summary

MAX_WORDS = 4
MAX_LENGTH = 60

# Words that carry no meaning in a short name; kept small on purpose.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "at",
        "in",
        "on",
        "to",
        "into",
        "onto",
        "with",
        "without",
        "for",
        "from",
        "by",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "very",
        "some",
        "any",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "than",
        "then",
        "so",
        "such",
        "while",
        "during",
        "through",
        "across",
        "along",
        "near",
        "far",
        "about",
        "above",
        "below",
        "between",
        "behind",
        "beside",
        "among",
        "video",
        "scene",
        "shot",
        "footage",
        "clip",
        "captures",
        "shows",
        "showing",
        "features",
        "featuring",
        "depicts",
    }
)


def generate_prompt_name(text: str) -> str:
    """A lowercase, hyphenated name from the first content words of ``text``.

    >>> generate_prompt_name("A cyberpunk city at night, neon rain")
    'cyberpunk-city-night-neon'
    """
    caption = caption_of(text)
    if caption is not None:
        text = prompt_summary(caption) or text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = re.findall(r"[a-z0-9]+", ascii_text)
    content = [word for word in words if word not in STOPWORDS and len(word) > 1]
    chosen = (content or words)[:MAX_WORDS]
    name = "-".join(chosen)[:MAX_LENGTH].strip("-")
    if name:
        return name
    # Nothing readable (emoji, CJK, punctuation): a stable digest still tells prompts apart.
    return "prompt-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
