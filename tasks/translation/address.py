"""How a German translation of an English sentence addresses "you": du, ihr or Sie.

English has one "you"; German chooses between the informal singular *du*, the informal
plural *ihr* and the formal *Sie*. Tatoeba keeps several translations of one sentence, so
its references often show more than one form ("Ask me." → "Frag mich!" / "Fragt mich!" /
"Fragen Sie mich!"): modes of the output that can be named, which is what multiple-choice
learning should cover.

``address_form(german, english)`` returns one of:

- ``"none"``: no form found and the English has no *you/your/yours/yourself/yourselves*
  (nothing to decide; English imperatives have no "you", so "Ask me." → "Frag mich!" is
  "none", while "Fragen Sie mich!" is "Sie");
- ``"du"``: a form of *du* (du, dich, dir, dein-), any case;
- ``"ihr"``: *euch* / *euer* / *eur-*, or lower-case *ihr* next to a second-person plural
  verb (*ihr seid*, *habt ihr*, *ihr könnt* …), or a sentence that opens with a plural
  imperative ending in *-t* and ends in "!" (*Fragt mich!*, *Wartet hier!*);
- ``"Sie"``: capitalised *Sie* / *Ihnen* / *Ihr-* where the capital is not explained by the
  start of a sentence; the formal imperative (*Fragen Sie …*) is such a case; at the start
  of a sentence only when the English has *you* and no *she/he/they/her/him/them/their*
  (else *Sie* may be "she" or "they" and *Ihr* "her" or "their");
- ``"undecided"``: the English has *you* but none of these forms is found, or more than
  one is (a translation that avoids the pronoun: "Thank you!" → "Danke!"; impersonal
  rephrasings with *man*; a pronoun-less singular imperative; mixed forms).

What it cannot decide: a sentence-initial *Sie* whose English also has a third person
(*She told you* → *Sie hat es dir gesagt* still resolves through *dir*, but *They know
you* → *Sie kennen Sie* does not); plural imperatives without "!" or with a subject
(*Kommt ihr?* resolves through *ihr*); *ihr* as a possessive ("her"/"their") beside a
verb ending in *-t* can be read as the plural pronoun (*Ihr Hund bellt* at a sentence
start is excluded by the capital rule, *weil ihr Hund bellt* is not). Its accuracy on 200
hand-labelled Tatoeba references is measured by ``tests/test_multiref_translation.py`` and
stated in README.
"""

from __future__ import annotations

import re

MODES = ("du", "ihr", "Sie")
LABELS = (*MODES, "none", "undecided")

_YOU = re.compile(r"\b(you|your|yours|yourself|yourselves)\b", re.IGNORECASE)
_THIRD = re.compile(r"\b(she|he|they|her|him|them|their|theirs|hers)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+|[.!?:;\"„“”«»]")
_DU = {"du", "dich", "dir", "dein", "deine", "deinen", "deinem", "deiner", "deines", "deins"}
_EUER = {"euch", "euer", "eure", "euren", "eurem", "eurer", "eures"}
_SIE = {"Sie", "Ihnen", "Ihr", "Ihre", "Ihren", "Ihrem", "Ihrer", "Ihres"}
_PLURAL_VERBS = {"seid", "habt", "könnt", "wollt", "müsst", "sollt", "dürft", "wisst", "mögt", "werdet",
                 "wart", "hattet", "konntet", "wolltet", "musstet", "solltet", "wärt", "wäret", "hättet"}
_NOT_VERBS = {"nicht", "jetzt", "recht", "zeit", "welt", "stadt", "nacht", "arbeit", "angst", "mist", "acht",
              "halt", "bett", "gast", "zuerst", "meist", "fast", "sonst", "selbst", "dort", "wort", "sport",
              "licht", "gesicht", "geschenk", "samt", "bunt", "laut", "weit", "breit", "leicht", "schlecht"}
_BOUNDARY = {".", "!", "?", ":", ";", '"', "„", "“", "”", "«", "»"}


def _plural_verb(word: str | None) -> bool:
    if word is None:
        return False
    w = word.lower()
    if w in _PLURAL_VERBS:
        return True
    return len(w) > 3 and w.endswith("t") and not w.endswith("st") and w.isalpha() and w not in _NOT_VERBS


def address_form(german: str, english: str | None = None) -> str:
    """The address form of ``german`` as a translation of ``english`` (see the module doc)."""
    tokens = _WORD.findall(german)
    you = english is None or bool(_YOU.search(english))
    initial_sie_is_you = english is not None and you and not _THIRD.search(english)
    found = set()
    words = [(i, t) for i, t in enumerate(tokens) if t not in _BOUNDARY]
    for k, (i, tok) in enumerate(words):
        initial = i == 0 or tokens[i - 1] in _BOUNDARY
        before = words[k - 1][1] if k > 0 else None
        after = words[k + 1][1] if k + 1 < len(words) else None
        low = tok.lower()
        if low in _DU:
            found.add("du")
        elif low in _EUER:
            found.add("ihr")
        elif ((tok == "ihr" and (_plural_verb(before) or _plural_verb(after)))
              or (tok == "Ihr" and initial and _plural_verb(after))):
            found.add("ihr")
        elif tok in _SIE and (not initial or initial_sie_is_you):
            found.add("Sie")
    if not found and words and german.rstrip().endswith("!"):
        first = words[0][1]
        if first[0].isupper() and _plural_verb(first):
            found.add("ihr")
    if not found:
        return "undecided" if you else "none"
    return found.pop() if len(found) == 1 else "undecided"


def reference_modes(references: list[str], english: str) -> set[str]:
    """The address modes among an input's references."""
    return {m for m in (address_form(r, english) for r in references) if m in MODES}
