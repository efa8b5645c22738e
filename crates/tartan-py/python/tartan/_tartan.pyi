"""Type stubs of tartan's extension module."""

from os import PathLike
from typing import Any, Iterator, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

_Path = Union[str, "PathLike[str]"]
_Matrix = npt.NDArray[Union[np.float16, np.float32]]
_Docs = Union[_Matrix, Sequence[_Matrix]]

__version__: str
text_support: bool

class TartanError(Exception): ...
class InvalidInputError(TartanError): ...
class CorruptIndexError(TartanError): ...
class LockedError(TartanError): ...
class NotFoundError(TartanError): ...

class Codebook:
    @staticmethod
    def open(path: _Path) -> "Codebook": ...
    def save(self, path: _Path, overwrite: bool = False) -> None: ...
    @property
    def id(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def nbits(self) -> int: ...
    @property
    def n_centroids(self) -> int: ...
    @property
    def path(self) -> Optional[str]: ...

class Hits:
    ids: list[str]
    shards: list[int]
    texts: list[Optional[str]]
    @property
    def scores(self) -> npt.NDArray[np.float32]: ...
    @property
    def coverage(self) -> dict[str, Any]: ...
    @property
    def rerank_scores(self) -> Optional[npt.NDArray[np.float32]]: ...
    @property
    def first_ranks(self) -> Optional[list[int]]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...

class Index:
    @staticmethod
    def open(path: _Path) -> "Index": ...
    def search(
        self,
        query: _Matrix,
        k: int = 10,
        *,
        ncells: Optional[int] = None,
        ndocs: Optional[int] = None,
        threshold: Optional[float] = None,
        filter: Optional[str] = None,
        with_text: bool = False,
        threads: Optional[int] = None,
    ) -> Hits: ...
    @overload
    def search_batch(
        self,
        queries: _Docs,
        lengths: Optional[npt.ArrayLike] = None,
        k: int = 10,
        *,
        ncells: Optional[int] = None,
        ndocs: Optional[int] = None,
        threshold: Optional[float] = None,
        filter: Optional[str] = None,
        with_text: bool = False,
        threads: Optional[int] = None,
        arrays: Literal[False] = False,
    ) -> list[Hits]: ...
    @overload
    def search_batch(
        self,
        queries: _Docs,
        lengths: Optional[npt.ArrayLike] = None,
        k: int = 10,
        *,
        ncells: Optional[int] = None,
        ndocs: Optional[int] = None,
        threshold: Optional[float] = None,
        filter: Optional[str] = None,
        with_text: bool = False,
        threads: Optional[int] = None,
        arrays: Literal[True],
    ) -> Tuple[list[list[str]], npt.NDArray[np.float32]]: ...
    def explain(
        self,
        query: Union[_Matrix, str],
        id: str,
        *,
        original: Optional[_Matrix] = None,
        encoder: Optional["Encoder"] = None,
    ) -> dict[str, Any]: ...
    def reload(self) -> None: ...
    def verify(self) -> None: ...
    def ids(self) -> list[str]: ...
    def stats(self) -> list[dict[str, Any]]: ...
    @property
    def n_docs(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def generation(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def codebook(self) -> Optional[Codebook]: ...

class Collection(Index):
    @staticmethod
    def open(path: _Path, deadline_ms: int = 10000, require_all: bool = False) -> "Collection": ...  # type: ignore[override]
    def add_shard(self, shard: str) -> None: ...
    def remove_shard(self, name: str) -> None: ...
    @property
    def shards(self) -> list[dict[str, Any]]: ...

class Writer:
    def __init__(self, path: _Path) -> None: ...
    def add(
        self,
        docs: Union[_Docs, _Path],
        lengths: Optional[npt.ArrayLike] = None,
        ids: Optional[Sequence[str]] = None,
        *,
        texts: Optional[Sequence[str]] = None,
        metadata: Optional[Union[Sequence[Optional[dict[str, Any]]], _Path]] = None,
        upsert: bool = False,
        normalize: bool = False,
        threads: Optional[int] = None,
    ) -> int: ...
    def delete(self, ids: Sequence[str], ignore_missing: bool = False) -> int: ...
    def commit(self) -> dict[str, int]: ...
    def compact(self) -> dict[str, int]: ...
    def close(self) -> None: ...
    @property
    def n_docs(self) -> int: ...
    def __contains__(self, id: str) -> bool: ...
    def __enter__(self) -> "Writer": ...
    def __exit__(self, kind: Any, value: Any, traceback: Any) -> bool: ...

class Encoder:
    def __init__(
        self,
        model: str,
        *,
        doc_maxlen: Optional[int] = None,
        query_maxlen: Optional[int] = None,
        batch_size: Optional[int] = None,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    def encode_queries(self, texts: Sequence[str]) -> list[npt.NDArray[np.float32]]: ...
    def encode_docs(self, texts: Sequence[str]) -> list[npt.NDArray[np.float32]]: ...

class CrossEncoder:
    def __init__(
        self,
        model: str,
        *,
        max_length: Optional[int] = None,
        batch_size: Optional[int] = None,
        depth: int = 50,
        corpus: Optional[_Path] = None,
    ) -> None: ...
    @property
    def max_length(self) -> int: ...
    @property
    def depth(self) -> int: ...
    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]: ...
    def rerank(self, query: str, hits: Hits, depth: Optional[int] = None) -> Hits: ...

def build(
    path: _Path,
    docs: Union[_Docs, _Path],
    lengths: Optional[npt.ArrayLike] = None,
    ids: Optional[Sequence[str]] = None,
    *,
    nbits: int = 2,
    n_centroids: Optional[int] = None,
    kmeans_iters: int = 4,
    sample_docs: Optional[int] = None,
    seed: int = 0,
    memory: Optional[Union[int, str]] = None,
    codebook: Optional[Union[Codebook, _Path]] = None,
    texts: Optional[Sequence[str]] = None,
    metadata: Optional[Union[Sequence[Optional[dict[str, Any]]], _Path]] = None,
    normalize: bool = False,
    normalize_decoded: Optional[bool] = None,
    buckets: Literal["lloyd-max", "quantiles"] = "lloyd-max",
    part: Optional[Tuple[int, int]] = None,
    overwrite: bool = False,
    threads: Optional[int] = None,
) -> Index: ...
def train_codebook(
    docs: Union[_Docs, _Path],
    lengths: Optional[npt.ArrayLike] = None,
    ids: Optional[Sequence[str]] = None,
    *,
    path: Optional[_Path] = None,
    nbits: int = 2,
    n_centroids: Optional[int] = None,
    kmeans_iters: int = 4,
    sample_docs: Optional[int] = None,
    seed: int = 0,
    memory: Optional[Union[int, str]] = None,
    normalize: bool = False,
    normalize_decoded: Optional[bool] = None,
    buckets: Literal["lloyd-max", "quantiles"] = "lloyd-max",
    part: Optional[Tuple[int, int]] = None,
    overwrite: bool = False,
    threads: Optional[int] = None,
) -> Codebook: ...
def open(path: _Path) -> Union[Index, Collection]: ...
def sweep(
    embeddings: _Path,
    out: _Path,
    *,
    nbits: Optional[Sequence[int]] = None,
    centroids: Optional[Sequence[int]] = None,
    ncells: Optional[Sequence[int]] = None,
    ndocs: Optional[Sequence[int]] = None,
    k: Optional[int] = None,
    max_queries: Optional[int] = None,
    seed: Optional[int] = None,
    normalize: bool = False,
    keep_indexes: bool = False,
    write: bool = True,
    threads: Optional[int] = None,
) -> dict[str, Any]: ...
def create_collection(
    path: _Path, shards: Sequence[str], codebook: Optional[Union[Codebook, _Path]] = None
) -> Collection: ...
