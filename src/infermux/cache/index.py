"""An in-process nearest-neighbour index over unit vectors (cosine = dot product), fast at 100,000 entries.

An inverted-file index that grows by splitting: vectors live in lists of at most ``list_size`` rows, each
with a centroid. A new vector joins the list of its nearest centroid; a list that outgrows ``list_size`` is
split in two by a few rounds of 2-means over its own rows (cheap: at most ``list_size`` rows), so there is no
global training step and no pause. Each row is also kept as a 64-dimension *sketch* (a fixed random
orthonormal projection). A search scores the centroid sketches, scans the sketches of the ``nprobe`` nearest
lists (6x less memory traffic than the full rows, which is what bounds a scan), rescores the best ``rerank``
rows of each on their full vectors and returns the best above ``min_score``. Below ``exact_below`` entries
every full row is scanned (exact).

Removal swaps the last row of a list into the freed slot (O(1)). numpy is imported lazily (``infermux``'s
import stays light); the index needs it, the exact cache does not.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError

__all__ = ["VectorIndex", "as_unit_vector", "numpy"]


def numpy() -> Any:
    """The numpy module, or a :class:`ConfigurationError` saying which extra brings it."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with the test and cache extras
        raise ConfigurationError(
            "the semantic cache needs numpy: pip install 'infermux[cache]'", retryable=False
        ) from None
    return np


def as_unit_vector(values: Any, dim: int | None = None) -> Any:
    """A float32 unit vector (a copy) from any sequence of numbers; :class:`ConfigurationError` when empty,
    of another dimension, or not finite."""
    np = numpy()
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    if v.size == 0 or (dim is not None and v.size != dim):
        raise ConfigurationError(f"embedding has {v.size} dimensions, the index holds {dim}")
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n == 0.0:
        raise ConfigurationError("embedding is zero or not finite")
    return v / n


class _List:
    __slots__ = ("count", "ids", "sk", "sum", "vecs")

    def __init__(self, np: Any, dim: int, sdim: int, capacity: int) -> None:
        self.vecs = np.zeros((capacity, dim), dtype=np.float32)
        self.sk = np.zeros((capacity, sdim), dtype=np.float32)
        self.ids: list[str] = []
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)


