"""Multi-call orchestration over OPEA microservices, above the pure provider module: ChatQnA's flow client-side
(embed -> retrieve -> rerank -> LLM), each step through its own endpoint's engine."""

from __future__ import annotations

from .endpoint import Endpoint
from .providers.opea import (
    build_embedding,
    build_rerank,
    build_retrieval,
    parse_embedding,
    parse_rerank,
    parse_retrieval,
)
from .types import ChatRequest, ChatResponse, Message

__all__ = ["rag_pipeline"]


async def rag_pipeline(
    question: str,
    *,
    embed_ep: Endpoint,
    retrieve_ep: Endpoint,
    rerank_ep: Endpoint,
    llm_ep: Endpoint,
    k: int = 4,
    top_n: int = 1,
) -> ChatResponse:
    """ChatQnA's flow client-side: embed -> retrieve -> rerank -> LLM, each through its endpoint's engine."""
    emb = await embed_ep.call(build_embedding(question), parse_embedding)
    found = await retrieve_ep.call(build_retrieval(question, emb.vectors[0], k=k), parse_retrieval)
    docs = found.docs
    if docs:
        docs = (await rerank_ep.call(build_rerank(question, docs, top_n=top_n), parse_rerank)).docs
    context = "\n".join(d.text for d in docs)
    system = f"Answer the question using this context:\n{context}" if context else "Answer the question."
    return await llm_ep.chat(ChatRequest(messages=(Message("system", system), Message("user", question))))
