"""The verification step of the semantic cache: is a stored question the *same* question as a new one?

The embedding only finds candidates: negated, direction-swapped or number-changed questions score as high
as true paraphrases (0.98+). This step compares the two texts word by word, with no model and no I/O, and
refuses a match when any of these differ:

- **negation** (not, no, never, without, n't...), **numbers** (digits and number words, ordinals),
- **content words** after light normalisation (case, contractions, plurals and -ing/-ed endings, a small
  synonym table, units and currency symbols), allowing only one-edit typos of long, lower-case words
  (never the first letter, never on numbers or capitalised names) and extra *filler* words
  ("please", "can you tell me", "exactly"...) — so other entities, antonyms, units, near topics and
  scope changes ("in Europe" / "in the world") are refused,
- **question form**: question words (why / when / how...), grammatical person (my / your / her),
  tense (was / is / will), modality (should / can) and quantifiers (all / some / only / most...),
- **direction**: the object of each direction word (from, to, into, than, before, after, vs...) and the
  neighbours of asymmetric verbs (beat, chase, owe...) — "from Paris to London" is not "from London to Paris".

:func:`verify` returns a :class:`Verdict`; its ``reason`` names the first check that failed (counted by the
cache as a false-hit guard). ``strictness`` selects an operating point (see ``SemanticConfig``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ._lexicon import (
    _ASYMMETRIC,
    _CANON,
    _CLOSED,
    _CONFUSABLE,
    _CONTRACTIONS,
    _DIRECTION,
    _DIRECTION_MUST,
    _FILLER,
    _FILLER_PHRASES,
    _MODAL,
    _NEGATIONS,
    _NUMBER_UNIT,
    _NUMBER_WORDS,
    _ORDINALS,
    _PARTICLE,
    _PERSON,
    _PHATIC,
    _PHATIC_ANCHOR,
    _PHATIC_CLOSE,
    _PHATIC_OPEN,
    _QUANT,
    _REWRITES,
    _SCALES,
    _STOP,
    _TENSE,
    _TOKEN,
    _UNITS,
    _WH,
)

__all__ = ["Analysis", "Verdict", "analyze", "verify"]

Strictness = Literal["strict", "balanced", "lenient"]


@dataclass(frozen=True, slots=True)
class Analysis:
    """What :func:`verify` compares, computed once per text (cached)."""

    negations: int
    numbers: tuple[str, ...]
    content: frozenset[str]
    protected: frozenset[str]  # content words that get no typo tolerance (acronyms, units, symbols)
    names: frozenset[str]  # capitalised words: typo tolerance from 5 letters only
    surface: tuple[tuple[str, str], ...]  # (normalised word, the word as written): typos are judged on the latter
    order: tuple[str, ...]  # content words in order of first appearance
    markers: frozenset[str]  # direction words that must match (before / after, from, than...)
    wh: frozenset[str]
    person: frozenset[str]
    tense: frozenset[str]
    modal: frozenset[str]
    quant: frozenset[str]
    particle: frozenset[str]
    direction: frozenset[tuple[str, str]]
    relations: frozenset[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class Verdict:
    same: bool
    reason: str | None = None  # the first check that failed


def _stem(w: str) -> str:
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x")):
        if w.endswith(suf) and len(w) > len(suf) + 2:
            return w[: -len(suf)] + rep
    if w.endswith("ing") and len(w) > 5:
        w = w[:-3]
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" else w
    if w.endswith("ed") and len(w) > 4:
        w = w[:-2] if not w.endswith("eed") else w[:-1]
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" else w
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1]
    if w.endswith("e") and len(w) > 4:
        return w[:-1]  # make/making, bake/baked meet at the same stem
    return w


_ASYMMETRIC_STEMS = _ASYMMETRIC | frozenset(_stem(a) for a in _ASYMMETRIC)
#: every word of the tables: a known word is never "corrected" into a closed-class word ("three" is not "there")
_KNOWN = frozenset().union(
    _CLOSED,
    _PARTICLE,
    _NEGATIONS,
    _WH,
    _PERSON,
    _TENSE,
    _MODAL,
    _QUANT,
    _STOP,
    _DIRECTION,
    _FILLER,
    _ASYMMETRIC,
    _NUMBER_WORDS,
    _SCALES,
    _ORDINALS,
    _CANON,
    _CANON.values(),
)
#: closed-class words by (first letter, length +- 1): a typo keeps the first letter and changes length by <= 1
_CLOSED_BY_START: dict[tuple[str, int], tuple[str, ...]] = {}
for _w in sorted(_CLOSED):
    for _n in (len(_w) - 1, len(_w), len(_w) + 1):
        _CLOSED_BY_START[(_w[0], _n)] = (*_CLOSED_BY_START.get((_w[0], _n), ()), _w)
_FILLER_NORM = _FILLER | frozenset(_CANON.get(_stem(w), _stem(w)) for w in _FILLER)


@lru_cache(maxsize=16384)
def _norm_word(w: str) -> str:
    c = _CANON.get(w)
    if c is not None:
        return c
    s = _stem(w)
    return _CANON.get(s, s)


def _parse_numbers(tokens: list[str]) -> tuple[list[str], dict[int, str]]:
    """Numbers (as canonical strings) and, by position of the tokens that spelled them, their number."""
    out: list[str] = []
    used: dict[int, str] = {}
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t[0].isdigit():
            raw = t.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", t) else t.replace(",", ".")
            try:
                out.append(format(float(raw), "g"))
            except ValueError:
                out.append(t)
            used[i] = out[-1]
        elif t in _ORDINALS:
            out.append(f"#{_ORDINALS[t]}")
            used[i] = out[-1]
        elif t in _NUMBER_WORDS or t in _SCALES:
            total, cur, j = 0.0, 0.0, i
            while j < len(tokens) and (tokens[j] in _NUMBER_WORDS or tokens[j] in _SCALES or tokens[j] == "and"):
                w = tokens[j]
                if w in _NUMBER_WORDS:
                    cur += _NUMBER_WORDS[w]
                elif w in _SCALES:
                    cur = max(cur, 1.0) * _SCALES[w]
                    if _SCALES[w] >= 1000:
                        total, cur = total + cur, 0.0
                used[j] = ""
                j += 1
            if tokens[j - 1] == "and":
                del used[j - 1]
            out.append(format(total + cur, "g"))
            for p in range(i, j):
                if p in used:
                    used[p] = out[-1]
            i = j
            continue
        i += 1
    return out, used


_CLASSES = (
    ("wh", _WH),
    ("person", _PERSON),
    ("tense", _TENSE),
    ("modal", _MODAL),
    ("quant", _QUANT),
    ("particle", _PARTICLE),
)


def _fix_closed(m: re.Match[str]) -> str:
    return _fixed_word(m.group(0))


@lru_cache(maxsize=16384)
def _fixed_word(w: str) -> str:
    """``w``, or the closed-class word it is a slip of (words repeat: memoised)."""
    if w in _KNOWN or len(w) < 3:
        return w
    near = _CLOSED_BY_START.get((w[0], len(w)), ())
    fix = next((c for c in near if is_typo(w, c, short_ok=True)), None)
    return fix or w


_WORD = re.compile(r"[a-z]+")
_CONTRACTIONS_C = tuple((re.compile(p), r) for p, r in _CONTRACTIONS)
_NO_APOSTROPHE = tuple((p, r) for p, r in _CONTRACTIONS_C if "'" not in p.pattern)
#: every filler phrase holds one of these words
_FILLER_NEEDS = frozenset(
    (
        *("hi", "hello", "hey", "you", "like", "know", "ask", "understand", "wondering", "curious", "thinking"),
        *("thanks", "thank", "question", "while", "mind", "idea", "help", "please", "kindly"),
    )
)
_FILLER_ALL = re.compile("|".join(f"(?:{p.pattern})" for p in _FILLER_PHRASES))


_SEGMENT = re.compile(r"[.!?:;]+(?:\s+|$)|,\s*but\s+|^(?:hi|hello|hey)\b,?\s*")
_PHATIC_WORD = re.compile(r"[a-z]+|\d+")
_ANCHOR_RE = re.compile(r"\b(?:" + "|".join(sorted(_PHATIC_ANCHOR)) + r")\b")


def _drop_phatic(low: str) -> str:
    """Without the sentences, lead-ins and sign-offs that are only politeness ("Thanks a lot!", "Sorry if this
    is a silly question, but ..."); the text as it was when nothing else would be left."""
    if not _ANCHOR_RE.search(low):
        return low  # the common case: no politeness word at all
    kept: list[str] = []
    dropped = False
    for seg in _SEGMENT.split(low):
        words = _PHATIC_WORD.findall(seg)
        if words and all(w in _PHATIC for w in words) and any(w in _PHATIC_ANCHOR for w in words):
            dropped = True
        elif words:
            kept.append(seg)
    if not kept:
        return low
    first, last = _strip_run(kept[0], _PHATIC_OPEN, from_end=False), _strip_run(kept[-1], _PHATIC_CLOSE, from_end=True)
    if len(kept) == 1:
        first = _strip_run(last, _PHATIC_OPEN, from_end=False)
        kept = [first]
    else:
        kept = [first, *kept[1:-1], last]
    return " . ".join(kept) if dropped or kept != [low] else low


#: a word after which a greeting or thanks is what the question is about ("how do I say thanks")
_PHATIC_GUARD = frozenset(("say", "said", "saying", "says", "write", "writing", "express", "send", "reply", "word"))


def _strip_run(seg: str, anchors: frozenset[str], *, from_end: bool) -> str:
    """``seg`` without its longest leading (or trailing) run of politeness words that holds an anchor, unless
    that run is all of it."""
    found = list(_PHATIC_WORD.finditer(seg))
    order = found[::-1] if from_end else found
    cut, seen = -1, False
    for k, m in enumerate(order):
        if m.group(0) not in _PHATIC:
            break
        seen = seen or m.group(0) in anchors
        if seen:
            cut = k
    if cut < 0 or cut == len(found) - 1:
        return seg
    if from_end and order[cut + 1].group(0) in _PHATIC_GUARD:
        return seg
    return seg[: order[cut].start()] if from_end else seg[order[cut].end() :]


def _normalise(text: str) -> str:
    low = _drop_phatic(text.lower().replace("\u2019", "'"))
    low = _WORD.sub(_fix_closed, low)
    for pat, rep in _CONTRACTIONS_C if "'" in low else _NO_APOSTROPHE:
        low = pat.sub(rep, low)
    low = _NUMBER_UNIT.sub(r"\1 \2", low)
    words = set(_WORD.findall(low))
    for pat_r, rep_r, needs in _REWRITES:
        if not needs.isdisjoint(words):
            low = pat_r.sub(rep_r, low)
    if _FILLER_NEEDS.isdisjoint(_WORD.findall(low)):
        return low  # no filler phrase can match: spares the long alternation
    return _FILLER_ALL.sub(" ", low)


#: where a verb's subject stops being the left neighbour: "if I pay my bill, what happens" / "what happens if I pay"
_CLAUSE = frozenset(("if", "when", "because", "while", "unless", "although", "whether", *_WH))


def _neighbour(tokens: list[str], seq: list[str | None], span: range) -> str:
    """The first content word in ``span`` within the clause (no comma, no clause word crossed)."""
    for j in span:
        if seq[j]:
            return seq[j] or ""
        if tokens[j] == "," or tokens[j] in _CLAUSE:
            return ""
    return ""


def _object(tokens: list[str], seq: list[str | None], number_pos: dict[int, str], start: int, *, phrase: bool) -> str:
    """What a direction word governs: its first content word or number, or (``phrase``) all of those in a row,
    up to a comma ("for baking powder" is not "for baking soda"). "to" takes one word: it is also the
    infinitive's, whose verb phrase ("to take X and Y") is no object."""
    words: list[str] = []
    for j in range(start, len(tokens)):
        w = number_pos.get(j) or seq[j]
        if w:
            if not words or words[-1] != w:
                words.append(w)
            if not phrase:
                break
        elif words or tokens[j] == ",":
            break
    return " ".join(words)


def _relations(
    tokens: list[str], seq: list[str | None], number_pos: dict[int, str]
) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """(direction word, its object) pairs and (left, asymmetric verb, right) triples."""
    direction: set[tuple[str, str]] = set()
    relations: set[tuple[str, str, str]] = set()
    for i, t in enumerate(tokens):
        if t in _DIRECTION:
            obj = _object(tokens, seq, number_pos, i + 1, phrase=t != "to")
            if obj:
                direction.add((t, obj))
        w = seq[i]
        if w is not None and w in _ASYMMETRIC_STEMS:
            left = _neighbour(tokens, seq, range(i - 1, -1, -1))
            right = _neighbour(tokens, seq, range(i + 1, len(tokens)))
            relations.add((left, w, right))
    return direction, relations


#: a capital letter that is not a sentence's first ("Hello! How...", "..., but How...", "Question: How...")
_CAPITALISED = re.compile(r"(?<![.?!:]\s)(?<!,\sbut\s)(?<!^)\b[A-Z][A-Za-z]+")


@lru_cache(maxsize=4096)
def analyze(text: str) -> Analysis:
    """Normalise and pick apart ``text`` (see the module docstring)."""
    low = _normalise(text)
    capitalised = {m.group(0).lower() for m in _CAPITALISED.finditer(text.strip())}
    acronyms = {m.group(0).lower() for m in re.finditer(r"\b[A-Z][A-Z0-9]+\b", text)}
    tokens = _TOKEN.findall(low)
    numbers, number_pos = _parse_numbers(tokens)
    content: list[str] = []
    protected: set[str] = set()
    names: set[str] = set()
    surface: dict[str, str] = {}
    seq: list[str | None] = []  # normalised content word per position (None for function words)
    negations = 0
    classes: dict[str, set[str]] = {name: set() for name, _ in _CLASSES}
    for i, t in enumerate(tokens):
        word: str | None = None
        if t == ",":
            pass
        elif t in _NEGATIONS:
            negations += 1
        elif i not in number_pos:
            cls = next(((name, table[t]) for name, table in _CLASSES if t in table), None)
            if cls is not None:
                classes[cls[0]].add(cls[1])
            elif t not in _STOP and t not in _DIRECTION:
                word = t if t in acronyms or t in capitalised else _norm_word(t)
                content.append(word)
                surface[word] = t
                if t in acronyms or (word in _UNITS and len(t) < 6) or not t.isalpha():
                    protected.add(word)
                elif t in capitalised:
                    names.add(word)
        seq.append(word)
    if "how" in classes["wh"]:
        classes["modal"].discard("poss")  # "how can I" / "how do I" ask the same
    direction, relations = _relations(tokens, seq, number_pos)
    return Analysis(
        negations=negations,
        numbers=tuple(sorted(numbers)),
        content=frozenset(content),
        protected=frozenset(protected),
        names=frozenset(names),
        surface=tuple(surface.items()),
        order=tuple(dict.fromkeys(x for x in (number_pos.get(i) or w for i, w in enumerate(seq)) if x)),
        **{name: frozenset(v) for name, v in classes.items()},
        direction=frozenset(direction),
        markers=frozenset(t for t in tokens if t in _DIRECTION_MUST),
        relations=frozenset(relations),
    )


_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POS = {ch: (r, c) for r, row in enumerate(_KEYBOARD) for c, ch in enumerate(row)}


def _adjacent(a: str, b: str) -> bool:
    pa, pb = _KEY_POS.get(a), _KEY_POS.get(b)
    return pa is not None and pb is not None and abs(pa[0] - pb[0]) <= 1 and abs(pa[1] - pb[1]) <= 1


def is_typo(a: str, b: str, *, short_ok: bool = False) -> bool:
    """One keyboard slip turns ``a`` into ``b`` (never on the first letter): swapped neighbours (length >= 4),
    a neighbouring key (>= 5), a doubled letter (>= 4) or one letter more or less (>= 5). ``short_ok`` lowers
    each bound by one (closed-class words such as "what" / "whta")."""
    if a == b or not a or not b or a[0] != b[0] or not (a.isalpha() and b.isalpha()):
        return False
    if frozenset((a, b)) in _CONFUSABLE:
        return False
    slack = 1 if short_ok else 0
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and len(a) >= 4 - slack:
            i = diff[0]
            return a[i] == b[i + 1] and a[i + 1] == b[i]
        return len(diff) == 1 and len(a) >= 5 - slack and _adjacent(a[diff[0]], b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    if len(long_) - len(short) != 1 or len(short) < 4 - slack:
        return False
    for i in range(1, len(long_)):
        if long_[:i] + long_[i + 1 :] == short:
            doubled = long_[i] == long_[i - 1] or (i + 1 < len(long_) and long_[i] == long_[i + 1])
            if doubled or len(short) >= 5 - slack:
                return True
    return False


def _block_moved(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether ``b`` is ``a`` (both restricted to their common words) with at most one contiguous block moved:
    "at home, how do I bake bread" reorders; "does the Earth orbit the Sun" / "the Sun orbit the Earth" swaps."""
    common = set(a) & set(b)
    x = [w for w in a if w in common]
    y = [w for w in b if w in common]
    if x == y:
        return True
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n + 1):
            rest = x[:i] + x[j:]
            block = x[i:j]
            for k in range(len(rest) + 1):
                if rest[:k] + block + rest[k:] == y:
                    return True
    return False


def _typo_ok(w: str, a: Analysis) -> bool:
    return w not in a.protected and not (w in a.names and len(w) < 5)


def _same_word(w: str, u: str, a: Analysis, b: Analysis, short_ok: bool = False) -> bool:
    """Equal, or one a typo of the other (judged on the words as written)."""
    if w == u:
        return True
    if not (_typo_ok(w, a) and _typo_ok(u, b)):
        return False
    sw, su = dict(a.surface).get(w, w), dict(b.surface).get(u, u)
    return is_typo(sw, su, short_ok=short_ok) or is_typo(w, u, short_ok=short_ok)


def _unmatched(a: Analysis, b: Analysis, allow_typos: bool, filler_ok: bool, short_ok: bool = False) -> set[str]:
    left = set(a.content - b.content)
    right = set(b.content - a.content)
    if allow_typos:
        for w in sorted(left):
            match = next((u for u in sorted(right) if _same_word(w, u, a, b, short_ok)), None)
            if match is not None:
                left.discard(w)
                right.discard(match)
    rest = left | right
    if filler_ok:
        rest = {w for w in rest if w not in _FILLER_NORM}
    return rest


def _direction_differs(a: Analysis, b: Analysis, allow_typos: bool) -> bool:
    for marker in {m for m, _ in a.direction} & {m for m, _ in b.direction}:
        xs = sorted(o for m, o in a.direction if m == marker)
        ys = sorted(o for m, o in b.direction if m == marker)
        if xs == ys:
            continue
        if len(xs) != len(ys):
            return True
        for x in xs:
            y = next((y for y in ys if _same_phrase(x, y, a, b, allow_typos)), None)
            if y is None:
                return True
            ys.remove(y)
    return False


def _relations_differ(a: Analysis, b: Analysis, allow_typos: bool) -> bool:
    """Whether an asymmetric verb both sides use has other neighbours ("Spain beat Italy" / "Italy beat
    Spain"); a neighbour may be a typo of the other's."""
    for verb in {v for _, v, _ in a.relations} & {v for _, v, _ in b.relations}:
        xs = sorted(r for r in a.relations if r[1] == verb)
        ys = sorted(r for r in b.relations if r[1] == verb)
        if xs == ys:
            continue
        if not allow_typos or len(xs) != len(ys):
            return True
        for x in xs:
            y = next((y for y in ys if _same_side(x[0], y[0], a, b) and _same_side(x[2], y[2], a, b)), None)
            if y is None:
                return True
            ys.remove(y)
    return False


def _same_side(x: str, y: str, a: Analysis, b: Analysis) -> bool:
    return x == y or (bool(x) and bool(y) and _same_word(x, y, a, b))


def _same_phrase(x: str, y: str, a: Analysis, b: Analysis, allow_typos: bool) -> bool:
    """Word by word (typos allowed), the shorter being the start of the longer: an object phrase may run on
    into the next words on one side ("for 20 minutes" / "for 20 minutes burn"), never change its head."""
    xw, yw = x.split(" "), y.split(" ")
    return all(p == q or (allow_typos and _same_word(p, q, a, b)) for p, q in zip(xw, yw, strict=False))


def verify(stored: str, query: str, strictness: Strictness = "balanced") -> Verdict:
    """Whether ``query`` asks the same as ``stored`` (see the module docstring). ``strict`` allows neither
    typos nor filler words; ``lenient`` also takes shorter words' slips for typos and lets a question word
    appear on one side only."""
    a, b = analyze(stored), analyze(query)
    if a.negations != b.negations:
        return Verdict(False, "negation")
    if a.numbers != b.numbers:
        return Verdict(False, "number")
    strict = strictness == "strict"
    rest = _unmatched(a, b, allow_typos=not strict, filler_ok=not strict, short_ok=strictness == "lenient")
    if rest:
        return Verdict(False, "content")
    if a.wh != b.wh:
        one_sided = a.wh or b.wh
        if strict or (a.wh and b.wh) or (strictness == "balanced" and not one_sided <= {"what", "how"}):
            return Verdict(False, "question_word")
    if a.person != b.person and (strict or (a.person and b.person) or (a.person | b.person) - {"1", "2"}):
        return Verdict(False, "person")
    for name in ("tense", "modal", "quant", "particle"):
        if getattr(a, name) != getattr(b, name):
            return Verdict(False, name)
    if a.markers != b.markers or _direction_differs(a, b, allow_typos=not strict):
        return Verdict(False, "direction")
    if _relations_differ(a, b, allow_typos=not strict):
        return Verdict(False, "direction")
    if not _block_moved(a.order, b.order):
        return Verdict(False, "order")
    return Verdict(True)
