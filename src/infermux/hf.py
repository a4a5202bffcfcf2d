"""Thin task helpers on top of :class:`infermux.AsyncClient` (no transport of their own), grown from the
Hugging Face "unified" seeds: multi-turn chat, map-reduce summaries, question answering, and embedding
helpers (similarity, clustering, a bounded cache, TEI reranking).

Every helper works with any configured endpoint (TGI, TEI, OpenAI-compatible...). The pure pieces
(:func:`split_chunks`, :func:`split_sentences`, :func:`cosine`, :func:`kmeans`, :func:`agglomerative`) are
exported for reuse and testing. Not imported by ``import infermux``.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigurationError
from .types import ChatResponse, Message

if TYPE_CHECKING:  # pragma: no cover
    from .client import AsyncClient
    from .providers.tei import RerankResult

__all__ = [
    "Answer",
    "ChatSession",
    "EmbeddingCache",
    "agglomerative",
    "answer_question",
    "cluster",
    "cosine",
    "embed_cached",
    "kmeans",
    "rerank",
    "semantic_similarity",
    "split_chunks",
    "split_sentences",
    "summarize",
]

Vector = Sequence[float]

# --------------------------------------------------------------------------- multi-turn chat


class ChatSession:
    """A conversation that keeps its history: ``await session.send("...")`` returns the reply and
    remembers both turns. Oldest turns are dropped (whole user/assistant pairs) beyond
    ``max_history_messages``; the system prompt is always sent. A failed call leaves the history as it was.
    ``params`` go to every :meth:`AsyncClient.chat` call (``max_tokens``, ``temperature``...)."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        system: str | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        max_history_messages: int = 20,
        **params: Any,
    ) -> None:
        if not isinstance(max_history_messages, int) or max_history_messages < 2:
            raise ConfigurationError("ChatSession.max_history_messages must be an int >= 2")
        self.client = client
        self.system = system
        self.endpoint = endpoint
        self.model = model
        self.max_history_messages = max_history_messages
        self.params = params
        self._history: list[Message] = []

    @property
    def history(self) -> tuple[Message, ...]:
        return tuple(self._history)

    def reset(self) -> None:
        self._history.clear()

    def messages_for(self, text: str) -> list[Message]:
        """What :meth:`send` will send for ``text`` (system prompt, kept history, the new user turn)."""
        head = [Message.system(self.system)] if self.system else []
        return [*head, *self._history, Message.user(text)]

    async def send(self, text: str) -> ChatResponse:
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("ChatSession.send needs a non-empty text")
        resp = await self.client.chat(self.messages_for(text), endpoint=self.endpoint, model=self.model, **self.params)
        self._history += [Message.user(text), Message.assistant(resp.text)]
        while len(self._history) > self.max_history_messages:
            del self._history[:2]
        return resp


# --------------------------------------------------------------------------- summaries


def split_chunks(text: str, chunk_chars: int) -> list[str]:
    """Pieces of at most ``chunk_chars`` characters, cut at paragraph, then sentence, then word breaks."""
    if chunk_chars < 1:
        raise ConfigurationError("chunk_chars must be >= 1")
    out: list[str] = []
    buf = ""
    for piece in re.split(r"(?<=[.!?])\s+|\n\s*\n", text.strip()):
        unit = piece.strip()
        while len(unit) > chunk_chars:  # one sentence longer than a chunk: cut at a word break
            cut = unit.rfind(" ", 0, chunk_chars + 1)
            cut = cut if cut > 0 else chunk_chars
            if buf:
                out.append(buf)
                buf = ""
            out.append(unit[:cut].strip())
            unit = unit[cut:].strip()
        if not unit:
            continue
        if buf and len(buf) + 1 + len(unit) > chunk_chars:
            out.append(buf)
            buf = unit
        else:
            buf = f"{buf} {unit}" if buf else unit
    if buf:
        out.append(buf)
    return out


def _cut_words(text: str, max_words: int) -> str:
    words = text.split()
    return text.strip() if len(words) <= max_words else " ".join(words[:max_words])


