"""Build a labeled pair file for bench/cache_quality.py from *frames* (held-out sets D, E and F).

    python bench/data/make_frames.py d bench/data/cache_pairs_heldout_d.jsonl
    python bench/data/make_frames.py e bench/data/cache_pairs_heldout_e.jsonl
    python bench/data/make_frames.py f bench/data/cache_pairs_heldout_f.jsonl

A different method from ``make_pairs.py`` (hand-written pair lines about general knowledge): each frame of
``frames_<set>.py`` is a question *template* with slots, written as a request to an assistant in a domain the
older sets do not cover (D: software, devops, money, office tools; E: cooking, travel, health, sport, home;
F: shopping, customer service, school, law and paperwork, pets, cars), plus

- ``same``: rewrites of the template that keep the meaning (paraphrase, reorder);
- ``diff``: rewrites that change it (negation, antonym, scope, direction, near topic...);
- ``fills``: slot values, each fill one instance of the frame; a fill may carry ``"~slot": (kind, value)``
  substitutions that change the meaning (another entity, number, unit, format, antonym, near topic), and
  ``"<>"``: two slots whose values swap (direction).

For every fill: every ``same`` and ``diff`` rewrite, every substitution, one seeded typo (a letter dropped,
doubled, swapped with its neighbour or replaced by a neighbouring key, in one word of 5+ letters, never the
first letter) and one verbose wrapper (these wrappers are not those of ``make_pairs.py``).
"""

from __future__ import annotations

import importlib
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEAR = {
    ch: [
        o for rr, r2 in enumerate(_ROWS) for cc, o in enumerate(r2) if abs(rr - r) <= 1 and abs(cc - c) <= 1 and o != ch
    ]
    for r, row in enumerate(_ROWS)
    for c, ch in enumerate(row)
}
_WRAPPERS = (
    "Sorry if this is a silly question, but {q}",
    "Hello! {q}",
    "{q} Any help is appreciated.",
    "Something I've been wondering about: {q}",
    "{q} Thanks a lot!",
    "Hey, quick one. {q}",
    "Need some help here. {q}",
    "{q} Thanks in advance for your help.",
)


def typo(text: str, rnd: random.Random) -> str:
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{5,}[?.!,]*", w)]
    i = rnd.choice(idx)
    w = words[i]
    core = re.match(r"^([A-Za-z]+)(\W*)$", w)
    assert core is not None, w
    word, tail = core.group(1), core.group(2)
    p = rnd.randrange(1, len(word) - 1)
    op = rnd.choice(("drop", "double", "swap", "key"))
    if op == "drop":
        word = word[:p] + word[p + 1 :]
    elif op == "double":
        word = word[:p] + word[p] + word[p:]
    elif op == "swap":
        word = word[:p] + word[p + 1] + word[p] + word[p + 2 :]
    else:
        near = _NEAR.get(word[p].lower(), ["e"])
        word = word[:p] + rnd.choice(near) + word[p + 1 :]
    words[i] = word + tail
    return " ".join(words)


def _fill(template: str, values: dict[str, str]) -> str:
    out = template.format(**values)
    return out[0].upper() + out[1:]


def pairs(frames: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    n = 0
    for fr in frames:
        for fill in fr["fills"]:
            vals = {k: v for k, v in fill.items() if not k.startswith(("~", "<"))}
            a = _fill(fr["a"], vals)

            def add(b: str, same: bool, kind: str, a: str = a) -> None:
                if b != a:
                    out.append({"a": a, "b": b, "same": same, "kind": kind if same else f"different:{kind}"})

            for kind, t in fr.get("same", ()):
                add(_fill(t, vals), True, kind)
            for kind, t in fr.get("diff", ()):
                add(_fill(t, vals), False, kind)
            for key, subs in fill.items():
                if key.startswith("~"):
                    for kind, value in subs if isinstance(subs, list) else [subs]:
                        add(_fill(fr["a"], {**vals, key[1:]: value}), False, kind)
            if "<>" in fill:
                x, y = fill["<>"]
                add(_fill(fr["a"], {**vals, x: vals[y], y: vals[x]}), False, "direction")
            add(typo(a, rnd), True, "typo")
            wrap = _WRAPPERS[n % len(_WRAPPERS)]
            add(wrap.format(q=a), True, "verbose")
            n += 1
    return out


def main() -> None:
    which, dest = sys.argv[1], Path(sys.argv[2])
    sys.path.insert(0, str(Path(__file__).parent))
    mod = importlib.import_module(f"frames_{which}")
    rows = pairs(mod.FRAMES, mod.SEED)
    dest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    same = sum(r["same"] for r in rows)
    print(f"{dest}: {len(rows)} pairs ({same} same / {len(rows) - same} different)")


if __name__ == "__main__":
    main()
