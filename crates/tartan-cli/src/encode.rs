//! `tartan encode` and the `--model` options: thin shells over `tartan::text`.

use std::time::Instant;

use anyhow::{Context, Result};
use tartan::text::ModelSpec;
use tartan::{Encoder, Mode};

use crate::progress::Bars;
use crate::{EncodeArgs, EncoderArgs};

impl EncoderArgs {
    /// The model the options name, if any.
    pub fn spec(&self) -> Option<ModelSpec> {
        let model = self.model.as_ref()?;
        Some(ModelSpec {
            model: model.clone(),
            mode: self.mode.map(|m| match m {
                crate::ModeArg::Raw => Mode::Raw,
                crate::ModeArg::Colbert => Mode::ColBert,
            }),
            doc_maxlen: self.doc_maxlen,
            query_maxlen: self.query_maxlen,
            batch_size: Some(self.batch_size),
        })
    }

    /// Loads the model named by `--model` (a local directory, else a hub model id), if any.
    pub fn load(&self) -> Result<Option<Encoder>> {
        let Some(spec) = self.spec() else { return Ok(None) };
        let enc = spec.load().with_context(|| format!("loading the model {}", spec.model))?;
        eprintln!(
            "model {}: {:?} mode, dim {}, query_maxlen {}, doc_maxlen {}",
            spec.model,
            enc.mode(),
            enc.dim(),
            enc.query_maxlen(),
            enc.doc_maxlen()
        );
        Ok(Some(enc))
    }
}

pub fn run(a: &EncodeArgs) -> Result<()> {
    let enc = a.encoder.load()?.context("--model is required")?;
    let precision = if a.f32 { tartan::Precision::F32 } else { tartan::Precision::F16 };
    let bars = Bars::default();
    let t = Instant::now();
    let done =
        tartan::text::encode_beir(&enc, &a.beir, &a.out, &a.split, a.max_docs, precision, &bars);
    bars.finish();
    let n = done.context("encoding")?;
    let secs = t.elapsed().as_secs_f64();
    outln!(
        "{} documents ({} tokens) and {} queries of the {} split ({} tokens) in {secs:.1} s: {:.0} tokens/s on {} threads",
        n.docs,
        n.doc_tokens,
        n.queries,
        a.split,
        n.query_tokens,
        (n.doc_tokens + n.query_tokens) as f64 / secs,
        rayon::current_num_threads()
    );
    outln!("embeddings directory: {}", a.out.display());
    Ok(())
}
