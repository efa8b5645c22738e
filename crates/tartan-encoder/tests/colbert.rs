//! ColBERT mode on a tiny checkpoint built here: markers, `[MASK]` padding, punctuation
//! skipping, truncation, projection, settings read from the checkpoint, both layouts.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use serde_json::json;
use tartan_encoder::{Encoder, EncoderError, EncoderParams, Mode};

const WORDS: [&str; 12] = [
    "hello",
    "world",
    "late",
    "interaction",
    "token",
    "vector",
    "query",
    "the",
    "a",
    "is",
    "of",
    "##s",
];
const SPECIAL: [&str; 9] =
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "[Q]", "[D]"];
const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const HIDDEN: usize = 16;
const DIM: usize = 8;

fn vocab() -> BTreeMap<String, u32> {
    SPECIAL
        .iter()
        .map(|s| s.to_string())
        .chain(PUNCT.chars().map(|c| c.to_string()))
        .chain(WORDS.iter().map(|s| s.to_string()))
        .enumerate()
        .map(|(i, s)| (s, i as u32))
        .collect()
}

fn id(t: &str) -> u32 {
    vocab()[t]
}

fn config() -> serde_json::Value {
    json!({"vocab_size": vocab().len(), "hidden_size": HIDDEN, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "max_position_embeddings": 64,
        "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0, "model_type": "bert"})
}

/// Writes config, tokenizer and random weights. `pylate`: projection in 1_Dense/ and no
/// `bert.` prefix; else Stanford's layout with artifact.metadata.
fn write_checkpoint(dir: &Path, pylate: bool) {
    std::fs::write(dir.join("config.json"), config().to_string()).unwrap();
    let added: Vec<_> = SPECIAL
        .iter()
        .map(|s| json!({"id": id(s), "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    // Shipped like all-MiniLM's: truncation at 128 and fixed padding, which the encoder replaces.
    let tok = json!({"version": "1.0",
        "truncation": {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 40}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", id("[SEP]")], "cls": ["[CLS]", id("[CLS]")]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab()}});
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();

    let cfg: Config = serde_json::from_value(config()).unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let bert_vb = if pylate { vb.clone() } else { vb.pp("bert") };
    BertModel::load(bert_vb, &cfg).unwrap();
    if pylate {
        vm.save(dir.join("model.safetensors")).unwrap();
        let dense = VarMap::new();
        VarBuilder::from_varmap(&dense, DType::F32, &Device::Cpu)
            .get_with_hints((DIM, HIDDEN), "linear.weight", Init::Randn { mean: 0.0, stdev: 0.3 })
            .unwrap();
        std::fs::create_dir(dir.join("1_Dense")).unwrap();
        dense.save(dir.join("1_Dense/model.safetensors")).unwrap();
        std::fs::write(
            dir.join("config_sentence_transformers.json"),
            json!({"query_prefix": "[Q]", "document_prefix": "[D]", "query_length": 12, "document_length": 10}).to_string(),
        )
        .unwrap();
    } else {
        vb.get_with_hints((DIM, HIDDEN), "linear.weight", Init::Randn { mean: 0.0, stdev: 0.3 })
            .unwrap();
        vm.save(dir.join("model.safetensors")).unwrap();
        std::fs::write(
            dir.join("artifact.metadata"),
            json!({"query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": 12, "doc_maxlen": 10,
                "mask_punctuation": true, "attend_to_mask_tokens": false, "dim": DIM})
            .to_string(),
        )
        .unwrap();
    }
}

/// The expected output computed directly: BERT, projection, L2-normalisation, kept positions.
fn reference(dir: &Path, ids: &[u32], mask: &[u32], keep: &[usize], pylate: bool) -> Vec<f32> {
    let dev = Device::Cpu;
    let cfg: Config = serde_json::from_value(config()).unwrap();
    let mut t = candle_core::safetensors::load(dir.join("model.safetensors"), &dev).unwrap();
    let w = if pylate {
        candle_core::safetensors::load(dir.join("1_Dense/model.safetensors"), &dev)
            .unwrap()
            .remove("linear.weight")
            .unwrap()
    } else {
        t.remove("linear.weight").unwrap()
    };
    let bert = BertModel::load(VarBuilder::from_tensors(t, DType::F32, &dev), &cfg).unwrap();
    let n = ids.len();
    let ids_t = Tensor::from_vec(ids.to_vec(), (1, n), &dev).unwrap();
    let mask_t = Tensor::from_vec(mask.to_vec(), (1, n), &dev).unwrap();
    let h = bert.forward(&ids_t, &ids_t.zeros_like().unwrap(), Some(&mask_t)).unwrap();
    let p = h.broadcast_matmul(&w.t().unwrap()).unwrap();
    let rows: Vec<Vec<f32>> = p.squeeze(0).unwrap().to_vec2().unwrap();
    keep.iter()
        .flat_map(|&i| {
            let n = rows[i].iter().map(|x| x * x).sum::<f32>().sqrt();
            rows[i].iter().map(move |x| x / n).collect::<Vec<_>>()
        })
        .collect()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(d < 1e-5, "max abs diff {d}");
}

fn check_layout(pylate: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_checkpoint(dir, pylate);
    let enc = Encoder::load(dir, &EncoderParams::new()).unwrap();
    assert_eq!(
        (enc.mode(), enc.dim(), enc.query_maxlen(), enc.doc_maxlen()),
        (Mode::ColBert, DIM, 12, 10)
    );
    let (qm, dm) = if pylate { (id("[Q]"), id("[D]")) } else { (id("[unused0]"), id("[unused1]")) };

    // Query: [CLS] [Q] hello world [SEP], then [MASK] up to 12, masks not attended; all 12 kept.
    let (ids, mask) = enc.token_ids(&["Hello world"], true).unwrap().remove(0);
    let m = id("[MASK]");
    assert_eq!(
        ids,
        vec![id("[CLS]"), qm, id("hello"), id("world"), id("[SEP]"), m, m, m, m, m, m, m]
    );
    assert_eq!(mask, vec![1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    let q = enc.encode_queries(&["Hello world"]).unwrap().remove(0);
    assert_eq!(q.len(), 12 * DIM);
    close(&q, &reference(dir, &ids, &mask, &(0..12).collect::<Vec<_>>(), pylate));

    // Document: punctuation dropped after encoding (it still shapes the context).
    let (ids, mask) = enc.token_ids(&["hello, world!"], false).unwrap().remove(0);
    assert_eq!(ids, vec![id("[CLS]"), dm, id("hello"), id(","), id("world"), id("!"), id("[SEP]")]);
    let d = enc.encode_docs(&["hello, world!"], &mut |_| {}).unwrap().remove(0);
    assert_eq!(d.len(), 5 * DIM);
    close(&d, &reference(dir, &ids, &mask, &[0, 1, 2, 4, 6], pylate));

    // Truncation at doc_maxlen, marker and [SEP] included.
    let long = "the late interaction of the query token is a vector of the world";
    let (ids, _) = enc.token_ids(&[long], false).unwrap().remove(0);
    assert_eq!(ids.len(), 10);
    assert_eq!((ids[1], ids[9]), (dm, id("[SEP]")));

    // Batching with padding changes nothing.
    let texts = ["hello, world!", long, "a token"];
    let batched = enc.encode_docs(&texts, &mut |_| {}).unwrap();
    for (t, b) in texts.iter().zip(&batched) {
        close(b, &enc.encode_docs(&[t], &mut |_| {}).unwrap()[0]);
    }
    // A document of punctuation only keeps [CLS], [D] and [SEP]; every vector is unit length.
    let p = enc.encode_docs(&["!!!"], &mut |_| {}).unwrap().remove(0);
    assert_eq!(p.len(), 3 * DIM);
    for v in p.chunks_exact(DIM) {
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn stanford_layout() {
    check_layout(false);
}

#[test]
fn pylate_layout() {
    check_layout(true);
}

#[test]
fn explicit_settings_win_and_raw_mode_can_be_forced() {
    let tmp = tempfile::tempdir().unwrap();
    write_checkpoint(tmp.path(), false);
    let enc =
        Encoder::load(tmp.path(), &EncoderParams::new().query_maxlen(6).doc_maxlen(20)).unwrap();
    assert_eq!((enc.query_maxlen(), enc.doc_maxlen()), (6, 20));
    let raw = Encoder::load(tmp.path(), &EncoderParams::new().mode(Mode::Raw)).unwrap();
    assert_eq!((raw.mode(), raw.dim()), (Mode::Raw, HIDDEN));
    let v = raw.encode_docs(&["hello, world!"], &mut |_| {}).unwrap().remove(0);
    assert_eq!(
        v.len(),
        6 * HIDDEN,
        "raw mode keeps every token, punctuation and specials included"
    );
    assert!(matches!(
        Encoder::load(tmp.path(), &EncoderParams::new().query_maxlen(1000)),
        Err(EncoderError::Param { name: "query_maxlen", .. })
    ));
}

#[test]
fn incomplete_directories_name_the_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_checkpoint(tmp.path(), true);
    std::fs::remove_file(tmp.path().join("1_Dense/model.safetensors")).unwrap();
    let err = Encoder::load(tmp.path(), &EncoderParams::new()).unwrap_err();
    assert!(
        matches!(&err, EncoderError::MissingFile { path } if path.ends_with("1_Dense/model.safetensors")),
        "{err}"
    );
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let err = Encoder::load(tmp.path(), &EncoderParams::new()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    // A complete directory whose config.json is not a BERT config: the config error, naming
    // the file (with tokenizer.json gone this could only ever have been MissingFile).
    let whole = tempfile::tempdir().unwrap();
    write_checkpoint(whole.path(), true);
    std::fs::write(whole.path().join("config.json"), "{\"hidden_size\": 3}").unwrap();
    let err = Encoder::load(whole.path(), &EncoderParams::new()).unwrap_err();
    assert!(
        matches!(&err, EncoderError::Config { path, .. } if path.ends_with("config.json")),
        "{err}"
    );
}