class VectorIndex:
    """Cosine nearest neighbours over unit vectors keyed by string ids (see the module docstring)."""

    def __init__(
        self, dim: int, *, list_size: int = 512, nprobe: int = 8, exact_below: int = 4096, sketch: int = 64
    ) -> None:
        if dim < 1 or list_size < 8 or nprobe < 1:
            raise ConfigurationError("VectorIndex needs dim >= 1, list_size >= 8 and nprobe >= 1")
        self._np = numpy()
        np = self._np
        self.dim = dim
        self.sdim = min(sketch, dim)
        if self.sdim == dim:
            self._proj = np.eye(dim, dtype=np.float32)
        else:  # a fixed seed: every replica sketches alike
            gauss = np.random.default_rng(20240611).normal(size=(dim, self.sdim))
            self._proj = np.linalg.qr(gauss)[0].astype(np.float32)
        self.rerank = 16
        self.list_size = list_size
        self.nprobe = nprobe
        self.exact_below = exact_below
        self._lists: list[_List] = []
        self._centroids = np.zeros((0, dim), dtype=np.float32)
        self._csk = np.zeros((0, self.sdim), dtype=np.float32)  # centroid sketches
        self._where: dict[str, tuple[int, int]] = {}  # id -> (list, row)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._where

    # ------------------------------------------------------------------ updates

    def add(self, id_: str, vector: Any) -> None:
        """Insert (or replace) ``id_``; ``vector`` is normalized here."""
        v = as_unit_vector(vector, self.dim)
        if id_ in self._where:
            self.remove(id_)
        if not self._lists:
            self._new_list(v[None, :], [id_])
            return
        li = int(self._np.argmax(self._centroids @ v)) if len(self._lists) > 1 else 0
        self._append(li, id_, v)
        if self._lists[li].count > self.list_size:
            self._split(li)

    def remove(self, id_: str) -> bool:
        where = self._where.pop(id_, None)
        if where is None:
            return False
        li, row = where
        lst = self._lists[li]
        lst.sum -= lst.vecs[row]
        last = lst.count - 1
        if row != last:
            lst.vecs[row] = lst.vecs[last]
            lst.sk[row] = lst.sk[last]
            moved = lst.ids[last]
            lst.ids[row] = moved
            self._where[moved] = (li, row)
        lst.ids.pop()
        lst.count = last
        self._refresh_centroid(li)
        return True

    def clear(self) -> None:
        self._lists.clear()
        self._where.clear()
        self._centroids = self._np.zeros((0, self.dim), dtype=self._np.float32)
        self._csk = self._np.zeros((0, self.sdim), dtype=self._np.float32)

    # ------------------------------------------------------------------ search

    def search(self, vector: Any, k: int = 4, min_score: float = -1.0) -> list[tuple[float, str]]:
        """Up to ``k`` ``(cosine, id)`` pairs with cosine >= ``min_score``, best first."""
        if not self._where:
            return []
        np = self._np
        q = as_unit_vector(vector, self.dim)
        if len(self._where) < self.exact_below or len(self._lists) <= self.nprobe:
            return self._exact(q, k, min_score)
        qs = q @ self._proj
        cscores = self._centroids @ q
        probe = np.argpartition(-cscores, self.nprobe)[: self.nprobe].tolist()
        lists = [self._lists[li] for li in probe if self._lists[li].count]
        # one pass over the probed sketches, one top-R over all of them, one rescore on the full rows
        approx = np.concatenate([lst.sk[: lst.count] @ qs for lst in lists])
        keep = min(max(k, self.rerank) * 4, approx.shape[0])
        top = np.argpartition(-approx, keep - 1)[:keep] if keep < approx.shape[0] else np.arange(approx.shape[0])
        top.sort()
        ends = np.cumsum([lst.count for lst in lists])
        cut = np.searchsorted(top, ends).tolist()
        found: list[tuple[float, str]] = []
        start, lo = 0, 0
        for lst, end, hi in zip(lists, ends.tolist(), cut, strict=True):
            if hi > lo:
                rows = top[lo:hi] - start
                exact = (lst.vecs[rows] @ q).tolist()
                ids = lst.ids
                found.extend((sc, ids[r]) for r, sc in zip(rows.tolist(), exact, strict=True) if sc >= min_score)
            start, lo = end, hi
        found.sort(key=lambda t: -t[0])
        return found[:k]

    def _exact(self, q: Any, k: int, min_score: float) -> list[tuple[float, str]]:
        np = self._np
        found: list[tuple[float, str]] = []
        for lst in self._lists:
            if lst.count == 0:
                continue
            scores = lst.vecs[: lst.count] @ q
            top = np.argpartition(-scores, k)[:k] if k < lst.count else range(lst.count)
            for r in top:
                sc = float(scores[r])
                if sc >= min_score:
                    found.append((sc, lst.ids[r]))
        found.sort(key=lambda t: -t[0])
        return found[:k]

    # ------------------------------------------------------------------ internals

    def _new_list(self, rows: Any, ids: list[str]) -> int:
        np = self._np
        lst = _List(np, self.dim, self.sdim, max(self.list_size + 1, len(ids)) + 1)
        n = len(ids)
        lst.vecs[:n] = rows
        lst.sk[:n] = rows @ self._proj
        lst.ids = list(ids)
        lst.count = n
        lst.sum = rows.sum(axis=0, dtype=np.float64)
        li = len(self._lists)
        self._lists.append(lst)
        for r, i in enumerate(ids):
            self._where[i] = (li, r)
        self._centroids = np.vstack([self._centroids, np.zeros((1, self.dim), dtype=np.float32)])
        self._csk = np.vstack([self._csk, np.zeros((1, self.sdim), dtype=np.float32)])
        self._refresh_centroid(li)
        return li

    def _append(self, li: int, id_: str, v: Any) -> None:
        lst = self._lists[li]
        if lst.count == lst.vecs.shape[0]:
            np = self._np
            grown = np.zeros((lst.vecs.shape[0] * 2, self.dim), dtype=np.float32)
            grown[: lst.count] = lst.vecs[: lst.count]
            lst.vecs = grown
            grown_sk = np.zeros((lst.sk.shape[0] * 2, self.sdim), dtype=np.float32)
            grown_sk[: lst.count] = lst.sk[: lst.count]
            lst.sk = grown_sk
        lst.vecs[lst.count] = v
        lst.sk[lst.count] = v @ self._proj
        lst.ids.append(id_)
        self._where[id_] = (li, lst.count)
        lst.count += 1
        lst.sum += v
        self._refresh_centroid(li)

    def _refresh_centroid(self, li: int) -> None:
        lst = self._lists[li]
        n = float(self._np.linalg.norm(lst.sum))
        self._centroids[li] = lst.sum / n if n > 1e-12 else 0.0
        self._csk[li] = self._centroids[li] @ self._proj

    def _split(self, li: int) -> None:
        """2-means over the rows of list ``li``: one half stays, the other becomes a new list."""
        np = self._np
        lst = self._lists[li]
        rows = lst.vecs[: lst.count].copy()
        ids = list(lst.ids)
        a = rows[0]
        b = rows[int(np.argmin(rows @ a))]  # the row farthest from the first
        side = np.zeros(len(ids), dtype=bool)
        for _ in range(4):
            side = (rows @ b) > (rows @ a)
            if side.all() or not side.any():
                side = np.arange(len(ids)) >= len(ids) // 2
                break
            a = rows[~side].mean(axis=0)
            b = rows[side].mean(axis=0)
        keep = np.flatnonzero(~side)
        move = np.flatnonzero(side)
        lst.vecs[: len(keep)] = rows[keep]
        lst.sk[: len(keep)] = rows[keep] @ self._proj
        lst.ids = [ids[i] for i in keep]
        lst.count = len(keep)
        lst.sum = rows[keep].sum(axis=0, dtype=np.float64)
        for r, i in enumerate(lst.ids):
            self._where[i] = (li, r)
        self._refresh_centroid(li)
        self._new_list(rows[move], [ids[i] for i in move])