async def summarize(
    client: AsyncClient,
    document: str,
    *,
    max_words: int = 120,
    chunk_chars: int = 6000,
    endpoint: str | None = None,
    model: str | None = None,
    concurrency: int = 4,
    **params: Any,
) -> str:
    """Map-reduce summary: each chunk is summarised (``concurrency`` at a time), the partial summaries are
    summarised again until they fit one chunk, and the result is cut to ``max_words`` words."""
    if not isinstance(document, str) or not document.strip():
        raise ConfigurationError("summarize needs a non-empty document")
    if max_words < 1 or chunk_chars < 100 or concurrency < 1:
        raise ConfigurationError("summarize: max_words >= 1, chunk_chars >= 100 and concurrency >= 1 are required")
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str, words: int) -> str:
        prompt = f"Summarize the following text in at most {words} words. Reply with the summary only.\n\n{text}"
        async with gate:
            resp = await client.chat(prompt, endpoint=endpoint, model=model, **params)
        return resp.text.strip()

    chunks = split_chunks(document, chunk_chars)
    for _ in range(8):  # each round shrinks the text; a model that does not summarise cannot loop forever
        if len(chunks) == 1:
            break
        partial = await asyncio.gather(*(one(c, max_words) for c in chunks))
        chunks = split_chunks("\n\n".join(p for p in partial if p), chunk_chars) or [""]
    return _cut_words(await one(chunks[0], max_words), max_words)


# --------------------------------------------------------------------------- question answering


_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "and",
        "or",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "does",
        "do",
        "did",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "with",
        "by",
        "from",
        "as",
        "about",
        "into",
        "than",
        "then",
        "there",
        "their",
    ]
)
_WORD = re.compile(r"\w+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of the sentences of ``text`` (ends at ``.!?`` or a blank line)."""
    out = []
    for m in re.finditer(r"[^.!?\n]+(?:[.!?]+|\n|$)", text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer. Extractive answers carry the ``spans`` (character offsets into the context) they quote
    and their ``score``; abstractive ones the model's ``response``."""

    text: str
    mode: Literal["abstractive", "extractive"]
    spans: tuple[tuple[int, int], ...] = ()
    score: float | None = None
    response: ChatResponse | None = None


async def answer_question(
    client: AsyncClient,
    question: str,
    context: str,
    *,
    mode: Literal["abstractive", "extractive"] = "abstractive",
    endpoint: str | None = None,
    model: str | None = None,
    embed_endpoint: str | None = None,
    embed_model: str | None = None,
    top_k: int = 1,
    **params: Any,
) -> Answer:
    """Answer ``question`` from ``context``. ``abstractive``: the chat model answers. ``extractive``: the
    ``top_k`` best-matching sentences of the context, by lexical overlap, or by embedding cosine when
    ``embed_endpoint`` is given; they are returned in document order with their offsets."""
    if not question.strip() or not context.strip():
        raise ConfigurationError("answer_question needs a question and a context")
    if mode == "abstractive":
        prompt = (
            "Answer the question using only the context. If the context does not contain the answer, say so.\n\n"
            f"Context:\n{context}\n\nQuestion: {question}"
        )
        resp = await client.chat(prompt, endpoint=endpoint, model=model, **params)
        return Answer(resp.text.strip(), "abstractive", response=resp)
    if mode != "extractive":
        raise ConfigurationError(f"answer_question mode must be 'abstractive' or 'extractive', got {mode!r}")
    if top_k < 1:
        raise ConfigurationError("top_k must be >= 1")
    spans = split_sentences(context)
    if embed_endpoint is not None:
        texts = [question, *(context[s:e] for s, e in spans)]
        emb = await client.embed(texts, endpoint=embed_endpoint, model=embed_model)
        scores = [cosine(emb.vectors[0], v) for v in emb.vectors[1:]]
    else:
        q = _content_words(question)
        scores = [len(q & _content_words(context[s:e])) / (len(q) or 1) for s, e in spans]
    ranked = sorted(range(len(spans)), key=lambda i: (-scores[i], i))[:top_k]
    chosen = sorted(ranked)
    return Answer(
        " ".join(context[spans[i][0] : spans[i][1]] for i in chosen),
        "extractive",
        spans=tuple(spans[i] for i in chosen),
        score=scores[ranked[0]] if ranked else 0.0,
    )


# --------------------------------------------------------------------------- embeddings


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity (0.0 when a vector is all zeros); vectors must have the same length."""
    if len(a) != len(b):
        raise ConfigurationError(f"cosine: vectors differ in length ({len(a)} vs {len(b)})")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class EmbeddingCache:
    """A bounded LRU of vectors keyed by ``(model, text)``, with hit/miss counters."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ConfigurationError("EmbeddingCache.max_entries must be >= 1")
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[str, str], tuple[float, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, model: str, text: str) -> tuple[float, ...] | None:
        vec = self._data.get((model, text))
        if vec is None:
            self.misses += 1
            return None
        self._data.move_to_end((model, text))
        self.hits += 1
        return vec

    def put(self, model: str, text: str, vector: Vector) -> None:
        self._data[(model, text)] = tuple(vector)
        self._data.move_to_end((model, text))
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def clear(self) -> None:
        self._data.clear()
        self.hits = self.misses = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._data), "max_entries": self.max_entries, "hits": self.hits, "misses": self.misses}


