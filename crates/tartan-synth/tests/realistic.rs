//! A profile fitted to "real" vectors (here an anisotropic synthetic corpus standing in for an
//! encoder's output) and corpora drawn from it.

use tartan_embeddings::{Embeddings, LoadOptions};
use tartan_synth::{Profile, ProfileParams, RealisticParams, SynthError, SynthParams};

/// Topic-structured tokens pushed into a cone around one direction, as real encoders' are.
fn real_like(n_docs: usize, dim: usize, seed: u64) -> (Embeddings, Embeddings) {
    let c = SynthParams::new(n_docs).dim(dim).n_queries(20).query_len(12).seed(seed).generate();
    let cone = |e: &Embeddings| {
        let mut toks = vec![0f32; e.n_tokens() * dim];
        e.read_tokens(0, &mut toks);
        for v in toks.chunks_exact_mut(dim) {
            v[0] += 1.5;
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
        }
        let lens: Vec<u64> = (0..e.n_docs()).map(|d| e.doc_len(d) as u64).collect();
        Embeddings::from_parts(dim, &lens, e.ids().to_vec(), toks, LoadOptions::default()).unwrap()
    };
    (cone(&c.docs), cone(&c.queries))
}

fn profile() -> Profile {
    let (docs, queries) = real_like(300, 48, 11);
    ProfileParams::new()
        .dim(16)
        .n_clusters(32)
        .sample_tokens(4096)
        .seed(2)
        .fit(&docs, &queries)
        .unwrap()
}

fn tokens(e: &Embeddings) -> Vec<f32> {
    let mut t = vec![0f32; e.n_tokens() * e.dim()];
    e.read_tokens(0, &mut t);
    t
}

/// Eigenvalues of `E[x xᵀ]`, largest first, by power iteration with deflation (small dims).
fn top_eigen_share(t: &[f32], dim: usize) -> f64 {
    let n = (t.len() / dim) as f64;
    let mut m = vec![0f64; dim * dim];
    for v in t.chunks_exact(dim) {
        for i in 0..dim {
            for j in 0..dim {
                m[i * dim + j] += f64::from(v[i] * v[j]) / n;
            }
        }
    }
    let trace: f64 = (0..dim).map(|i| m[i * dim + i]).sum();
    let mut x = vec![1.0f64; dim];
    let mut lambda = 0.0;
    for _ in 0..200 {
        let y: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| m[i * dim + j] * x[j]).sum()).collect();
        lambda = y.iter().map(|a| a * a).sum::<f64>().sqrt();
        x = y.iter().map(|a| a / lambda).collect();
    }
    lambda / trace
}

