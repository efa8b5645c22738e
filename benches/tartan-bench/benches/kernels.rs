//! Micro-benchmarks of search's hot kernels (criterion). CI compiles them
//! (`cargo bench -p tartan-bench --no-run`); run with `cargo bench -p tartan-bench`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tartan_codec::{CodecParams, ResidualCodec};
use tartan_maxsim::MaxSimScratch;

const DIM: usize = 128;

fn unit_rows(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n * DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    for row in v.chunks_exact_mut(DIM) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Residual decompression of 1,024 tokens, per nbits.
fn decode(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let residuals: Vec<f32> = (0..4096 * DIM).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
    let centroid = unit_rows(1, &mut rng);
    let mut g = c.benchmark_group("decode_1024_tokens");
    g.throughput(Throughput::Elements(1024));
    for nbits in [1u8, 2, 4] {
        let codec = ResidualCodec::train(CodecParams::new(nbits), &residuals, DIM).unwrap();
        let mut scratch = vec![0f32; DIM];
        let mut packed = vec![0u8; 1024 * codec.bytes_per_token()];
        let tokens = unit_rows(1024, &mut rng);
        for (t, out) in
            tokens.chunks_exact(DIM).zip(packed.chunks_exact_mut(codec.bytes_per_token()))
        {
            codec.encode(t, &centroid, &mut scratch, out);
        }
        let mut out = vec![0f32; 1024 * DIM];
        g.bench_with_input(BenchmarkId::from_parameter(nbits), &nbits, |b, _| {
            b.iter(|| {
                for (p, o) in
                    packed.chunks_exact(codec.bytes_per_token()).zip(out.chunks_exact_mut(DIM))
                {
                    codec.decode(p, &centroid, o);
                }
            })
        });
    }
    g.finish();
}

/// Exact MaxSim of a 32-token query: per document, and 16 documents in one product.
fn maxsim(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let q = unit_rows(32, &mut rng);
    let docs = unit_rows(16 * 80, &mut rng);
    let offsets: Vec<usize> = (0..=16).map(|i| i * 80).collect();
    let mut s = MaxSimScratch::default();
    let mut g = c.benchmark_group("maxsim_16_docs_of_80_tokens");
    g.bench_function("one_product_per_doc", |b| {
        b.iter(|| {
            docs.chunks_exact(80 * DIM)
                .map(|d| tartan_maxsim::maxsim(&q, d, DIM, &mut s))
                .sum::<f32>()
        })
    });
    let mut out = Vec::new();
    g.bench_function("batched", |b| {
        b.iter(|| {
            out.clear();
            tartan_maxsim::maxsim_batch(&q, &docs, &offsets, DIM, &mut s, &mut out);
        })
    });
    g.finish();
}

/// Stage 4's arithmetic for 100 documents of 80 tokens and a 32-token query, per nbits:
/// residuals decoded a tile of 16 tokens at a time and multiplied (`skinny_max`; `fixed_max`
/// the same in 16-bit fixed point, what search uses at 2 bits and up), or summed
/// from a per-query [`tartan_kernels::NibbleTable`] without decoding (`lut_max`, the table
/// built inside the timed loop, as search builds it once per query).
fn exact_from_codes(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let q = unit_rows(32, &mut rng);
    let qb = tartan_kernels::SkinnyB::new(&q, DIM);
    let qf = tartan_kernels::FixedB::new(&q, DIM);
    let (docs, len) = (100, 80);
    let cs: Vec<f32> = (0..docs * len * 32).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let ids: Vec<u32> = (0..(docs * len) as u32).collect();
    let mut g = c.benchmark_group("exact_100_docs_of_80");
    g.throughput(Throughput::Elements(docs as u64));
    for nbits in [1u8, 2, 4] {
        let weights: Vec<f32> = (0..1 << nbits).map(|i| i as f32 / 16.0 - 0.1).collect();
        let bpt = DIM * nbits as usize / 8;
        let packed: Vec<u8> = (0..docs * len * bpt).map(|_| rng.gen()).collect();
        let mut best = vec![0f32; 32];
        let mut tile = vec![0f32; 16 * DIM];
        g.bench_with_input(BenchmarkId::new("skinny_max", nbits), &nbits, |b, _| {
            b.iter(|| {
                for t in (0..docs * len).step_by(16) {
                    tartan_kernels::decode_residual(
                        &packed[t * bpt..(t + 16) * bpt],
                        nbits,
                        &weights,
                        &mut tile,
                    );
                    let shifts = tartan_kernels::Shifts { table: &cs, ids: &ids[t..t + 16] };
                    tartan_kernels::skinny_max(&tile, &qb, shifts, None, &mut best);
                }
            })
        });
        let fw = tartan_kernels::FixedWeights::new(&weights, DIM);
        let mut tile16 = vec![0i16; 16 * DIM];
        g.bench_with_input(BenchmarkId::new("fixed_max", nbits), &nbits, |b, _| {
            b.iter(|| {
                for t in (0..docs * len).step_by(16) {
                    tartan_kernels::decode_residual_i16(
                        &packed[t * bpt..(t + 16) * bpt],
                        nbits,
                        fw.values(),
                        &mut tile16,
                    );
                    let rows = tartan_kernels::FixedTile { rows: &tile16, scale: fw.scale() };
                    let shifts = tartan_kernels::Shifts { table: &cs, ids: &ids[t..t + 16] };
                    tartan_kernels::fixed_max(rows, &qf, shifts, None, &mut best);
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("lut_max", nbits), &nbits, |b, _| {
            b.iter(|| {
                let table = tartan_kernels::NibbleTable::new(&qb, nbits, &weights);
                for d in 0..docs {
                    let t = d * len;
                    let shifts = tartan_kernels::Shifts { table: &cs, ids: &ids[t..t + len] };
                    tartan_kernels::lut_max(
                        &table,
                        &packed[t * bpt..(t + len) * bpt],
                        shifts,
                        None,
                        &mut best,
                    );
                }
            })
        });
    }
    g.finish();
}

/// Query (32 tokens) against 8,192 centroids: the first step of every search.
fn centroid_scores(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let centroids = unit_rows(8192, &mut rng);
    let q = unit_rows(32, &mut rng);
    let mut out = vec![0f32; 8192 * 32];
    c.bench_function("query_x_8192_centroids/matmul_nt", |b| {
        b.iter(|| tartan_kernels::matmul_nt(&centroids, &q, DIM, &mut out))
    });
    // The query laid out once, the centroids streamed without packing.
    let qb = tartan_kernels::SkinnyB::new(&q, DIM);
    c.bench_function("query_x_8192_centroids/skinny", |b| {
        b.iter(|| tartan_kernels::skinny_matmul(&centroids, &qb, &mut out))
    });
    // What search uses: the same in 16-bit fixed point, the centroids quantised once per
    // codebook, the query once per search (included here).
    let fixed = tartan_kernels::FixedRows::new(&centroids, DIM);
    c.bench_function("query_x_8192_centroids/fixed", |b| {
        b.iter(|| {
            let fb = tartan_kernels::FixedB::new(&q, DIM);
            tartan_kernels::fixed_matmul(&fixed, 0..8192, &fb, &mut out)
        })
    });
}

/// Approximate scoring from codes: a document of 80 codes, each a row of centroid scores
/// folded into the per-query-token maxima (stage 2 of search), for 1,000 documents.
fn codes_scoring(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let cs: Vec<f32> = (0..8192 * 32).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let codes: Vec<u16> = (0..1000 * 80).map(|_| rng.gen_range(0..8192)).collect();
    let mut acc = vec![0f32; 32];
    let mut g = c.benchmark_group("score_from_codes");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_docs_of_80", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for doc in codes.chunks_exact(80) {
                acc.fill(f32::NEG_INFINITY);
                for &code in doc {
                    tartan_kernels::max_assign(&mut acc, &cs[code as usize * 32..][..32]);
                }
                total += acc.iter().sum::<f32>();
            }
            total
        })
    });
    // The same codes as stored since format 3: packed at ⌈log2 8192⌉ = 13 bits.
    let wide: Vec<u32> = codes.iter().map(|&c| c as u32).collect();
    let mut packed = Vec::new();
    tartan_codec::pack_uints(&wide, 13, &mut packed);
    let reader = tartan_codec::UintReader::new(&packed, 13);
    g.bench_function("1000_docs_of_80_packed", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for d in 0..1000 {
                acc.fill(f32::NEG_INFINITY);
                for code in reader.iter(d * 80..(d + 1) * 80) {
                    tartan_kernels::max_assign(&mut acc, &cs[code as usize * 32..][..32]);
                }
                total += acc.iter().sum::<f32>();
            }
            total
        })
    });
    // What search does since the byte tables: the packed codes unpacked into a buffer, then
    // one gathered 32-byte row and one byte-wise maximum per code.
    let bytes: Vec<u8> = cs.iter().map(|&v| ((v + 1.0) * 127.0) as u8).collect();
    let mut ids = Vec::with_capacity(80);
    let mut acc8 = vec![0u8; 32];
    g.bench_function("1000_docs_of_80_packed_bytes", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for d in 0..1000 {
                ids.clear();
                ids.extend(reader.iter(d * 80..(d + 1) * 80));
                acc8.fill(0);
                assert!(tartan_kernels::max_rows_u8(&bytes, &ids, &mut acc8));
                total += acc8.iter().map(|&v| v as u32).sum::<u32>();
            }
            total
        })
    });
    g.finish();
}

