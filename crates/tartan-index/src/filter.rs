//! Metadata filters: a small expression language over each document's JSON object.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | field "exists"
//!          | field op value | field "in" "[" value ("," value)* "]" | field "like" string
//! op      := "=" | "!=" | "<" | "<=" | ">" | ">="
//! field   := name ("." name)*          name: letters, digits, "_", "-"; or a "quoted" name
//! value   := a JSON number, string, true, false or null
//! ```
//!
//! Keywords are case-insensitive. A comparison on a missing field is false (so is `!=`; use
//! `not` for "missing or different"). Numbers compare as numbers, strings by bytes, and values
//! of different types never match an ordering. When the field holds an array, a comparison
//! matches if any element matches (`tags = "x"` finds documents tagged x). `like` is SQL's:
//! `%` matches any run of characters, `_` one character, ASCII letters match either case, and
//! only strings match.
//!
//! [`Filter::from_sql`] takes next-plaid's SQL `WHERE` conditions instead (module `sql`).

mod sql;

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{IndexError, Result};

/// A parsed filter. Build with [`Filter::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
    src: String,
}

/// Deepest nesting of `not` and parentheses a filter may have: evaluation recurses, and a
/// server takes filters from strangers.
pub const MAX_FILTER_DEPTH: usize = 64;
/// Longest filter text accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Exists(Vec<String>),
    Cmp(Vec<String>, Op, Value),
    In(Vec<String>, Vec<Value>),
    Like(Vec<String>, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Filter {
    /// Parses `src`; the error names what was expected and the byte position.
    /// Filters longer than [`MAX_FILTER_LEN`] bytes or nested deeper than
    /// [`MAX_FILTER_DEPTH`] are refused.
    pub fn parse(src: &str) -> Result<Self> {
        if src.len() > MAX_FILTER_LEN {
            return Err(IndexError::Filter {
                pos: MAX_FILTER_LEN,
                reason: format!("the filter is {} bytes, the limit is {MAX_FILTER_LEN}", src.len()),
            });
        }
        let mut p = Parser { c: Cursor::new(src, is_name_char) };
        let expr = p.or()?;
        p.c.skip_ws();
        if p.c.pos < src.len() {
            return Err(p.err("expected `and`, `or` or the end of the filter"));
        }
        Ok(Self { expr, src: src.to_string() })
    }

    /// Documents whose top-level `field` equals one of `values` (a set of any size: no text
    /// is parsed, so [`MAX_FILTER_LEN`] does not apply).
    pub fn field_in(field: &str, values: Vec<Value>) -> Self {
        let expr = Expr::In(vec![field.to_string()], values);
        Self { src: print(&expr), expr }
    }

    /// Documents matching both filters.
    pub fn and(self, other: Filter) -> Self {
        let expr = Expr::And(vec![self.expr, other.expr]);
        Self { src: print(&expr), expr }
    }

    /// The top-level metadata fields the filter reads, sorted and distinct.
    pub fn fields(&self) -> Vec<&str> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
            match e {
                Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| walk(e, out)),
                Expr::Not(e) => walk(e, out),
                Expr::Exists(p) | Expr::Cmp(p, ..) | Expr::In(p, _) | Expr::Like(p, _) => {
                    out.push(&p[0])
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The text it was parsed from (to hand the same filter to a remote shard).
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Whether a document's metadata object matches.
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        eval(&self.expr, doc)
    }
}

fn lookup<'a>(doc: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let mut v = doc.get(&path[0])?;
    for name in &path[1..] {
        v = v.as_object()?.get(name)?;
    }
    Some(v)
}

fn eval(e: &Expr, doc: &Map<String, Value>) -> bool {
    match e {
        Expr::And(es) => es.iter().all(|e| eval(e, doc)),
        Expr::Or(es) => es.iter().any(|e| eval(e, doc)),
        Expr::Not(e) => !eval(e, doc),
        Expr::Exists(path) => lookup(doc, path).is_some(),
        Expr::Cmp(path, op, want) => {
            lookup(doc, path).is_some_and(|v| any_elem(v, |x| compare(x, *op, want)))
        }
        Expr::In(path, set) => lookup(doc, path).is_some_and(|v| {
            any_elem(v, |x| set.iter().any(|w| order(x, w) == Some(Ordering::Equal)))
        }),
        Expr::Like(path, pattern) => lookup(doc, path).is_some_and(|v| {
            any_elem(v, |x| x.as_str().is_some_and(|t| like(t.as_bytes(), pattern.as_bytes())))
        }),
    }
}

/// SQL `LIKE`: `%` any run of characters (bytes), `_` one character, ASCII case-insensitive.
/// Iterative with one backtrack point per `%`, so hostile patterns cost O(text × pattern).
fn like(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'%' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'_' {
            // One character: a whole UTF-8 sequence.
            t += utf8_len(text[t]);
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            t += 1;
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + utf8_len(text[st]);
            star = Some((sp, t));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'%')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// The filter text of `e`, parsing back to `e`: names that are not plain words are quoted,
/// values are JSON.
fn print(e: &Expr) -> String {
    fn field(path: &[String]) -> String {
        let plain = |n: &str| {
            !n.is_empty()
                && n.chars().all(is_name_char)
                && !RESERVED.iter().any(|r| n.eq_ignore_ascii_case(r))
        };
        let names: Vec<String> = path
            .iter()
            .map(|n| if plain(n) { n.clone() } else { Value::String(n.clone()).to_string() })
            .collect();
        names.join(".")
    }
    let group = |es: &[Expr], sep: &str| {
        let parts: Vec<String> = es.iter().map(|e| format!("({})", print(e))).collect();
        parts.join(sep)
    };
    match e {
        Expr::And(es) => group(es, " and "),
        Expr::Or(es) => group(es, " or "),
        Expr::Not(e) => format!("not ({})", print(e)),
        Expr::Exists(p) => format!("{} exists", field(p)),
        Expr::Cmp(p, op, v) => {
            let op = match op {
                Op::Eq => "=",
                Op::Ne => "!=",
                Op::Lt => "<",
                Op::Le => "<=",
                Op::Gt => ">",
                Op::Ge => ">=",
            };
            format!("{} {op} {v}", field(p))
        }
        Expr::In(p, set) => {
            let vals: Vec<String> = set.iter().map(Value::to_string).collect();
            format!("{} in [{}]", field(p), vals.join(", "))
        }
        Expr::Like(p, pat) => format!("{} like {}", field(p), Value::String(pat.clone())),
    }
}

/// Words that cannot be unquoted field names.
const RESERVED: [&str; 6] = ["and", "or", "not", "in", "exists", "like"];

fn any_elem(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(f),
        v => f(v),
    }
}

/// Order of two values of the same kind; `None` across kinds (and for arrays/objects).
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

fn compare(v: &Value, op: Op, want: &Value) -> bool {
    let Some(o) = order(v, want) else { return false };
    match op {
        Op::Eq => o.is_eq(),
        Op::Ne => o.is_ne(),
        Op::Lt => o.is_lt(),
        Op::Le => o.is_le(),
        Op::Gt => o.is_gt(),
        Op::Ge => o.is_ge(),
    }
}

/// A position in a filter's text and the nesting depth reached: the lexer both filter
/// languages read with (this one, and the SQL of [`Filter::from_sql`]). `word` says which
/// characters make up a word (keywords end where words end).
struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    word: fn(char) -> bool,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str, word: fn(char) -> bool) -> Self {
        Self { src, pos: 0, depth: 0, word }
    }
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }
    /// Consumes `kw` if the next word is it (case-insensitive, whole word).
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let end = rest.find(|c: char| !(self.word)(c)).unwrap_or(rest.len());
        if end == kw.len() && rest[..end].eq_ignore_ascii_case(kw) {
            self.pos += end;
            true
        } else {
            false
        }
    }
    fn punct(&mut self, p: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(p) {
            self.pos += p.len();
            true
        } else {
            false
        }
    }
    /// One level deeper; false past [`MAX_FILTER_DEPTH`] (the caller reports it).
    fn descend(&mut self) -> bool {
        self.depth += 1;
        self.depth <= MAX_FILTER_DEPTH
    }
}

