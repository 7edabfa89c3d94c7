"""Copies of one post across and within the labelled sets: exact copies after normalisation, and
near-duplicates (retweets, quote tweets, truncated or prefixed copies) grouped by shared keys.

Why it matters: TweetEval's validation split was drawn from the SemEval files, the sets were
scraped from the same platforms, and a retweet is the same text with ``RT @x:`` in front. A copy
on the training side of any split leaks the validation row it copies into model selection.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

# Literal ``\\uXXXX`` escapes: TweetEval ships texts with them where the SemEval copies carry the
# decoded character (``Don\\u2019t`` against ``Don’t``, ``\\u002c`` against ``,``).
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# Links, including SentiMix's tokenised ones (``https // t . co / AbC``) and bare ``http`` left by
# ``preprocess_text``.
_LINK = re.compile(r"https?://\S+|https?\s*:?\s*//\s*(?:t\s*\.?\s*co?\b)?\s*(?:/\s*\w*)?|www\.\S+|\bhttps?\b")
_MENTION = re.compile(r"@\s?\w+")
# An old-style quote tweet: a comment, then ``RT @x: the quoted post``.
_QUOTED = re.compile(r"\brt\W+@user\b\W*(.+)$")
_TOKEN = re.compile(r"[^\W_]+")

PREFIX_TOKENS = 8  # a truncated or suffixed copy still shares its first eight words with the original


def normalised_tokens(text: str) -> list[str]:
    """The words of a post with escapes and HTML entities decoded, lower case, without links,
    mentions, a retweet prefix or punctuation; non-ASCII letters (accents, Devanagari) kept."""
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = html.unescape(html.unescape(text))  # twice: some sets carry ``&amp;amp;``
    text = text.replace("'", "").replace("\u2019", "")  # "don't", "dont" and "don’t" are one word
    # Mentions go entirely (TweetEval masks them, retweets and replies add them), so what is left
    # of a retweet's ``RT @x:`` prefix is a leading "rt".
    tokens = _TOKEN.findall(_MENTION.sub(" ", _LINK.sub(" ", text.lower())))
    while tokens and tokens[0] == "rt":
        tokens.pop(0)
    return tokens


def overlap_key(text: str) -> str:
    """One key for copies of a post as different sets store it (TweetEval masks mentions to
    ``@user``, escapes punctuation as ``\\uXXXX`` and keeps ``&amp;``; SemEval has them decoded)."""
    return " ".join(normalised_tokens(text))


def near_duplicate_keys(text: str) -> set[str]:
    """Keys two copies of one post share: the whole normalised text; its first ``PREFIX_TOKENS``
    words (a truncated copy, or one with a suffix such as ``via @x``); and the same two for a post
    quoted after ``RT @x:``. Empty when the post has no words (emoji or links only): such posts
    cannot be told apart, so they are never matched."""
    keys: set[str] = set()
    lowered = _MENTION.sub(" @user ", html.unescape(_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)).lower())
    quoted = _QUOTED.search(lowered)
    for part in (text, quoted.group(1) if quoted else None):
        if part is None:
            continue
        tokens = normalised_tokens(part)
        if not tokens:
            continue
        keys.add("=" + " ".join(tokens))
        if len(tokens) >= PREFIX_TOKENS:
            keys.add("^" + " ".join(tokens[:PREFIX_TOKENS]))
    return keys


def key_index(texts: Iterable[str]) -> set[str]:
    """Every near-duplicate key of ``texts``, for membership tests."""
    return {key for text in texts for key in near_duplicate_keys(text)}


def is_copy(text: str, index: set[str]) -> bool:
    """Whether ``text`` shares a near-duplicate key with a text behind ``index``."""
    return not near_duplicate_keys(text).isdisjoint(index)


def duplicate_groups(texts: Sequence[str]) -> list[int]:
    """A group id per text: texts sharing a near-duplicate key, directly or through a chain of
    copies, get the same id (union-find over the keys)."""
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        for key in near_duplicate_keys(text):
            if key in first:
                a, b = root(first[key]), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first[key] = i
    return [root(i) for i in range(len(texts))]


def keep_groups_together(
    train: Sequence[int], held: Sequence[int], groups: Sequence[int]
) -> tuple[list[int], list[int]]:
    """(train, held) with every group that straddles both moved entirely into training.

    Training, not validation, takes the straddlers so that a validation split stays a subset of the
    seeded stratified draw: figures of a model selected on that draw stay comparable, and a group
    of many copies (which a draw rarely takes whole) teaches instead of being judged."""
    trained = {groups[i] for i in train}
    return sorted([*train, *(i for i in held if groups[i] in trained)]), [i for i in held if groups[i] not in trained]
