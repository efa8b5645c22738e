"""Shared fixtures of the Python tests: seeded clustered unit vectors, the CLI binary."""

import os
import pathlib
import shutil

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def unit(rng, n, dim):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n_docs, dim=32, seed=0):
    """Documents around 16 topics: ids, per-document arrays, and their concatenation + lengths."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((16, dim)).astype(np.float32)
    docs = []
    for _ in range(n_docs):
        t = topics[rng.integers(0, 16)]
        x = t + 0.7 * rng.standard_normal((int(rng.integers(4, 24)), dim)).astype(np.float32)
        docs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    ids = [f"d{i}" for i in range(n_docs)]
    lens = np.array([len(d) for d in docs], dtype=np.int64)
    return ids, docs, np.concatenate(docs), lens


@pytest.fixture(scope="session")
def corpus():
    return clustered(400, seed=3)


@pytest.fixture(scope="session")
def tartan_bin():
    """The `tartan` binary `cargo test` built (CI builds it before the Python tests)."""
    for cand in [os.environ.get("TARTAN_BIN"), ROOT / "target/debug/tartan", ROOT / "target/release/tartan"]:
        if cand and pathlib.Path(cand).exists():
            return str(cand)
    if os.environ.get("CI"):
        pytest.fail("CI must have built target/debug/tartan")
    pytest.skip("no tartan binary (cargo build -p tartan-cli)")


def write_embeddings(path, ids, flat, lens, queries=None):
    """An embeddings directory as numpy writes it (docs/README)."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "doc_embs.npy", flat.astype(np.float32))
    np.save(path / "doc_lens.npy", lens.astype(np.int64))
    (path / "doc_ids.txt").write_text("".join(i + "\n" for i in ids))
    if queries is not None:
        qids, qflat, qlens = queries
        np.save(path / "query_embs.npy", qflat.astype(np.float32))
        np.save(path / "query_lens.npy", qlens.astype(np.int64))
        (path / "query_ids.txt").write_text("".join(i + "\n" for i in qids))
    return path


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst
