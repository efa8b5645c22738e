//! Reading a BEIR dataset directory: `corpus.jsonl` (or `corpus.jsonl.zst`), `queries.jsonl`,
//! `qrels/<split>.tsv`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;

use crate::{parse_err, EvalError, Qrels};

/// A document or query: its id and the text to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    /// External id (`_id`).
    pub id: String,
    /// Documents: `title + " " + text`, trimmed (as BEIR's dense models do); queries: `text`.
    pub text: String,
}

fn lines(path: &Path) -> Result<Box<dyn BufRead>, EvalError> {
    let file =
        std::fs::File::open(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(
            zstd::Decoder::new(file)
                .map_err(|source| EvalError::Io { path: path.into(), source })?,
        )
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

fn read_jsonl(path: &Path, is_doc: bool) -> Result<Vec<TextItem>, EvalError> {
    let name = path.display().to_string();
    let mut out = Vec::new();
    for (i, line) in lines(path)?.lines().enumerate() {
        let line = line.map_err(|source| EvalError::Io { path: path.into(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| parse_err(&name, i, &format!("not JSON: {e}")))?;
        let id = match v.get("_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(parse_err(&name, i, "no string \"_id\"")),
        };
        let text = v.get("text").and_then(Value::as_str).unwrap_or("");
        let title = if is_doc { v.get("title").and_then(Value::as_str).unwrap_or("") } else { "" };
        let text = format!("{title} {text}").trim().to_string();
        out.push(TextItem { id, text });
    }
    Ok(out)
}

/// Reads a corpus in file order: a BEIR directory's `corpus.jsonl[.zst]`, or such a file
/// given directly.
pub fn load_corpus(dir: &Path) -> Result<Vec<TextItem>, EvalError> {
    if dir.is_file() {
        return read_jsonl(dir, true);
    }
    for name in ["corpus.jsonl", "corpus.jsonl.zst"] {
        let p = dir.join(name);
        if p.exists() {
            return read_jsonl(&p, true);
        }
    }
    Err(EvalError::Missing { path: dir.join("corpus.jsonl[.zst]") })
}

/// Reads every query of a `queries.jsonl` file, or of a BEIR directory's, in file order.
pub fn load_query_texts(path: &Path) -> Result<Vec<TextItem>, EvalError> {
    let file = if path.is_dir() { path.join("queries.jsonl") } else { path.to_path_buf() };
    if !file.exists() {
        return Err(EvalError::Missing { path: file });
    }
    read_jsonl(&file, false)
}

/// Reads the queries judged in `qrels/<split>.tsv` (in `queries.jsonl` order) and those qrels.
pub fn load_queries(dir: &Path, split: &str) -> Result<(Vec<TextItem>, Qrels), EvalError> {
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    if !qrels_path.exists() {
        return Err(EvalError::Missing { path: qrels_path });
    }
    let qrels = Qrels::load(&qrels_path)?;
    let qpath = dir.join("queries.jsonl");
    if !qpath.exists() {
        return Err(EvalError::Missing { path: qpath });
    }
    let judged: std::collections::HashSet<&str> = qrels.queries().collect();
    let queries: Vec<TextItem> =
        read_jsonl(&qpath, false)?.into_iter().filter(|q| judged.contains(q.id.as_str())).collect();
    Ok((queries, qrels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_zstd_corpora_and_split_queries() {
        let d = tempfile::tempdir().unwrap();
        let corpus = "{\"_id\": \"1\", \"title\": \"T\", \"text\": \"body one\"}\n{\"_id\": 2, \"title\": \"\", \"text\": \"two\"}\n";
        std::fs::write(
            d.path().join("corpus.jsonl.zst"),
            zstd::encode_all(corpus.as_bytes(), 3).unwrap(),
        )
        .unwrap();
        let docs = load_corpus(d.path()).unwrap();
        assert_eq!(
            docs,
            vec![
                TextItem { id: "1".into(), text: "T body one".into() },
                TextItem { id: "2".into(), text: "two".into() }
            ]
        );
        std::fs::write(
            d.path().join("queries.jsonl"),
            "{\"_id\": \"a\", \"text\": \"q a\"}\n{\"_id\": \"b\", \"text\": \"q b\"}\n",
        )
        .unwrap();
        std::fs::create_dir(d.path().join("qrels")).unwrap();
        std::fs::write(d.path().join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nb\t1\t1\n")
            .unwrap();
        let (qs, qrels) = load_queries(d.path(), "test").unwrap();
        assert_eq!(qs, vec![TextItem { id: "b".into(), text: "q b".into() }]);
        assert_eq!(qrels.n_queries(), 1);
        assert!(matches!(load_queries(d.path(), "dev"), Err(EvalError::Missing { .. })));
        std::fs::write(d.path().join("corpus.jsonl"), "{\"_id\": \"1\"\n").unwrap();
        assert!(matches!(load_corpus(d.path()), Err(EvalError::Parse { line: 1, .. })));
    }
}
