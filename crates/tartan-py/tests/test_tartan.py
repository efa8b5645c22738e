"""The tartan Python module: round trips, errors, agreement with the Rust CLI, the GIL."""

import json
import os
import pathlib
import pickle
import subprocess
import threading
import time

import numpy as np
import pytest

import tartan
from conftest import clustered, unit, write_embeddings


def test_both_document_forms_and_dtypes_build_the_same_index(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    a = tartan.build(tmp_path / "a", flat, lens, ids, n_centroids=64, seed=1)
    b = tartan.build(tmp_path / "b", docs, ids=ids, n_centroids=64, seed=1)
    assert a.n_docs == b.n_docs == 400 and a.dim == 32
    # The same input gives the same files (builds are reproducible).
    # So does a memory budget small enough to chunk encoding and the inverted file.
    c = tartan.build(tmp_path / "c", docs, ids=ids, n_centroids=64, seed=1, memory="1MiB")
    for name in ["meta.json", "codebook.000001.tcb", "segment.000001.tseg"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "c" / name).read_bytes(), name
    assert c.n_docs == 400
    q = docs[7]
    ha, hb = a.search(q, k=5), b.search(q.astype(np.float16).astype(np.float32), k=5)
    assert ha.ids[0] == "d7" and hb.ids[0] == "d7"
    ids_, scores = ha
    assert ids_ == ha.ids and scores.dtype == np.float32 and len(ha) == 5
    assert np.all(np.diff(scores) <= 0)
    # float16 queries are accepted and widened.
    h16 = a.search(q.astype(np.float16), k=5)
    assert h16.ids[0] == "d7"
    assert ha.coverage == {"shards": 1, "shards_answered": 1, "docs": 400, "docs_answered": 400, "failed": []}


def test_batches_threads_filters_texts(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    meta = [{"parity": i % 2, "tag": ["x", "y"][i % 3 == 0]} for i in range(400)]
    texts = [f"text of {i}" for i in ids]
    index = tartan.build(tmp_path / "i", flat, lens, ids, n_centroids=64, metadata=meta, texts=texts)
    qs = [docs[i] for i in (1, 2, 3)]
    batch = index.search_batch(qs, k=4, threads=1)
    one = [index.search(q, k=4) for q in qs]
    assert [h.ids for h in batch] == [h.ids for h in one]
    assert all(np.array_equal(h.scores, g.scores) for h, g in zip(batch, one))
    # One packed array with lengths is the same batch, and arrays=True pads scores with -inf.
    packed = index.search_batch(np.concatenate(qs), [len(q) for q in qs], k=4)
    assert [h.ids for h in packed] == [h.ids for h in one]
    ids_, scores = index.search_batch(qs, k=500, arrays=True)
    assert scores.shape == (3, 500) and scores.dtype == np.float32
    # Probing finds fewer than 500 candidates: each row is padded after its last hit.
    for row, r in zip(scores, ids_):
        assert 0 < len(r) < 500 and np.all(np.isfinite(row[:len(r)])) and np.all(np.isneginf(row[len(r):]))
    assert ids_[1][:4] == one[1].ids and np.array_equal(scores[1, :4], one[1].scores)
    # A filter that leaves fewer than k documents: all 200 of them, then padding.
    odd_ids, odd_scores = index.search_batch(qs, k=300, filter="parity = 1", arrays=True)
    assert [len(r) for r in odd_ids] == [200] * 3 and np.all(np.isneginf(odd_scores[:, 200:]))
    assert all(int(i[1:]) % 2 == 1 for r in odd_ids for i in r)
    with pytest.raises(tartan.InvalidInputError, match="sum to 20, but queries has"):
        index.search_batch(np.concatenate(qs), [10, 10, 0], k=4)
    with pytest.raises(tartan.InvalidInputError, match="give lengths"):
        index.search_batch(np.concatenate(qs), k=4)
    odd = index.search(docs[3], k=5, filter="parity = 1", with_text=True)
    assert odd.ids[0] == "d3" and all(int(i[1:]) % 2 == 1 for i in odd.ids)
    assert odd.texts[0] == "text of d3"
    with pytest.raises(tartan.InvalidInputError, match="filter"):
        index.search(docs[3], filter="parity = ")


def test_writer_add_upsert_delete_compact(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    path = tmp_path / "i"
    index = tartan.build(path, docs[:300], ids=ids[:300], n_centroids=64)
    with tartan.Writer(path) as w:
        assert w.add(docs[300:], ids=ids[300:]) == 0
        assert w.delete(["d0", "d1"]) == 2
        assert "d350" in w and "d0" not in w
    index.reload()
    assert index.n_docs == 398 and index.generation == 2
    w = tartan.Writer(path)
    assert w.add([docs[5]], ids=["d5"], upsert=True) == 1
    assert w.delete(["nope", "d9"], ignore_missing=True) == 1
    done = w.commit()
    assert done["generation"] == 3 and done["n_docs"] == 397
    assert w.compact()["n_docs"] == 397
    w.close()
    with pytest.raises(tartan.InvalidInputError, match="closed"):
        w.commit()
    index.reload()
    assert index.search(docs[5], k=1).ids == ["d5"]
    index.verify()


def test_bad_input_raises_the_right_exception(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    index = tartan.build(tmp_path / "i", flat, lens, ids, n_centroids=64)
    rng = np.random.default_rng(9)
    bad = [
        (lambda: index.search(unit(rng, 3, 16)), tartan.InvalidInputError, "dimension"),
        (lambda: index.search(np.zeros((0, 32), np.float32)), tartan.InvalidInputError, "no tokens"),
        (lambda: index.search(np.full((2, 32), np.nan, np.float32)), tartan.InvalidInputError, "non-finite"),
        (lambda: index.search(docs[0], k=0), tartan.InvalidInputError, "k"),
        (lambda: index.search(np.zeros((2, 32), np.int32)), tartan.InvalidInputError, "float16 or float32"),
        (lambda: index.search(docs[0].ravel()), tartan.InvalidInputError, "2-D"),
        (lambda: tartan.build(tmp_path / "x", flat, None, ids), tartan.InvalidInputError, "lengths"),
        (lambda: tartan.build(tmp_path / "x", flat, lens[:-1], ids[:-1]), tartan.InvalidInputError, "sum"),
        (lambda: tartan.build(tmp_path / "x", [docs[0], docs[1]], ids=["a", "a"]), tartan.InvalidInputError, "a"),
        (lambda: tartan.build(tmp_path / "x", [docs[0] * 3], ids=["a"]), tartan.InvalidInputError, "unit length"),
        (lambda: tartan.build(tmp_path / "x", [], ids=[]), tartan.InvalidInputError, "no documents"),
        (lambda: tartan.build(tmp_path / "x", [docs[0]], ids=["a"], nbits=3), tartan.InvalidInputError, "nbits"),
        (lambda: tartan.build(tmp_path / "i", [docs[0]], ids=["a"]), tartan.TartanError, "exists"),
        (lambda: tartan.Index.open(tmp_path / "nope"), tartan.NotFoundError, "nope"),
        (lambda: index.search(docs[0], threads=0), tartan.InvalidInputError, "threads"),
        (lambda: tartan.build(tmp_path / "x", flat, lens, ids, memory="2 parsecs"), tartan.InvalidInputError, "parsecs"),
        (lambda: tartan.build(tmp_path / "x", flat, lens, ids, memory=1000), tartan.InvalidInputError, "memory"),
    ]
    for call, kind, text in bad:
        with pytest.raises(kind, match=text):
            call()
    # Every kind is a TartanError.
    for kind in [tartan.InvalidInputError, tartan.CorruptIndexError, tartan.LockedError, tartan.NotFoundError]:
        assert issubclass(kind, tartan.TartanError)
    # Normalising on request instead of refusing.
    tartan.build(tmp_path / "n", [docs[0] * 3], ids=["a"], normalize=True)
    # A writer holds the lock.
    w = tartan.Writer(tmp_path / "i")
    with pytest.raises(tartan.LockedError, match="locked"):
        tartan.Writer(tmp_path / "i")
    w.close()
    # A damaged segment: verify names the file.
    seg = tmp_path / "i" / "segment.000001.tseg"
    data = bytearray(seg.read_bytes())
    data[-5] ^= 0x55
    seg.write_bytes(bytes(data))
    with pytest.raises(tartan.CorruptIndexError, match="segment.000001.tseg"):
        tartan.Index.open(tmp_path / "i").verify()


def test_objects_pickle_as_their_paths(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    cb = tartan.train_codebook(flat, lens, ids, path=tmp_path / "cb", n_centroids=64)
    index = tartan.build(tmp_path / "i", flat, lens, ids, codebook=cb)
    assert index.codebook.id == cb.id and cb.n_centroids == 64 and cb.nbits == 2
    back = pickle.loads(pickle.dumps(index))
    assert back.path == index.path and back.search(docs[4], k=3).ids == index.search(docs[4], k=3).ids
    assert pickle.loads(pickle.dumps(cb)).id == cb.id
    w = tartan.Writer(tmp_path / "i")
    with pytest.raises(TypeError):
        pickle.dumps(w)
    w.close()
    unsaved = tartan.train_codebook(flat, lens, ids, n_centroids=16)
    with pytest.raises(TypeError):
        pickle.dumps(unsaved)


def test_shards_of_one_codebook_search_as_one(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    cb = tartan.train_codebook(docs, ids=ids, path=tmp_path / "cb", n_centroids=64)
    single = tartan.build(tmp_path / "single", docs, ids=ids, codebook=cb)
    shards = []
    for s in range(4):
        part = slice(s * 100, (s + 1) * 100)
        tartan.build(tmp_path / f"s{s}", docs[part], ids=ids[part], codebook=str(tmp_path / "cb"))
        shards.append(str(tmp_path / f"s{s}"))
    coll = tartan.create_collection(tmp_path / "coll", shards, codebook=cb)
    assert isinstance(coll, tartan.Collection) and isinstance(coll, tartan.Index)
    assert [s["name"] for s in coll.shards] == ["s0", "s1", "s2", "s3"] and coll.n_docs == 400
    for q in docs[:20]:
        a, b = single.search(q, k=10), coll.search(q, k=10)
        assert a.ids == b.ids and np.array_equal(a.scores, b.scores)
    assert isinstance(tartan.open(tmp_path / "coll"), tartan.Collection)
    assert pickle.loads(pickle.dumps(coll)).n_docs == 400
    coll.remove_shard("s3")
    assert coll.n_docs == 300
    with pytest.raises(tartan.TartanError, match="codebook"):
        other = tartan.build(tmp_path / "other", docs[:50], ids=[f"o{i}" for i in range(50)], n_centroids=16)
        coll.add_shard(other.path)


def test_results_equal_the_rust_cli(tmp_path, tartan_bin):
    ids, docs, flat, lens = clustered(300, dim=32, seed=11)
    qs = [docs[i][:6] for i in range(0, 300, 30)]
    qids = [f"q{i}" for i in range(len(qs))]
    emb = write_embeddings(tmp_path / "emb", ids, flat, lens,
                           (qids, np.concatenate(qs), np.array([len(q) for q in qs])))
    py = tartan.build(tmp_path / "py", flat, lens, ids, n_centroids=64, seed=5)
    subprocess.run([tartan_bin, "index", str(emb), str(tmp_path / "cli"), "--centroids", "64",
                    "--seed", "5"], check=True, capture_output=True)
    # The same index, byte for byte, from Python and from the CLI.
    for name in ["meta.json", "codebook.000001.tcb", "segment.000001.tseg"]:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    run = tmp_path / "run.tsv"
    subprocess.run([tartan_bin, "search", str(tmp_path / "cli"), "--queries", str(emb), "--k", "10",
                    "--out", str(run)], check=True, capture_output=True)
    cli = {}
    for line in run.read_text().splitlines():
        q, _, d, rank, score, _ = line.split()
        cli.setdefault(q, []).append((d, float(score)))
    for qid, q in zip(qids, qs):
        h = py.search(q, k=10)
        assert [d for d, _ in cli[qid]] == h.ids
        assert np.allclose([s for _, s in cli[qid]], h.scores, atol=1e-4)


def test_parts_of_an_embeddings_directory_match_the_cli(tmp_path, tartan_bin):
    ids, docs, flat, lens = clustered(250, dim=32, seed=12)
    emb = write_embeddings(tmp_path / "emb", ids, flat, lens)
    meta = tmp_path / "meta.jsonl"
    meta.write_text("".join(f'{{"id": "{i}", "n": {n}}}\n' for n, i in enumerate(ids)))
    cb = tartan.train_codebook(str(emb), path=tmp_path / "cb", n_centroids=32, sample_docs=120)
    # Three parts from Python and from `tartan index --part`: the same files.
    for i in range(3):
        py = tartan.build(tmp_path / f"py{i}", str(emb), codebook=cb, part=(i, 3), metadata=str(meta))
        subprocess.run([tartan_bin, "index", str(emb), str(tmp_path / f"cli{i}"), "--codebook",
                        str(tmp_path / "cb"), "--part", f"{i}/3", "--metadata", str(meta)],
                       check=True, capture_output=True)
        for name in ["meta.json", "segment.000001.tseg", "codebook.000001.tcb"]:
            assert (tmp_path / f"py{i}" / name).read_bytes() == (tmp_path / f"cli{i}" / name).read_bytes()
        lo, hi = 250 * i // 3, 250 * (i + 1) // 3
        assert py.ids() == ids[lo:hi]
        assert py.search(docs[lo], k=1, filter=f"n = {lo}").ids == [ids[lo]]
    for bad, text in [((3, 3), "part 3 of 3"), ((0, 0), "part 0 of 0")]:
        with pytest.raises(tartan.InvalidInputError, match=text):
            tartan.build(tmp_path / "x", str(emb), codebook=cb, part=bad)
    with pytest.raises(tartan.InvalidInputError, match="embeddings directory"):
        tartan.build(tmp_path / "x", docs, ids=ids, codebook=cb, part=(0, 2))
    with pytest.raises(tartan.InvalidInputError, match="lengths=, ids="):
        tartan.build(tmp_path / "x", str(emb), ids=ids, codebook=cb)
    with pytest.raises(tartan.InvalidInputError, match="JSON-lines"):
        tartan.build(tmp_path / "x", pathlib.Path(emb), codebook=cb, metadata=[{}] * 250)
    with pytest.raises(tartan.NotFoundError):
        tartan.build(tmp_path / "x", str(tmp_path / "missing"), codebook=cb)


def test_long_calls_release_the_gil(tmp_path):
    ids, docs, flat, lens = clustered(3000, dim=64, seed=4)
    done = threading.Event()
    result = {}

    def build():
        t = time.perf_counter()
        result["index"] = tartan.build(tmp_path / "big", flat, lens, ids, n_centroids=256)
        result["seconds"] = time.perf_counter() - t
        done.set()

    worker = threading.Thread(target=build)
    ticks = 0
    worker.start()
    # This thread runs Python while the build runs: only possible if the build let go of the GIL.
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    seconds = result["seconds"]
    assert seconds > 0.2, f"the build took {seconds:.3f} s: too short to tell"
    # Holding the GIL would leave the loop at about one tick for the whole build.
    assert ticks > 0.2 * seconds * 1000 * 0.5, f"{ticks} ticks in {seconds:.2f} s"
    assert result["index"].n_docs == 3000


@pytest.mark.skipif(not tartan.text_support, reason="the wheel was built without text")
def test_text_encoding_with_the_shared_model(tmp_path):
    model = pathlib.Path(__file__).resolve().parents[3].parent / "shared/models/all-MiniLM-L6-v2"
    if not model.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/models/all-MiniLM-L6-v2")
        pytest.skip("../shared/models/all-MiniLM-L6-v2 is absent")
    enc = tartan.Encoder(str(model), doc_maxlen=64, query_maxlen=16)
    assert enc.dim == 384
    texts = ["Cats sleep for most of the day.", "Rust is a systems programming language.",
             "Vitamin D deficiency is associated with diabetes."]
    docs = enc.encode_docs(texts)
    assert [d.shape[1] for d in docs] == [384] * 3 and all(d.dtype == np.float32 for d in docs)
    index = tartan.build(tmp_path / "t", docs, ids=["cats", "rust", "vitd"], texts=texts, n_centroids=8)
    [q] = enc.encode_queries(["how long do cats sleep"])
    h = index.search(q, k=1, with_text=True)
    assert h.ids == ["cats"] and h.texts == [texts[0]]
    # Explained with token names, the stored text encoded again for the exact side.
    e = index.explain("how long do cats sleep", "cats", encoder=enc)
    assert [t["query_text"] for t in e["tokens"]][:3] == ["[CLS]", "how", "long"]
    assert e["tokens"][4]["doc_text"] == "cats" and "exact_score" in e


@pytest.mark.skipif(not tartan.text_support, reason="the wheel was built without text")
def test_cross_encoder_scores_and_reranks(tmp_path):
    models = pathlib.Path(__file__).resolve().parents[3].parent / "shared/models"
    tiny, minilm = models / "tiny-cross-encoder", models / "all-MiniLM-L6-v2"
    if not (tiny.exists() and minilm.exists()):
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/models (tiny-cross-encoder, all-MiniLM-L6-v2)")
        pytest.skip("../shared/models is absent")
    # transformers' logits for the reference pairs.
    ref = json.loads((tiny / "reference/pairs.json").read_text())
    want = np.load(tiny / "reference/logits.npy")
    ce = tartan.CrossEncoder(str(tiny), max_length=256, depth=2)
    assert (ce.max_length, ce.depth) == (256, 2)
    for i in (0, 24, 25):  # a SciFact pair, the empty query, the over-long passage
        p = ref["pairs"][i]
        got = ce.score(p["query"], [p["passage"]])
        assert got.dtype == np.float32 and abs(got[0] - want[i]) < 2e-5, (i, got, want[i])

    enc = tartan.Encoder(str(minilm), doc_maxlen=64, query_maxlen=16)
    texts = ["Cats sleep for most of the day.", "Rust is a systems programming language.",
             "Vitamin D deficiency is associated with diabetes.", "Dogs sleep at night."]
    ids = ["cats", "rust", "vitd", "dogs"]
    index = tartan.build(tmp_path / "t", enc.encode_docs(texts), ids=ids, texts=texts, n_centroids=4)
    query = "how long do cats sleep"
    [q] = enc.encode_queries([query])
    first = index.search(q, k=4, ncells=4, threshold=-1.0, with_text=True)
    assert len(first) == 4
    r = ce.rerank(query, first)
    logits = ce.score(query, first.texts[:2])
    order = sorted(range(2), key=lambda i: (-logits[i], i))
    assert r.first_ranks == order + [2, 3]
    assert r.ids == [first.ids[i] for i in order] + first.ids[2:]
    assert np.array_equal(r.rerank_scores[:2], logits[order])
    assert np.isnan(r.rerank_scores[2:]).all()
    assert np.array_equal(r.scores, first.scores[r.first_ranks])
    assert first.rerank_scores is None
    # Deeper than the hits: all four read.
    assert not np.isnan(ce.rerank(query, first, depth=10).rerank_scores).any()
    # Hits without texts need a corpus.
    bare = index.search(q, k=4, ncells=4, threshold=-1.0)
    with pytest.raises(tartan.InvalidInputError, match="no text to rerank"):
        ce.rerank(query, bare)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(ids, texts)))
    ce2 = tartan.CrossEncoder(str(tiny), max_length=256, depth=2, corpus=corpus)
    assert ce2.rerank(query, bare).ids == r.ids
    with pytest.raises(tartan.InvalidInputError, match="rerank_depth"):
        tartan.CrossEncoder(str(tiny), depth=0)


def test_explain_matches_brute_force(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    index = tartan.build(tmp_path / "x", flat, lens, ids, n_centroids=16)
    q = docs[5][:6]
    hits = index.search(q, k=3)
    for doc_id, score in zip(hits.ids, hits.scores):
        e = index.explain(q, doc_id)
        assert e["id"] == doc_id and abs(e["score"] - score) < 1e-4 * max(1.0, abs(score))
        assert len(e["tokens"]) == len(q) and "exact_score" not in e
        assert abs(sum(t["share"] for t in e["tokens"]) - 1.0) < 1e-4
        # The exact side against numpy: each query token's best original token.
        orig = docs[ids.index(doc_id)]
        e = index.explain(q, doc_id, original=orig)
        sims = q @ orig.T
        assert abs(e["exact_score"] - sims.max(axis=1).sum()) < 1e-4
        assert [t["exact_doc_token"] for t in e["tokens"]] == list(sims.argmax(axis=1))
    with pytest.raises(tartan.InvalidInputError, match="no-such-doc"):
        index.explain(q, "no-such-doc")
    with pytest.raises(tartan.InvalidInputError, match="encoder="):
        index.explain("a text query", ids[0])


def test_buckets_choose_the_residual_tables(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    lm = tartan.build(tmp_path / "lm", flat, lens, ids, n_centroids=16)
    q = tartan.build(tmp_path / "q", flat, lens, ids, n_centroids=16, buckets="quantiles")
    # Other tables: another codebook.
    assert lm.codebook.id != q.codebook.id
    explicit = tartan.build(tmp_path / "e", flat, lens, ids, n_centroids=16, buckets="lloyd-max")
    assert explicit.codebook.id == lm.codebook.id
    cb = tartan.train_codebook(flat, lens, ids, n_centroids=16, buckets="quantiles")
    assert cb.id == q.codebook.id
    with pytest.raises(ValueError, match="buckets.*median"):
        tartan.build(tmp_path / "x", flat, lens, ids, n_centroids=16, buckets="median")


def test_normalize_decoded_builds_decode_unit_tokens(tmp_path, corpus):
    ids, docs, flat, lens = corpus
    index = tartan.build(tmp_path / "n", flat, lens, ids, n_centroids=16)
    plain = tartan.build(tmp_path / "p", flat, lens, ids, n_centroids=16, normalize_decoded=False)
    assert index.codebook.id != plain.codebook.id
    q = docs[3][:5]
    e = index.explain(q, ids[3])
    # Scores are MaxSim over unit decoded tokens: each similarity is at most 1.
    assert all(t["similarity"] <= 1.0 + 1e-5 for t in e["tokens"])
    # A codebook trained with the flag keeps it when shards are built with it.
    cb = tartan.train_codebook(flat, lens, ids, n_centroids=16, normalize_decoded=True)
    shard = tartan.build(tmp_path / "s", flat, lens, ids, codebook=cb)
    assert shard.codebook.id == cb.id


def test_a_filter_on_a_field_no_document_has_is_refused(tmp_path, corpus):
    # The check lives in the library: Python refuses the typo as the CLI and the server do.
    ids, docs, flat, lens = corpus
    meta = [{"parity": i % 2} for i in range(400)]
    index = tartan.build(tmp_path / "i", flat, lens, ids, n_centroids=64, metadata=meta)
    assert index.search(docs[1], k=3, filter="parity = 1").ids[0] == "d1"
    with pytest.raises(tartan.InvalidInputError, match=r'no document has the metadata field "parrity" \(fields: parity\)'):
        index.search(docs[1], k=3, filter="parrity = 1")
    with pytest.raises(tartan.InvalidInputError, match="parrity"):
        index.search_batch([docs[1]], k=3, filter="parity = 1 and parrity = 0")


def test_sweep_matches_the_cli(tmp_path, tartan_bin):
    ids, docs, flat, lens = clustered(200, dim=16, seed=7)
    qs = [docs[i][:5] for i in range(0, 200, 25)]
    qids = [f"q{i}" for i in range(len(qs))]
    emb = write_embeddings(tmp_path / "emb", ids, flat, lens,
                           (qids, np.concatenate(qs), np.array([len(q) for q in qs])))
    settings = dict(nbits=[2], centroids=[32], ncells=[1, 2], ndocs=[64], k=20, seed=3)
    got = tartan.sweep(emb, tmp_path / "py", threads=1, **settings)
    subprocess.run([tartan_bin, "sweep", str(emb), "--out", str(tmp_path / "cli"), "--nbits", "2",
                    "--centroids", "32", "--ncells", "1,2", "--ndocs", "64", "--k", "20",
                    "--seed", "3"], check=True, capture_output=True)
    cli = json.loads((tmp_path / "cli" / "sweep.json").read_text())
    assert json.loads((tmp_path / "py" / "sweep.json").read_text())["rows"] == got["rows"]
    # float32 input: exact, float16, bi-encoder, then one row per (ncells, ndocs).
    assert [r["system"] for r in got["rows"]] == ["exact", "float16", "bi-encoder", "tartan", "tartan"]
    assert got["quality"] == cli["quality"] == "recall@10 vs exact"
    # Everything but the timings is the same measurement.
    same = ["system", "n_centroids", "nbits", "ncells", "ndocs", "bytes_per_token",
            "recall_10_vs_exact", "recall_100_vs_exact"]
    assert [{f: r[f] for f in same} for r in got["rows"]] == [{f: r[f] for f in same} for r in cli["rows"]]
    with pytest.raises(tartan.InvalidInputError, match="nbits"):
        tartan.sweep(emb, tmp_path / "bad", nbits=[3])
