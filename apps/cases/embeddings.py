"""Case embeddings through LangChain's `Embeddings` interface, chosen by ORCHCAP_EMBEDDINGS.

The default, `hashing`, needs no model download: signed feature hashing of word unigrams and
bigrams plus `field=value` tokens for categorical and short text fields, L2-normalised, so cases
that share a vendor and an exception reason point the same way (cosine). Any LangChain
`Embeddings` class can replace it: ORCHCAP_EMBEDDINGS=package.module:ClassName (an extra, e.g. a
sentence-transformer), as long as it returns EMBEDDING_DIMENSIONS-long vectors.
"""

import hashlib
import importlib
import itertools
import math
import re
from functools import cache

from django.conf import settings
from langchain_core.embeddings import Embeddings

from apps.cases.models import EMBEDDING_DIMENSIONS

_WORD = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


class HashingEmbeddings(Embeddings):
    """Deterministic local embeddings (no network, no model files)."""

    def __init__(self, dimensions: int = EMBEDDING_DIMENSIONS) -> None:
        self.dimensions = dimensions

    def _tokens(self, text: str) -> list[tuple[str, float]]:
        tokens: list[tuple[str, float]] = []
        for line in text.lower().splitlines():
            key, sep, value = line.partition(": ")
            words = _WORD.findall(value if sep else line)
            if sep and 0 < len(value) <= 60:
                # The whole value of a short field ("vendor=acme gmbh") is the strongest signal.
                tokens.append((f"{key}={value.strip()}", 3.0))
            tokens.extend((word, 1.0) for word in words)
            tokens.extend((f"{a} {b}", 1.5) for a, b in itertools.pairwise(words))
        return tokens

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for token, weight in self._tokens(text):
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[index] += sign * weight
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0:
            vector[0] = 1.0  # an empty case still needs a valid (non-zero) vector for cosine
            return vector
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@cache
def get_embeddings() -> Embeddings:
    """The configured Embeddings implementation (one per process)."""
    choice = settings.ORCHCAP_EMBEDDINGS
    if choice == "hashing":
        return HashingEmbeddings()
    module_name, _, class_name = choice.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()
