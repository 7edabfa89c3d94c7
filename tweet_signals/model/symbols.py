"""Emoji and pictographs written as words, for a vocabulary that has none.

The embedded model's WordPiece vocabulary (uncased BERT) has no emoji: "🚀", "😂" and "📉" all
become one ``[UNK]``, and a run of them (``😭😭😭``) becomes a single ``[UNK]``. About a fifth of
cashtag tweets and of Hinglish tweets carry one, and they are some of the clearest signs of tone
("to the moon 🚀", "📉📉"). Writing each as its Unicode name ("rocket", "chart with downwards
trend") gives the encoder words it already knows.

Only the emoji and pictograph blocks are rewritten, arrows and geometric shapes included (so "→",
which the vocabulary has, reads "rightwards arrow" as the model was trained); text without them
is returned as it is after one regex search, so the cost on ordinary text is negligible. The
names are this Python's Unicode tables': an emoji newer than them stays as it is.
"""

from __future__ import annotations

import re
import unicodedata

# Arrows, technical symbols, dingbats, misc. symbols and arrows, and the supplementary emoji
# planes; joiners, variation selectors and the keycap mark ride along so a sequence is one match.
_SYMBOL_RUN = re.compile(
    "[\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff\u200d\ufe0e\ufe0f\u20e3]+"
)
# The Unicode version whose names ``spell_symbols`` writes: part of a spelled model's revision,
# since a newer Python names emoji an older one left alone.
NAMES_VERSION: str = unicodedata.unidata_version
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_INVISIBLE = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}


def _spell_run(match: re.Match[str]) -> str:
    words: list[str] = []
    previous = ""
    for ch in match.group(0):
        code = ord(ch)
        if ch in _INVISIBLE or code in _SKIN_TONES:
            continue  # modifiers of the symbol before them
        if code in _REGIONAL_INDICATORS:
            name = "flag"  # two letters make one flag; both read as one word below
        else:
            name = unicodedata.name(ch, "").lower()
            if not name:  # newer than this Python's Unicode tables: left for the tokenizer
                name = ch
        if name != previous:  # "😂😂😂" says what "😂" says; three copies would only crowd out words
            words.append(name)
        previous = name
    if not words:  # joiners or selectors without a symbol (inside a Devanagari word, after "©"): not ours
        return match.group(0)
    return f" {' '.join(words)} "


def spell_symbols(text: str) -> str:
    """``text`` with every emoji or pictograph written as its lower-case Unicode name, repeats
    of one symbol in a row written once, and skin tones, joiners and variation selectors dropped."""
    return _SYMBOL_RUN.sub(_spell_run, text)