struct Parser<'a> {
    c: Cursor<'a>,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> IndexError {
        let rest: String = self.c.rest().chars().take(20).collect();
        let found = if rest.is_empty() { "the end".to_string() } else { format!("{rest:?}") };
        IndexError::Filter { pos: self.c.pos, reason: format!("{reason}, found {found}") }
    }
    fn enter(&mut self) -> Result<()> {
        if !self.c.descend() {
            return Err(self.err(&format!("nested deeper than {MAX_FILTER_DEPTH} levels")));
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Expr> {
        let mut terms = vec![self.and()?];
        while self.c.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one") } else { Expr::Or(terms) })
    }
    fn and(&mut self) -> Result<Expr> {
        let mut terms = vec![self.unary()?];
        while self.c.keyword("and") {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one") } else { Expr::And(terms) })
    }
    fn unary(&mut self) -> Result<Expr> {
        if self.c.keyword("not") {
            self.enter()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.c.depth -= 1;
            return Ok(e);
        }
        if self.c.punct("(") {
            self.enter()?;
            let e = self.or()?;
            if !self.c.punct(")") {
                return Err(self.err("expected `)`"));
            }
            self.c.depth -= 1;
            return Ok(e);
        }
        let path = self.field()?;
        if self.c.keyword("exists") {
            return Ok(Expr::Exists(path));
        }
        if self.c.keyword("in") {
            if !self.c.punct("[") {
                return Err(self.err("expected `[` after `in`"));
            }
            let mut set = vec![self.value()?];
            while self.c.punct(",") {
                set.push(self.value()?);
            }
            if !self.c.punct("]") {
                return Err(self.err("expected `,` or `]`"));
            }
            return Ok(Expr::In(path, set));
        }
        if self.c.keyword("like") {
            return match self.value()? {
                Value::String(pattern) => Ok(Expr::Like(path, pattern)),
                _ => Err(self.err("expected a \"pattern\" string after `like`")),
            };
        }
        // Longest operators first.
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("!=", Op::Ne),
            ("==", Op::Eq),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        for (text, op) in ops {
            if self.c.punct(text) {
                return Ok(Expr::Cmp(path, op, self.value()?));
            }
        }
        Err(self.err("expected an operator (=, !=, <, <=, >, >=, in, like, exists)"))
    }
    fn field(&mut self) -> Result<Vec<String>> {
        let mut path = vec![self.name()?];
        while self.c.rest().starts_with('.') {
            self.c.pos += 1;
            path.push(self.name()?);
        }
        Ok(path)
    }
    fn name(&mut self) -> Result<String> {
        self.c.skip_ws();
        if self.c.rest().starts_with('"') {
            return match self.value()? {
                Value::String(s) => Ok(s),
                _ => unreachable!("a quoted token parses as a string"),
            };
        }
        let rest = self.c.rest();
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let word = rest[..end].to_string();
        if word.is_empty() || RESERVED.iter().any(|r| word.eq_ignore_ascii_case(r)) {
            return Err(self.err("expected a field name"));
        }
        self.c.pos += end;
        Ok(word)
    }
    fn value(&mut self) -> Result<Value> {
        self.c.skip_ws();
        let rest = self.c.rest();
        let end = if let Some(body) = rest.strip_prefix('"') {
            // The closing quote: the first `"` not escaped by a backslash.
            let mut escaped = false;
            let close = body.char_indices().find(|&(_, c)| {
                let done = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                done
            });
            match close {
                Some((i, _)) => i + 2,
                None => return Err(self.err("unterminated string")),
            }
        } else {
            rest.find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | ')'))
                .unwrap_or(rest.len())
        };
        match serde_json::from_str::<Value>(&rest[..end]) {
            Ok(v @ (Value::Number(_) | Value::String(_) | Value::Bool(_) | Value::Null)) => {
                self.c.pos += end;
                Ok(v)
            }
            _ => Err(self.err("expected a value (number, \"string\", true, false, null)")),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_or_long_filters_are_refused_not_overflowed() {
        let deep = format!("{}a = 1{}", "(".repeat(20_000), ")".repeat(20_000));
        let err = Filter::parse(&deep).unwrap_err().to_string();
        assert!(err.contains("nested deeper than 64"), "{err}");
        let nots = format!("{}a = 1", "not ".repeat(100));
        assert!(Filter::parse(&nots).unwrap_err().to_string().contains("nested deeper"));
        let ok = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
        assert!(Filter::parse(&ok).unwrap().matches(&obj(json!({"a": 1}))));
        let long = format!("a in [{}1]", "1, ".repeat(30_000));
        assert!(Filter::parse(&long).unwrap_err().to_string().contains("the limit is"));
        assert_eq!(Filter::parse("x = 2").unwrap().source(), "x = 2");
        let f = Filter::parse(r#"b.c = 1 and (a exists or not b in [1]) or "q r" > 2"#).unwrap();
        assert_eq!(f.fields(), ["a", "b", "q r"]);
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn evaluates_comparisons_sets_and_logic() {
        let d =
            obj(json!({"year": 2020, "lang": "en", "tags": ["a", "b"], "src": {"kind": "web"}}));
        let cases = [
            ("year = 2020", true),
            ("year == 2020.0", true),
            ("year != 2020", false),
            ("year >= 2020 and year < 2021", true),
            ("year > 2020 or lang = \"en\"", true),
            ("not lang = \"de\"", true),
            ("lang in [\"de\", \"en\"]", true),
            ("lang IN [\"de\"]", false),
            ("tags = \"b\"", true),
            ("tags in [\"c\", \"a\"]", true),
            ("src.kind = \"web\"", true),
            ("src.kind exists and missing exists", false),
            ("missing != 3", false),
            ("not missing = 3", true),
            ("year < \"2021\"", false),
            ("(year = 1 or year = 2020) and not (lang = \"fr\")", true),
            ("\"lang\" = \"en\"", true),
            ("lang like \"E%\"", true),
            ("tags like \"_\"", true),
            ("year like \"2020\"", false),
            ("src.kind like \"w_b\" and not lang like \"%x%\"", true),
        ];
        for (src, want) in cases {
            let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(f.matches(&d), want, "{src}");
        }
    }

    #[test]
    fn like_is_sqls() {
        for (text, pattern, want) in [
            ("Deep Nets", "deep%", true),
            ("deep", "%", true),
            ("", "%", true),
            ("", "_", false),
            ("abc", "a_c", true),
            ("abc", "a%c%", true),
            ("abc", "%b", false),
            ("ünï", "_n_", true),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "%a%a%a%a%a%a%a%c", false),
            ("100%", "100%", true),
        ] {
            assert_eq!(
                like(text.as_bytes(), pattern.as_bytes()),
                want,
                "{text:?} like {pattern:?}"
            );
        }
    }

    #[test]
    fn printed_filters_parse_back() {
        for src in [
            r#"a = 1 and (b in ["x", "y"] or not c.d exists)"#,
            r#""odd name" like "%q" or "and" != null"#,
            r#"not (x >= 2.5 and y < -1) or z = true"#,
        ] {
            let f = Filter::parse(src).unwrap();
            let again = Filter::parse(&print(&f.expr)).unwrap();
            assert_eq!(again.expr, f.expr, "{src} printed as {}", print(&f.expr));
        }
    }

    #[test]
    fn built_filters_match_and_print_as_their_parsed_form() {
        let only = Filter::field_in("_subset_", vec![json!(3), json!(7)]);
        let both = Filter::parse("kind = \"x\"").unwrap().and(only.clone());
        let doc = |n: i64, kind: &str| obj(json!({"_subset_": n, "kind": kind}));
        assert!(only.matches(&doc(7, "y")) && !only.matches(&doc(8, "y")));
        assert!(both.matches(&doc(3, "x")) && !both.matches(&doc(3, "y")));
        assert!(!both.matches(&doc(4, "x")));
        for f in [only, both] {
            assert_eq!(Filter::parse(f.source()).unwrap().expr, f.expr, "{}", f.source());
        }
    }

    #[test]
    fn reports_what_and_where() {
        for (src, pos) in [
            ("year =", 6),
            ("year 2020", 5),
            ("(year = 1", 9),
            ("year = 1 xor", 9),
            ("lang in [\"a\" \"b\"]", 13),
            ("and = 1", 0),
            ("x = \"open", 4),
            ("x = [1]", 4),
        ] {
            match Filter::parse(src) {
                Err(IndexError::Filter { pos: p, .. }) => assert_eq!(p, pos, "{src}"),
                other => panic!("{src}: {other:?}"),
            }
        }
    }
}
