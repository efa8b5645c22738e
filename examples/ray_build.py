"""Build a sharded tartan collection with Ray Data.

The recipe a user with a large corpus runs (docs/distributed.md walks through it):

1. train one codebook on a sample of the corpus, on the driver (or any one worker);
2. build shards in parallel, each task encoding its documents against the shared codebook:
   * documents already in Ray Data (rows `id`, `tokens`; from your encoder, Parquet, ...):
     `build_collection` splits the dataset into blocks and builds each block into one shard
     (`map_batches` with `batch_size=None`: a batch is a whole block);
   * documents in an embeddings directory on shared storage (`doc_embs.npy`, ...):
     `build_collection_from_dir` runs one task per part, each reading only its part
     (`tartan.build(..., part=(i, n))`, the same split as `tartan index --part i/n`), so no
     vectors travel through Ray's object store;
3. collect the shards' metadata on the driver and write the collection atomically;
4. search it, in process (`tartan.Collection.open`) or through `tartan serve` per shard.

Everything a task needs travels as paths (the codebook, the output directory): tartan objects
hold memory maps and locks and pickle as their paths. Each task passes `threads=` so that it
stays within the CPUs Ray gave it.

Run it on synthetic data: `python examples/ray_build.py OUT_DIR --docs 2000 --shards 4`, or on
an embeddings directory: `python examples/ray_build.py OUT_DIR --emb data/scifact-minilm`.
Encoding text with your own model inside the pipeline is shown in `Embed` below.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

import numpy as np

import tartan


def build_shard(batch: dict[str, np.ndarray], codebook: str, out_dir: str,
                threads: int = 1) -> dict[str, np.ndarray]:
    """A Ray Data task: builds the block it gets (rows `id`, `tokens`) into one shard.

    A function, not a callable class: a task gives its CPUs back when it ends, so the
    repartition before it is never starved on a small cluster (an actor pool holding every
    CPU would be). `codebook` and `out_dir` are paths.
    """
    start = time.perf_counter()
    ids = [str(i) for i in batch["id"]]
    tokens = [np.asarray(t, dtype=np.float32) for t in batch["tokens"]]
    # A shard's name comes from its first id: unique, stable across retries of the task.
    path = os.path.join(out_dir, f"shard-{ids[0]}")
    index = tartan.build(path, tokens, ids=ids, codebook=codebook, overwrite=True,
                         threads=threads)
    return shard_row(path, index, start)


def build_part(batch: dict[str, np.ndarray], emb_dir: str, n_parts: int, codebook: str,
               out_dir: str, metadata: str | None = None,
               threads: int = 1) -> dict[str, np.ndarray]:
    """A Ray Data task: builds part `i` of `n_parts` of an embeddings directory, for each part
    number in the batch. It reads only its part of the (memory-mapped) vectors."""
    rows = []
    for part in batch["part"]:
        start = time.perf_counter()
        path = os.path.join(out_dir, f"part-{int(part):05d}-of-{n_parts:05d}")
        index = tartan.build(path, emb_dir, part=(int(part), n_parts), codebook=codebook,
                             metadata=metadata, overwrite=True, threads=threads)
        rows.append(shard_row(path, index, start))
    return {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}


def shard_row(path: str, index: tartan.Index, start: float) -> dict[str, np.ndarray]:
    """What the driver collects per shard: where, how big, which codebook, and the cost."""
    # ru_maxrss is in KiB on Linux: the peak of this worker process so far (its largest task).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "path": np.array([path]),
        "n_docs": np.array([index.n_docs]),
        "codebook_id": np.array([index.codebook.id]),
        "seconds": np.array([time.perf_counter() - start]),
        "worker_peak_rss_mib": np.array([peak]),
        "pid": np.array([os.getpid()]),
    }


class Embed:
    """Encoding inside the same pipeline: a callable class, one model per actor (loaded once).

    `ds.map_batches(Embed, fn_constructor_kwargs={"model": "path/to/colbert"}, concurrency=N)`
    turns rows with `text` into rows with `tokens`; `build_collection` after it builds them.
    Leave CPUs for the tasks after it: N actors hold N CPUs for as long as the dataset runs.
    """

    def __init__(self, model: str):
        self.encoder = tartan.Encoder(model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        batch["tokens"] = self.encoder.encode_docs([str(t) for t in batch["text"]])
        return batch


def _parallel(n_tasks: int, threads_per_task: int) -> dict[str, Any]:
    """`map_batches` arguments running as many building tasks at once as the cluster's CPUs
    hold (each task takes `threads_per_task` CPUs)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    size = max(1, min(n_tasks, cpus // threads_per_task))
    try:  # Ray >= 2.51 sizes task pools with `compute`; older releases with `concurrency`.
        return {"compute": ray.data.TaskPoolStrategy(size=size), "num_cpus": threads_per_task}
    except (AttributeError, TypeError):
        return {"concurrency": size, "num_cpus": threads_per_task}


def _collect(rows: list[dict[str, Any]], codebook: str, collection: str) -> tartan.Collection:
    """Checks the shards agree on the codebook and writes the collection, on the driver."""
    ids = {row["codebook_id"] for row in rows}
    if len(ids) != 1:
        raise RuntimeError(f"shards built with different codebooks: {ids}")
    paths = sorted(row["path"] for row in rows)
    # Written once, atomically, by the driver: readers see no collection or the whole one.
    return tartan.create_collection(collection, paths, codebook=codebook)


def build_collection(ds, n_shards: int, codebook: str, out_dir: str, collection: str,
                     threads_per_task: int = 1) -> tuple[tartan.Collection, list[dict]]:
    """Builds `ds` (rows `id`, `tokens`) into shards with `codebook`, in parallel, and writes
    the collection at `collection`. One shard per block after `repartition(n_shards)`: Ray
    Data may split a block larger than its target block size, which only makes more shards."""
    os.makedirs(out_dir, exist_ok=True)
    rows = (
        ds.repartition(n_shards)
        .map_batches(
            build_shard,
            batch_size=None,  # one whole block per call: one shard per block
            fn_kwargs={"codebook": codebook, "out_dir": out_dir, "threads": threads_per_task},
            **_parallel(n_shards, threads_per_task),
        )
        .take_all()
    )
    return _collect(rows, codebook, collection), rows


def build_collection_from_dir(emb_dir: str, n_shards: int, codebook: str, out_dir: str,
                              collection: str, metadata: str | None = None,
                              threads_per_task: int = 1) -> tuple[tartan.Collection, list[dict]]:
    """Builds the embeddings directory `emb_dir` into `n_shards` shards with `codebook`, one
    Ray task per part, and writes the collection at `collection`."""
    import ray

    os.makedirs(out_dir, exist_ok=True)
    rows = (
        ray.data.from_items([{"part": i} for i in range(n_shards)])
        .repartition(n_shards)
        .map_batches(
            build_part,
            batch_size=1,
            fn_kwargs={"emb_dir": emb_dir, "n_parts": n_shards, "codebook": codebook,
                       "out_dir": out_dir, "metadata": metadata, "threads": threads_per_task},
            **_parallel(n_shards, threads_per_task),
        )
        .take_all()
    )
    return _collect(rows, codebook, collection), rows


def synthetic(n_docs: int, dim: int, seed: int) -> tuple[list[str], list[np.ndarray]]:
    """Clustered unit vectors: documents drawn around a few topics."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((32, dim)).astype(np.float32)
    ids, docs = [], []
    for d in range(n_docs):
        t = topics[rng.integers(0, len(topics))]
        x = t + 0.6 * rng.standard_normal((int(rng.integers(8, 40)), dim)).astype(np.float32)
        docs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        ids.append(f"d{d}")
    return ids, docs


def main() -> None:
    import ray

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--emb", help="an embeddings directory (default: synthetic documents)")
    ap.add_argument("--codebook", help="a codebook to build with (default: train one)")
    ap.add_argument("--docs", type=int, default=2000, help="synthetic documents")
    ap.add_argument("--dim", type=int, default=64, help="synthetic dimension")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--threads-per-task", type=int, default=1)
    args = ap.parse_args()

    ray.init(num_cpus=args.cpus, include_dashboard=False)
    os.makedirs(args.out, exist_ok=True)
    shards, coll_path = os.path.join(args.out, "shards"), os.path.join(args.out, "collection")
    codebook = args.codebook or os.path.join(args.out, "codebook")
    start = time.perf_counter()
    if args.emb:
        # 1. One codebook, trained on a sample of the directory (skipped when given).
        if not args.codebook:
            tartan.train_codebook(args.emb, path=codebook, overwrite=True)
        # 2-3. One task per part, then the collection.
        coll, rows = build_collection_from_dir(args.emb, args.shards, codebook, shards, coll_path,
                                               threads_per_task=args.threads_per_task)
        query = None
    else:
        ids, docs = synthetic(args.docs, args.dim, seed=1)
        if not args.codebook:
            sample = np.random.default_rng(2).choice(len(docs), size=min(len(docs), 500),
                                                     replace=False)
            tartan.train_codebook([docs[i] for i in sample], path=codebook, overwrite=True)
        ds = ray.data.from_items([{"id": i, "tokens": t} for i, t in zip(ids, docs)])
        coll, rows = build_collection(ds, args.shards, codebook, shards, coll_path,
                                      threads_per_task=args.threads_per_task)
        query = docs[0]
    wall = time.perf_counter() - start

    for row in sorted(rows, key=lambda r: r["path"]):
        print(f"{row['path']}: {row['n_docs']} documents in {row['seconds']:.1f} s; "
              f"worker {row['pid']} peak RSS {row['worker_peak_rss_mib']:.0f} MiB")
    print(f"{coll}: {len(coll.shards)} shards in {wall:.1f} s (codebook included)")
    # 4. Search it.
    if query is not None:
        print(f"top hits for d0: {list(coll.search(query, k=5).ids)}")
    ray.shutdown()


if __name__ == "__main__":
    main()
