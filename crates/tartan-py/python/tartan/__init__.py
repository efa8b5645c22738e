"""tartan: PLAID-style compressed late-interaction (ColBERT) retrieval, from numpy.

Build an index from token vectors, search it, change it, shard it::

    import numpy as np, tartan
    index = tartan.build("idx", docs, lengths, ids)          # docs: [tokens, dim] float16/32
    ids, scores = index.search(query, k=10)                   # query: [tokens, dim]
    with tartan.Writer("idx") as w:                           # add / upsert / delete, then commit
        w.add(more_docs, more_lengths, more_ids)
    cb = tartan.train_codebook(sample, sample_lengths, path="cb")
    tartan.build("shard0", part0, lens0, ids0, codebook=cb)   # shards share the codebook
    coll = tartan.create_collection("coll", ["shard0", "shard1"])

Every long call releases the GIL and takes ``threads=`` to bound its cores. Objects pickle as
their path (Ray ships paths, not maps). Errors derive from ``TartanError``.
"""

from ._tartan import (  # noqa: F401
    Codebook,
    Collection,
    CorruptIndexError,
    Hits,
    Index,
    InvalidInputError,
    LockedError,
    NotFoundError,
    TartanError,
    Writer,
    __version__,
    build,
    create_collection,
    open,
    sweep,
    text_support,
    train_codebook,
)

if text_support:
    from ._tartan import CrossEncoder, Encoder  # noqa: F401

__all__ = [
    "Codebook",
    "Collection",
    "CorruptIndexError",
    "Hits",
    "Index",
    "InvalidInputError",
    "LockedError",
    "NotFoundError",
    "TartanError",
    "Writer",
    "build",
    "create_collection",
    "open",
    "sweep",
    "text_support",
    "train_codebook",
] + (["CrossEncoder", "Encoder"] if text_support else [])
