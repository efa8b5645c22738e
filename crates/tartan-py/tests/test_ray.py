"""The Ray recipe (examples/ray_build.py) on a local two-CPU Ray cluster: shards built by Ray
tasks are the shards the CLI builds from the same documents and codebook, byte for byte, and
their collection answers as one index does."""

import importlib.util
import os
import subprocess

import numpy as np
import pytest

import tartan
from conftest import ROOT, clustered, write_embeddings

try:
    import ray
except ImportError:  # pragma: no cover - depends on the environment
    ray = None


@pytest.fixture(scope="module")
def recipe():
    if ray is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install ray[data] (.ci/run)")
        pytest.skip("ray is not installed (pip install 'ray[data]')")
    spec = importlib.util.spec_from_file_location("ray_build", ROOT / "examples/ray_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield module
    ray.shutdown()


def same_files(a, b):
    for name in ["meta.json", "segment.000001.tseg", "codebook.000001.tcb"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{a} vs {b}: {name}"


def test_ray_shards_are_the_cli_shards(tmp_path, recipe, tartan_bin):
    ids, docs, flat, lens = clustered(600, dim=32, seed=21)
    emb = write_embeddings(tmp_path / "emb", ids, flat, lens)
    cb = tartan.train_codebook(str(emb), path=tmp_path / "cb", n_centroids=64, sample_docs=300)
    cb_path = str(tmp_path / "cb")

    def cli_index(src, dst, *extra):
        subprocess.run([tartan_bin, "index", str(src), str(dst), "--codebook", cb_path, *extra],
                       check=True, capture_output=True)

    # Documents flowing through Ray Data as rows: one shard per block.
    ds = ray.data.from_items([{"id": i, "tokens": d} for i, d in zip(ids, docs)])
    by_rows, rows = recipe.build_collection(ds, 3, cb_path, str(tmp_path / "rows"),
                                            str(tmp_path / "coll-rows"))
    assert len(rows) == len(by_rows.shards) >= 3 and by_rows.n_docs == 600
    seen = []
    position = {d: n for n, d in enumerate(ids)}
    for n, row in enumerate(rows):
        shard = tartan.Index.open(row["path"])
        shard_ids = shard.ids()
        seen += shard_ids
        pos = [position[d] for d in shard_ids]
        # The CLI, given the same documents and codebook, builds the same bytes.
        part = write_embeddings(tmp_path / f"rows-emb{n}", shard_ids,
                                np.concatenate([docs[p] for p in pos]), lens[pos])
        cli_index(part, tmp_path / f"rows-cli{n}")
        same_files(tmp_path / "rows" / os.path.basename(row["path"]), tmp_path / f"rows-cli{n}")
    assert sorted(seen) == sorted(ids)

    # Parts of an embeddings directory, one task each: `tartan index --part i/3` builds them too.
    by_parts, rows = recipe.build_collection_from_dir(str(emb), 3, cb_path, str(tmp_path / "parts"),
                                                      str(tmp_path / "coll-parts"))
    assert sorted(r["path"] for r in rows) == [str(tmp_path / "parts" / f"part-{i:05d}-of-00003")
                                               for i in range(3)]
    assert all(r["codebook_id"] == cb.id and r["worker_peak_rss_mib"] > 0 for r in rows)
    for i in range(3):
        cli_index(emb, tmp_path / f"part-cli{i}", "--part", f"{i}/3")
        same_files(tmp_path / "parts" / f"part-{i:05d}-of-00003", tmp_path / f"part-cli{i}")

    # Both collections answer as one index of every document does.
    single = tartan.build(tmp_path / "single", str(emb), codebook=cb)
    for q in [docs[i][:5] for i in range(0, 600, 40)]:
        want = single.search(q, k=10)
        for coll in (by_rows, by_parts):
            got = coll.search(q, k=10)
            assert got.ids == want.ids and np.array_equal(got.scores, want.scores)


@pytest.mark.skipif(not tartan.text_support, reason="the wheel was built without text")
def test_encoding_inside_the_pipeline(tmp_path, recipe):
    model = ROOT.parent / "shared/models/all-MiniLM-L6-v2"
    if not model.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/models/all-MiniLM-L6-v2")
        pytest.skip("../shared/models/all-MiniLM-L6-v2 is absent")
    texts = [f"Document {i} is about {topic}." for i, topic in
             enumerate(["cats", "rust", "vitamin D", "rivers", "chess", "tea"] * 4)]
    ids = [f"t{i}" for i in range(len(texts))]
    # Text rows -> an encoding actor (the model loaded once) -> shard-building tasks.
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in zip(ids, texts)])
    encoded = ds.map_batches(recipe.Embed, fn_constructor_kwargs={"model": str(model)},
                             batch_size=8, compute=ray.data.ActorPoolStrategy(size=1))
    enc = tartan.Encoder(str(model))
    docs = enc.encode_docs(texts)
    tartan.train_codebook(docs, ids=ids, path=tmp_path / "cb", n_centroids=16)
    coll, rows = recipe.build_collection(encoded, 2, str(tmp_path / "cb"), str(tmp_path / "shards"),
                                         str(tmp_path / "coll"))
    assert coll.n_docs == len(texts) and sum(r["n_docs"] for r in rows) == len(texts)
    # The vectors encoded inside Ray are the ones encoded here: the same document comes first.
    [q] = enc.encode_queries(["which document is about chess"])
    single = tartan.build(tmp_path / "single", docs, ids=ids, codebook=str(tmp_path / "cb"))
    got, want = coll.search(q, k=5), single.search(q, k=5)
    assert got.ids == want.ids and np.allclose(got.scores, want.scores, atol=1e-5)
    assert "chess" in texts[int(got.ids[0][1:])]