def _cache_model(client: AsyncClient, endpoint: str | None, model: str | None) -> str:
    if model:
        return model
    ep = client.router.candidates(endpoint=endpoint)[0]
    return ep.config.model or ep.name


async def embed_cached(
    client: AsyncClient,
    texts: Sequence[str],
    cache: EmbeddingCache,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    batch_size: int = 32,
) -> list[tuple[float, ...]]:
    """Vectors for ``texts`` in order; only texts missing from ``cache`` are sent (deduplicated, in batches
    of ``batch_size``), and what comes back is cached."""
    if batch_size < 1:
        raise ConfigurationError("batch_size must be >= 1")
    key = _cache_model(client, endpoint, model)
    found: dict[str, tuple[float, ...]] = {}
    missing: list[str] = []
    for t in texts:
        if t in found or t in missing:
            continue
        vec = cache.get(key, t)
        if vec is None:
            missing.append(t)
        else:
            found[t] = vec
    for i in range(0, len(missing), batch_size):
        batch = missing[i : i + batch_size]
        resp = await client.embed(batch, endpoint=endpoint, model=model)
        if len(resp.vectors) != len(batch):
            raise ConfigurationError(f"embed returned {len(resp.vectors)} vectors for {len(batch)} inputs")
        for t, v in zip(batch, resp.vectors, strict=True):
            cache.put(key, t, v)
            found[t] = v
    return [found[t] for t in texts]


async def _vectors(
    client: AsyncClient, texts: Sequence[str], endpoint: str | None, model: str | None, cache: EmbeddingCache | None
) -> list[tuple[float, ...]]:
    if cache is not None:
        return await embed_cached(client, texts, cache, endpoint=endpoint, model=model)
    return list((await client.embed(list(texts), endpoint=endpoint, model=model)).vectors)


async def semantic_similarity(
    client: AsyncClient,
    a: str,
    b: str,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    cache: EmbeddingCache | None = None,
) -> float:
    """Cosine similarity of the two texts' embeddings (one embed call for both)."""
    va, vb = await _vectors(client, [a, b], endpoint, model, cache)
    return cosine(va, vb)


def _labels_in_order(labels: list[int]) -> list[int]:
    """Renumber clusters by first appearance, so equal partitions give equal label lists."""
    seen: dict[int, int] = {}
    return [seen.setdefault(x, len(seen)) for x in labels]