/// A block of 2,048 points against 512 centroids (k-means assignment's product), `sgemm`
/// and the skinny kernel on a transposed panel: on this shape `sgemm` is the faster by far
/// (1.9 against 4.6 ms here, with the AVX-512 skinny kernel), unlike on a 32-row query.
fn points_x_centroids(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let points = unit_rows(2048, &mut rng);
    let centroids = unit_rows(512, &mut rng);
    let mut out = vec![0f32; 2048 * 512];
    let mut g = c.benchmark_group("points_x_centroids");
    g.throughput(Throughput::Elements(2048 * 512 * DIM as u64));
    g.bench_function("2048_x_512/matmul_nt", |b| {
        b.iter(|| tartan_kernels::matmul_nt(&points, &centroids, DIM, &mut out))
    });
    let panel = tartan_kernels::SkinnyB::new(&centroids, DIM);
    g.bench_function("2048_x_512/skinny", |b| {
        b.iter(|| tartan_kernels::skinny_matmul(&points, &panel, &mut out))
    });
    g.finish();
}

/// One group's step of grouped assignment: 256 points against a group of 256 centroids,
/// the nearest for each. `sgemm` then a scan over the products, against the fused kernel
/// over centroids laid out once.
fn nearest_in_group(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let points = unit_rows(256, &mut rng);
    let centroids = unit_rows(256, &mut rng);
    let norms: Vec<f32> = centroids.chunks_exact(DIM).map(|c| tartan_kernels::dot(c, c)).collect();
    let mut g = c.benchmark_group("nearest_256_of_256");
    g.throughput(Throughput::Elements(256 * 256 * DIM as u64));
    let mut prod = vec![0f32; 256 * 256];
    g.bench_function("matmul_nt_argmin", |b| {
        b.iter(|| {
            tartan_kernels::matmul_nt(&points, &centroids, DIM, &mut prod);
            prod.chunks_exact(256)
                .map(|row| tartan_kernels::argmin_shifted(row, &norms).1)
                .sum::<usize>()
        })
    });
    let panels = tartan_kernels::CentroidPanels::new(&centroids, &norms, DIM);
    let mut out = vec![(0f32, 0u32); 256];
    for (name, f) in tartan_kernels::nearest_impls() {
        g.bench_function(format!("panels/{name}"), |b| b.iter(|| f(&points, &panels, &mut out)));
    }
    g.finish();
}

/// Bit packing and unpacking of 1,024 tokens' bucket indices, per nbits.
fn bitpack(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut g = c.benchmark_group("pack_unpack_1024_tokens");
    for nbits in [1u8, 2, 4] {
        let values: Vec<u8> = (0..1024 * DIM).map(|_| rng.gen_range(0..1u8 << nbits)).collect();
        let packed = tartan_codec::pack(&values, nbits);
        g.bench_with_input(BenchmarkId::new("pack", nbits), &nbits, |b, &n| {
            b.iter(|| tartan_codec::pack(&values, n))
        });
        g.bench_with_input(BenchmarkId::new("unpack", nbits), &nbits, |b, &n| {
            b.iter(|| tartan_codec::unpack(&packed, n, values.len()))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    decode,
    maxsim,
    exact_from_codes,
    centroid_scores,
    codes_scoring,
    points_x_centroids,
    nearest_in_group,
    bitpack
);
criterion_main!(benches);
