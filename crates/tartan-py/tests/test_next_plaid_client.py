"""next-plaid's own Python client (next-plaid-client 1.8.5, from the registry) against
`tartan serve --indices` on 127.0.0.1: every call it makes for index management, documents,
search and metadata, sync and async, with results equal to tartan's own API on the same index."""

import asyncio
import os
import re
import subprocess
import threading
import time

import numpy as np
import pytest

import tartan
from conftest import clustered

npc = pytest.importorskip("next_plaid_client") if not os.environ.get("CI") else __import__("next_plaid_client")


def start(tartan_bin, data, *extra):
    """`tartan serve --indices DATA` on an ephemeral port: (process, url)."""
    proc = subprocess.Popen(
        [tartan_bin, "serve", "--indices", str(data), "--addr", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    if not lines or "http://" not in lines[0]:
        proc.kill()
        pytest.fail(f"no address printed: {lines} {proc.stderr.read()}")
    return proc, re.search(r"http://\S+", lines[0]).group(0)


def stop(proc):
    proc.terminate()
    proc.wait(30)


@pytest.fixture()
def server(tmp_path, tartan_bin):
    """A server on a fresh data directory; yields (url, data dir)."""
    data = tmp_path / "data"
    proc, url = start(tartan_bin, data)
    try:
        yield url, data
    finally:
        stop(proc)


def wait_for(client, name, n_docs, timeout=60):
    """Updates are asynchronous (202): poll until the index holds n_docs (bounded)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = client.get_index(name)
        if info.num_documents == n_docs:
            return info
        time.sleep(0.05)
    pytest.fail(f"{name} did not reach {n_docs} documents in {timeout} s")


def corpus(n=300):
    _, docs, _, _ = clustered(n, dim=32, seed=11)
    meta = [{"category": "ab"[i % 2], "year": 2000 + i % 25, "title": f"doc {i}"} for i in range(n)]
    return docs, meta


def test_the_sync_client_drives_every_route(server):
    url, data = server
    docs, meta = corpus()
    client = npc.NextPlaidClient(url)
    health = client.health()
    assert health.status == "healthy" and health.loaded_indices == 0

    client.create_index("papers", npc.IndexConfig(nbits=2, start_from_scratch=100))
    with pytest.raises(npc.IndexExistsError):
        client.create_index("papers", npc.IndexConfig(nbits=2))
    assert client.list_indices() == ["papers"]

    # Two batches: the first (≤ start_from_scratch) is rebuilt with the second.
    first = [npc.Document(embeddings=d.tolist()) for d in docs[:80]]
    assert "queued" in client.add("papers", first, metadata=meta[:80])
    client.add("papers", [{"embeddings": d.tolist()} for d in docs[80:]], metadata=meta[80:])
    info = wait_for(client, "papers", len(docs))
    assert info.dimension == 32 and info.has_metadata and info.num_partitions > 0

    # Plain search: equal to tartan's own search of the same index with the same settings.
    index = tartan.Index.open(data / "papers" / "index")
    params = npc.SearchParams(top_k=10, n_ivf_probe=4, n_full_scores=256)
    queries = [docs[i][:6] for i in (3, 50, 123)]
    res = client.search("papers", [q.tolist() for q in queries], params=params)
    assert res.num_queries == 3
    for q, r in zip(queries, res.results):
        own = index.search(q, k=10, ncells=4, ndocs=256, threshold=0.4)
        assert r.document_ids == [int(i) for i in own.ids]
        np.testing.assert_allclose(r.scores, own.scores, rtol=1e-6)
        assert all(m["_subset_"] == d for m, d in zip(r.metadata, r.document_ids))
    assert res.results[0].document_ids[0] == 3

    # Filtered: SQL condition with parameters, the same as tartan's filter language.
    res = client.search("papers", [queries[1].tolist()], params=params,
                        filter_condition="category = ? AND year >= ?", filter_parameters=["a", 2010])
    own = index.search(queries[1], k=10, ncells=4, ndocs=1024, threshold=0.4,
                       filter='category = "a" and year >= 2010')
    assert res.results[0].document_ids == [int(i) for i in own.ids]
    assert all(m["category"] == "a" and m["year"] >= 2010 for m in res.results[0].metadata)

    # Subset: only those documents.
    subset = list(range(0, 300, 7))
    res = client.search("papers", [queries[2].tolist()], params=params, subset=subset)
    assert res.results[0].document_ids and set(res.results[0].document_ids) <= set(subset)

    # Metadata routes.
    assert client.get_metadata_count("papers") == {"count": 300, "has_metadata": True}
    got = client.get_metadata_by_ids("papers", document_ids=[5, 7, 999])
    assert [m["_subset_"] for m in got.metadata] == [5, 7] and got.metadata[0]["title"] == "doc 5"
    q = client.query_metadata("papers", "title LIKE ? OR year = ?", ["doc 1_", 2024])
    want = sorted({i for i in range(300) if 10 <= i <= 19} | {i for i in range(300) if i % 25 == 24})
    assert q["document_ids"] == want and q["count"] == len(want)
    check = client.check_metadata("papers", [0, 299, 300])
    assert check.existing_ids == [0, 299] and check.missing_ids == [300]
    assert client.update_metadata("papers", "title = ?", {"category": "z"}, ["doc 5"]) == {"updated": 1}
    assert client.query_metadata("papers", "category = ?", ["z"])["document_ids"] == [5]
    res = client.search("papers", [queries[0].tolist()], params=params)
    assert res.results[0].document_ids == [int(i) for i in index.search(queries[0], k=10, ncells=4, ndocs=1024, threshold=0.4).ids]

    # Delete by condition (202, then applied), numbers are never reused.
    client.delete("papers", "year < ?", [2005])
    gone = [i for i in range(300) if i % 25 < 5]
    wait_for(client, "papers", 300 - len(gone))
    assert client.check_metadata("papers", gone[:3]).missing_count == 3
    client.add("papers", [{"embeddings": docs[0].tolist()}], metadata=[{"category": "c", "year": 1}])
    wait_for(client, "papers", 300 - len(gone) + 1)
    assert client.query_metadata("papers", "category = ?", ["c"])["document_ids"] == [300]

    # Errors as next-plaid's client expects them.
    with pytest.raises(npc.IndexNotFoundError):
        client.get_index("nope")
    with pytest.raises(npc.ValidationError):
        client.search("papers", [np.ones((2, 16)).tolist()])
    with pytest.raises(npc.NextPlaidError) as e:
        client.search("papers", [queries[0].tolist()], filter_condition="year = ? ; DROP TABLE x", filter_parameters=[1])
    assert e.value.status_code == 422 and ";" in e.value.message

    # A lower document limit evicts the oldest.
    client.update_index_config("papers", max_documents=100)
    info = wait_for(client, "papers", 100)
    assert info.max_documents == 100
    assert client.check_metadata("papers", [300]).existing_ids == [300]

    assert client.delete_index("papers") == {"deleted": True, "name": "papers"}
    assert client.list_indices() == []
    with pytest.raises(npc.IndexNotFoundError):
        client.get_index("papers")
    client.close()


def test_the_async_client_and_a_restart_keep_the_numbers(tmp_path, tartan_bin):
    data = tmp_path / "data"
    proc, url = start(tartan_bin, data)
    docs, meta = corpus(120)

    async def run():
        async with npc.AsyncNextPlaidClient(url) as client:
            await client.create_index("notes", npc.IndexConfig(nbits=4, start_from_scratch=10))
            await client.add("notes", [{"embeddings": d.tolist()} for d in docs[:60]], metadata=meta[:60])
            await client.add("notes", [{"embeddings": d.tolist()} for d in docs[60:]], metadata=meta[60:])
            for _ in range(1200):
                if (await client.get_index("notes")).num_documents == 120:
                    break
                await asyncio.sleep(0.05)
            return await client.search("notes", [docs[42][:5].tolist()], params=npc.SearchParams(top_k=3))

    try:
        res = asyncio.run(run())
        assert res.results[0].document_ids[0] == 42
        # One server per data directory: a second one is refused while the first runs.
        second = subprocess.run([tartan_bin, "serve", "--indices", str(data), "--addr", "127.0.0.1:0"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "in use" in second.stderr
    finally:
        stop(proc)
    # After a restart the index is there, and numbering goes on where it stopped.
    proc, url = start(tartan_bin, data)
    try:
        client = npc.NextPlaidClient(url)
        assert client.get_index("notes").num_documents == 120
        client.add("notes", [{"embeddings": docs[0].tolist()}])
        wait_for(client, "notes", 121)
        assert client.check_metadata("notes", [120]).existing_ids == [120]
    finally:
        stop(proc)


def test_text_routes_with_the_shared_model(tmp_path, tartan_bin):
    import pathlib
    model = pathlib.Path(__file__).resolve().parents[3].parent / "shared/models/all-MiniLM-L6-v2"
    if not model.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/models/all-MiniLM-L6-v2")
        pytest.skip("../shared/models/all-MiniLM-L6-v2 is absent")
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [tartan_bin, "serve", "--indices", str(data), "--addr", "127.0.0.1:0", "--model", str(model),
         "--doc-maxlen", "64", "--query-maxlen", "16"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://\S+", proc.stdout.readline()).group(0)
        client = npc.NextPlaidClient(url, timeout=120)
        texts = ["Cats sleep for most of the day.", "Rust is a systems programming language.",
                 "Vitamin D deficiency is associated with diabetes.", "Paris is the capital of France."]
        client.create_index("txt", npc.IndexConfig(nbits=4))
        client.add("txt", texts, metadata=[{"topic": t} for t in ["pets", "code", "health", "places"]])
        wait_for(client, "txt", 4)
        res = client.search("txt", ["how long do cats sleep", "capital city of France"],
                            params=npc.SearchParams(top_k=2))
        assert [r.document_ids[0] for r in res.results] == [0, 3]
        res = client.search("txt", ["how long do cats sleep"], params=npc.SearchParams(top_k=2),
                            filter_condition="topic <> ?", filter_parameters=["pets"])
        assert 0 not in res.results[0].document_ids
        enc = client.encode(["how long do cats sleep"], input_type="query")
        assert enc.num_texts == 1 and len(enc.embeddings[0][0]) == 384
        rr = client.rerank("what language is Rust", texts)
        assert rr.num_documents == 4 and rr.results[0].index == 1
        assert [r.score for r in rr.results] == sorted((r.score for r in rr.results), reverse=True)
        with pytest.raises(npc.ValidationError):
            client.add("txt", ["x"], pool_factor=2)
    finally:
        stop(proc)


def test_the_client_sends_a_key_as_a_header(tmp_path, tartan_bin):
    # next-plaid's client takes headers=...: that is how it reaches a server with keys.
    keys = tmp_path / "keys.txt"
    made = subprocess.run([tartan_bin, "keys", "new", str(keys), "--name", "py", "--scope", "write"],
                          check=True, capture_output=True, text=True)
    key = made.stdout.strip()
    proc, url = start(tartan_bin, tmp_path / "data", "--api-keys", str(keys))
    try:
        with pytest.raises(npc.NextPlaidError) as refused:
            npc.NextPlaidClient(url).list_indices()
        assert refused.value.status_code == 401
        with pytest.raises(npc.NextPlaidError) as wrong:
            npc.NextPlaidClient(url, headers={"Authorization": "Bearer not-the-key-at-all"}).list_indices()
        assert wrong.value.status_code == 401
        client = npc.NextPlaidClient(url, headers={"Authorization": f"Bearer {key}"})
        assert client.list_indices() == []
        client.create_index("k", npc.IndexConfig(nbits=2))
        assert client.list_indices() == ["k"]
    finally:
        stop(proc)