def kmeans(vectors: Sequence[Vector], k: int, *, seed: int = 0, max_iter: int = 100) -> list[int]:
    """Pure-Python k-means on cosine geometry (vectors are normalised). Deterministic: k-means++ seeding from
    ``random.Random(seed)``; labels numbered by first appearance."""
    n = len(vectors)
    if not 1 <= k <= n:
        raise ConfigurationError(f"kmeans: k must be between 1 and the number of vectors ({n}), got {k}")
    pts = [_unit(v) for v in vectors]
    rng = random.Random(seed)
    centers = [pts[rng.randrange(n)]]
    while len(centers) < k:
        d2 = [min(_dist2(p, c) for c in centers) for p in pts]
        total = sum(d2)
        if total == 0:
            centers.append(pts[len(centers) % n])
            continue
        r, acc = rng.random() * total, 0.0
        for i, w in enumerate(d2):
            acc += w
            if acc >= r:
                centers.append(pts[i])
                break
    labels = [0] * n
    for it in range(max_iter):
        new = [_nearest(p, centers) for p in pts]
        if new == labels and it > 0:
            break
        labels = new
        for c in range(k):
            members = [pts[i] for i in range(n) if labels[i] == c]
            if members:
                centers[c] = _unit([sum(col) / len(members) for col in zip(*members, strict=True)])
    return _labels_in_order(labels)


def agglomerative(vectors: Sequence[Vector], k: int) -> list[int]:
    """Average-linkage agglomerative clustering on cosine distance, merged down to ``k`` clusters
    (O(n^3): for hundreds of texts, not millions)."""
    n = len(vectors)
    if not 1 <= k <= n:
        raise ConfigurationError(f"agglomerative: k must be between 1 and the number of vectors ({n}), got {k}")
    sim = [[cosine(a, b) for b in vectors] for a in vectors]
    groups: list[list[int]] = [[i] for i in range(n)]
    while len(groups) > k:
        best, pair = -math.inf, (0, 1)
        for x in range(len(groups)):
            for y in range(x + 1, len(groups)):
                s = sum(sim[i][j] for i in groups[x] for j in groups[y]) / (len(groups[x]) * len(groups[y]))
                if s > best:
                    best, pair = s, (x, y)
        x, y = pair
        groups[x] += groups.pop(y)
    labels = [0] * n
    for g, members in enumerate(groups):
        for i in members:
            labels[i] = g
    return _labels_in_order(labels)


def _nearest(p: Sequence[float], centers: Sequence[Sequence[float]]) -> int:
    return min(range(len(centers)), key=lambda c: _dist2(p, centers[c]))


def _unit(v: Vector) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def _dist2(a: Sequence[float], b: Sequence[float]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


async def cluster(
    client: AsyncClient,
    texts: Sequence[str],
    k: int,
    *,
    method: Literal["kmeans", "agglomerative"] = "kmeans",
    seed: int = 0,
    endpoint: str | None = None,
    model: str | None = None,
    cache: EmbeddingCache | None = None,
) -> list[int]:
    """Cluster ``texts`` into ``k`` groups by their embeddings; one label per text (numbered by first
    appearance, so the first text is always in cluster 0)."""
    if method not in ("kmeans", "agglomerative"):
        raise ConfigurationError(f"cluster method must be 'kmeans' or 'agglomerative', got {method!r}")
    if not 1 <= k <= len(texts):
        raise ConfigurationError(f"cluster: k must be between 1 and len(texts) ({len(texts)}), got {k}")
    vecs = await _vectors(client, texts, endpoint, model, cache)
    return kmeans(vecs, k, seed=seed) if method == "kmeans" else agglomerative(vecs, k)


async def rerank(
    client: AsyncClient,
    query: str,
    texts: Sequence[str],
    *,
    endpoint: str | None = None,
    raw_scores: bool = False,
    return_text: bool = False,
) -> list[RerankResult]:
    """TEI ``POST /rerank`` through the endpoint's queue, breaker and retries (best first)."""
    from .providers import tei

    ep = client.router.candidates(endpoint=endpoint)[0]
    preq = tei.build_rerank(query, texts, raw_scores=raw_scores, return_text=return_text)
    return await ep.call(preq, tei.parse_rerank)