#[test]
fn profile_keeps_the_real_spectrum() {
    let p = profile();
    assert_eq!((p.dim(), p.source_dim(), p.n_clusters()), (16, 48, 32));
    assert_eq!(p.n_doc_templates(), 300);
    assert_eq!(p.n_query_templates(), 20);
    let ev = p.eigenvalues();
    assert!(ev.windows(2).all(|w| w[0] >= w[1]), "eigenvalues sorted");
    // Unit vectors: the second moment's trace is 1.
    assert!((ev.iter().sum::<f64>() - 1.0).abs() < 1e-3, "trace {}", ev.iter().sum::<f64>());
    assert!(p.kept_energy() > 0.5 && p.kept_energy() <= 1.0);
    assert!(p.mean_spread() > 0.0 && p.mean_spread() < 1.5);

    let c = RealisticParams::new(400).n_queries(30).seed(5).generate(&p).unwrap();
    let t = tokens(&c.docs);
    assert!(t.chunks_exact(16).all(|v| (v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4));
    // The cone's dominant direction survives: the generated tokens' top eigenvalue holds
    // about the share the real tokens' does among the kept directions.
    let real = ev[0] / ev[..16].iter().sum::<f64>();
    let got = top_eigen_share(&t, 16);
    assert!((got - real).abs() < 0.1, "top eigenvalue share {got:.3} vs real {real:.3}");
    // The rotation spreads the dominant direction over the coordinates: no coordinate holds
    // the share of the second moment the top principal direction holds.
    let mut per_coord = [0f64; 16];
    for v in t.chunks_exact(16) {
        per_coord.iter_mut().zip(v).for_each(|(a, x)| *a += f64::from(x * x));
    }
    let max_share = per_coord.iter().cloned().fold(0.0, f64::max) / per_coord.iter().sum::<f64>();
    assert!(
        max_share < 0.75 * got,
        "largest coordinate holds {max_share:.3}, top direction {got:.3}"
    );
    let mean_len = c.docs.n_tokens() as f64 / 400.0;
    assert!((mean_len - 80.0).abs() < 12.0, "mean length {mean_len}");
}

#[test]
fn deterministic_for_a_seed() {
    let p = profile();
    let a = RealisticParams::new(50).n_queries(5).seed(3).generate(&p).unwrap();
    let b = RealisticParams::new(50).n_queries(5).seed(3).generate(&p).unwrap();
    let c = RealisticParams::new(50).n_queries(5).seed(4).generate(&p).unwrap();
    assert_eq!(tokens(&a.docs), tokens(&b.docs));
    assert_eq!(tokens(&a.queries), tokens(&b.queries));
    assert_ne!(tokens(&a.docs), tokens(&c.docs));
    // Fitting again with the same seed gives the same profile, hence the same corpus.
    let d = RealisticParams::new(50).n_queries(5).seed(3).generate(&profile()).unwrap();
    assert_eq!(tokens(&a.docs), tokens(&d.docs));
    // Streaming to a directory writes the same vectors.
    let dir = tempfile::tempdir().unwrap();
    let stats = RealisticParams::new(50)
        .n_queries(5)
        .seed(3)
        .write(&p, dir.path(), tartan_embeddings::Precision::F32)
        .unwrap();
    assert_eq!(stats.n_tokens, a.docs.n_tokens());
    let docs = Embeddings::open(dir.path(), tartan_embeddings::Kind::Docs, LoadOptions::default())
        .unwrap();
    assert_eq!(tokens(&docs), tokens(&a.docs));
}

/// How many of 40 queries have their target in the exact MaxSim top 10 of 300 documents.
fn targets_in_top10(p: &Profile, params: RealisticParams) -> usize {
    let c = params.n_queries(40).seed(8).generate(p).unwrap();
    let dim = p.dim();
    let maxsim = |q: &[f32], d: &[f32]| -> f32 {
        q.chunks_exact(dim)
            .map(|qt| {
                d.chunks_exact(dim)
                    .map(|dt| qt.iter().zip(dt).map(|(a, b)| a * b).sum::<f32>())
                    .fold(f32::MIN, f32::max)
            })
            .sum()
    };
    let docs: Vec<Vec<f32>> = (0..c.docs.n_docs()).map(|d| c.docs.doc(d)).collect();
    let mut in_top10 = 0;
    for (q, &target) in c.query_targets.iter().enumerate() {
        let qv = c.queries.doc(q);
        let s: Vec<f32> = docs.iter().map(|d| maxsim(&qv, d)).collect();
        let rank = s.iter().filter(|&&x| x > s[target]).count();
        in_top10 += usize::from(rank < 10);
    }
    in_top10
}

/// The query overlap decides how findable the target is: at 0 the query says nothing about
/// it (chance is 10 in 300), at the default it helps, copied tokens find it nearly always.
#[test]
fn queries_point_at_their_targets() {
    let p = profile();
    let none = targets_in_top10(&p, RealisticParams::new(300).query_overlap(0.0));
    let default = targets_in_top10(&p, RealisticParams::new(300));
    let copied =
        targets_in_top10(&p, RealisticParams::new(300).query_overlap(1.0).query_noise(0.0));
    assert!(none <= 6, "no overlap: {none} of 40 targets in the top 10");
    assert!(default >= 8 && default > none, "default overlap: {default} of 40 (none: {none})");
    assert!(copied >= 36, "copied tokens: {copied} of 40");
}

#[test]
fn bad_settings_are_named() {
    let (docs, queries) = real_like(40, 24, 1);
    let fit =
        |p: ProfileParams| p.sample_tokens(512).n_clusters(8).fit(&docs, &queries).unwrap_err();
    assert!(matches!(
        fit(ProfileParams::new().dim(0)),
        SynthError::BadDim { dim: 0, source_dim: 24 }
    ));
    assert!(matches!(fit(ProfileParams::new().dim(25)), SynthError::BadDim { dim: 25, .. }));
    let e = ProfileParams::new().dim(8).n_clusters(0).fit(&docs, &queries).unwrap_err();
    assert!(matches!(e, SynthError::BadSetting { name: "n_clusters", .. }), "{e}");
    let (_, q32) = real_like(10, 32, 1);
    let e = ProfileParams::new().dim(8).fit(&docs, &q32).unwrap_err();
    assert!(matches!(e, SynthError::DimMismatch { docs: 24, queries: 32 }), "{e}");
    let p =
        ProfileParams::new().dim(8).n_clusters(8).sample_tokens(512).fit(&docs, &queries).unwrap();
    for (params, name) in [
        (RealisticParams::new(0), "n_docs"),
        (RealisticParams::new(5).n_queries(0), "n_queries"),
        (RealisticParams::new(5).mean_doc_len(Some(f64::NAN)), "mean_doc_len"),
        (RealisticParams::new(5).query_overlap(1.5), "query_overlap"),
        (RealisticParams::new(5).query_noise(f32::INFINITY), "query_noise"),
        (RealisticParams::new(5).jitter(-1.0), "jitter"),
    ] {
        let e = params.generate(&p).unwrap_err();
        assert!(matches!(e, SynthError::BadSetting { name: n, .. } if n == name), "{e}");
        assert!(e.to_string().contains(name), "{e}");
    }
}

/// The real corpus through the profile's projection: same ids and lengths, each row the
/// projection of the real one; embeddings of another dimension are refused.
#[test]
fn write_projected_writes_the_real_corpus_projected() {
    let (docs, queries) = real_like(300, 48, 11);
    let p = profile();
    let dir = tempfile::tempdir().unwrap();
    let stats =
        p.write_projected(&docs, &queries, dir.path(), tartan_embeddings::Precision::F32).unwrap();
    assert_eq!((stats.n_docs, stats.n_tokens, stats.n_queries), (300, docs.n_tokens(), 20));
    let open = |k| Embeddings::open(dir.path(), k, LoadOptions::default()).unwrap();
    let (pd, pq) = (open(tartan_embeddings::Kind::Docs), open(tartan_embeddings::Kind::Queries));
    assert_eq!((pd.ids(), pq.ids()), (docs.ids(), queries.ids()));
    for d in [0, 17, 299] {
        assert_eq!(pd.doc(d), p.project(&docs.doc(d)));
    }
    let (other, _) = real_like(10, 24, 1);
    let e = p.write_projected(&other, &queries, dir.path(), tartan_embeddings::Precision::F32);
    assert!(matches!(e, Err(SynthError::BadDim { source_dim: 24, .. })), "{e:?}");
}
