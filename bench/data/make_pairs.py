"""Build the labeled pair file for bench/cache_quality.py from a source file (see tune_source.txt).

    python bench/data/make_pairs.py bench/data/tune_source.txt bench/data/cache_pairs_tune.jsonl
    python bench/data/make_pairs.py --explicit bench/data/heldout_source.txt bench/data/cache_pairs_heldout.jsonl
    python bench/data/make_pairs.py --explicit bench/data/heldout2_source.txt bench/data/cache_pairs_heldout_b.jsonl

``--explicit``: each line is one pair ``a || b || 1|0 || kind`` (the held-out sets are written that way).

Each base line ``base || same || different || different`` gives: (base, same, true), (base, different, false)
twice, (base, base-with-a-seeded-typo, true), and for every other base (base, verbose wrapper, true).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEAR = {
    ch: [
        o
        for rr, row2 in enumerate(_ROWS)
        for cc, o in enumerate(row2)
        if abs(rr - r) <= 1 and abs(cc - c) <= 1 and o != ch
    ]
    for r, row in enumerate(_ROWS)
    for c, ch in enumerate(row)
}
_VERBOSE = (
    "Could you tell me: {q}",
    "I was wondering, {q}",
    "Quick question: {q} Thanks!",
    "Hi, {q}",
    "Can you please explain {lq}",
    "I would like to know {lq}",
    "Hey there! {q} Thank you in advance.",
    "Do you know {lq}",
)


def typo(text: str, rnd: random.Random) -> str:
    words = text.split(" ")
    choices = [i for i, w in enumerate(words) if len(w.strip("?.,!")) >= 4 and w.strip("?.,!").isalpha()]
    if not choices:
        return text
    i = rnd.choice(choices)
    w = words[i]
    core = w.rstrip("?.,!")
    tail = w[len(core) :]
    kind = rnd.choice(("swap", "drop", "double", "near"))
    j = rnd.randrange(1, len(core) - 1)
    if kind == "swap":
        core = core[:j] + core[j + 1] + core[j] + core[j + 2 :]
    elif kind == "drop":
        core = core[:j] + core[j + 1 :]
    elif kind == "double":
        core = core[:j] + core[j] + core[j:]
    else:
        ch = core[j].lower()
        core = core[:j] + rnd.choice(_NEAR.get(ch, [ch])) + core[j + 1 :]
    words[i] = core + tail
    return " ".join(words)


def main(src: str, dst: str) -> None:
    rnd = random.Random(11)
    out = []
    n = 0
    for raw in Path(src).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        base, same, d1, d2 = (p.strip() for p in line.split("||"))
        out.append({"a": base, "b": same, "same": True, "kind": "paraphrase"})
        out.append({"a": base, "b": d1, "same": False, "kind": "different"})
        out.append({"a": base, "b": d2, "same": False, "kind": "different"})
        out.append({"a": base, "b": typo(base, rnd), "same": True, "kind": "typo"})
        if n % 2 == 0:
            tpl = _VERBOSE[(n // 2) % len(_VERBOSE)]
            lq = base[0].lower() + base[1:]
            out.append({"a": base, "b": tpl.format(q=base, lq=lq), "same": True, "kind": "verbose"})
        n += 1
    with open(dst, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(out)} pairs ({sum(r['same'] for r in out)} same) -> {dst}")


def explicit(src: str, dst: str) -> None:
    rows = []
    for raw in Path(src).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        a, b, same, kind = (p.strip() for p in line.split("||"))
        rows.append({"a": a, "b": b, "same": same == "1", "kind": kind if same == "1" else f"different:{kind}"})
    with open(dst, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"{len(rows)} pairs ({sum(r['same'] for r in rows)} same) -> {dst}")


if __name__ == "__main__":
    if sys.argv[1] == "--explicit":
        explicit(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
