//! next-plaid's filters: SQL `WHERE` conditions over the metadata, with `?` parameters,
//! translated into a [`Filter`] with SQL's meaning.
//!
//! ```text
//! or      := and ("OR" and)*
//! and     := not ("AND" not)*
//! not     := "NOT" not | "(" or ")" | column predicate
//! predicate := op value | "IS" ["NOT"] "NULL" | ["NOT"] "IN" "(" value ("," value)* ")"
//!            | ["NOT"] "LIKE" value | ["NOT"] "BETWEEN" value "AND" value
//! op      := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! column  := a name, or a "double-quoted" or `backquoted` one
//! value   := "?" (the next parameter) | a number | a 'single-quoted' string | NULL | TRUE | FALSE
//! ```
//!
//! Keywords are case-insensitive. Parameters are values bound in order; they are never read
//! as SQL text. A column is the metadata field of that name; a document without the field, or
//! with `null` there, has the column NULL.
//!
//! SQL's three-valued logic is kept: a comparison with NULL is unknown, `NOT unknown` is
//! unknown, and a document matches only when the whole condition is true. Each condition `c`
//! is translated into the tartan filter "c is true"; for `NOT c` that is "c is false", built
//! by the same rules (De Morgan through AND and OR; a comparison is false when the column is
//! not NULL and the opposite comparison holds). Values of different types are never equal and
//! never ordered, as in tartan's filters (SQLite orders numbers before text instead).

use serde_json::Value;

use super::{Cursor, Expr, Filter, Op, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
use crate::error::{IndexError, Result};

/// A parsed SQL condition, before translation.
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(String, Op, Value),
    IsNull(String),
    In(String, Vec<Value>),
    Like(String, String),
}

impl Filter {
    /// Parses a SQL `WHERE` condition (next-plaid's filter form, e.g.
    /// `category = ? AND year > ?`) with its `?` parameters, one JSON value each, in order.
    /// Anything outside the subset (functions, subqueries, arithmetic, other keywords) is an
    /// error naming the token and its byte position.
    pub fn from_sql(condition: &str, params: &[Value]) -> Result<Self> {
        if condition.len() > MAX_FILTER_LEN {
            return Err(IndexError::Filter {
                pos: MAX_FILTER_LEN,
                reason: format!(
                    "the condition is {} bytes, the limit is {MAX_FILTER_LEN}",
                    condition.len()
                ),
            });
        }
        let mut p = Sql { c: Cursor::new(condition, is_word), params, next_param: 0 };
        let cond = p.or()?;
        p.c.skip_ws();
        if p.c.pos < condition.len() {
            return Err(p.err("expected AND, OR or the end of the condition"));
        }
        if p.next_param != params.len() {
            return Err(IndexError::Filter {
                pos: condition.len(),
                reason: format!(
                    "the condition has {} `?` placeholders but {} parameters were given",
                    p.next_param,
                    params.len()
                ),
            });
        }
        let expr = truth(&cond, true);
        let src = super::print(&expr);
        Ok(Filter { expr, src })
    }
}

/// The tartan expression for "`c` is `want`" (true, or false) under SQL's logic.
fn truth(c: &Cond, want: bool) -> Expr {
    let field = |name: &String| vec![name.clone()];
    // The column holds a value: present and not null.
    let not_null = |name: &String| {
        Expr::And(vec![
            Expr::Exists(field(name)),
            Expr::Not(Box::new(Expr::Cmp(field(name), Op::Eq, Value::Null))),
        ])
    };
    match (c, want) {
        (Cond::And(cs), true) | (Cond::Or(cs), false) => {
            Expr::And(cs.iter().map(|c| truth(c, want)).collect())
        }
        (Cond::Or(cs), true) | (Cond::And(cs), false) => {
            Expr::Or(cs.iter().map(|c| truth(c, want)).collect())
        }
        (Cond::Not(c), _) => truth(c, !want),
        // Comparing with NULL is never true nor false.
        (Cond::Cmp(_, _, Value::Null), _) => never(),
        (Cond::Cmp(name, op, v), true) => Expr::Cmp(field(name), *op, v.clone()),
        (Cond::Cmp(name, op, v), false) => Expr::Cmp(field(name), negate(*op), v.clone()),
        (Cond::IsNull(name), true) => Expr::Not(Box::new(not_null(name))),
        (Cond::IsNull(name), false) => not_null(name),
        (Cond::In(name, set), true) => Expr::In(field(name), set.clone()),
        (Cond::In(name, set), false) => {
            // NULL in the list makes a miss unknown, not false.
            if set.iter().any(Value::is_null) {
                return never();
            }
            Expr::And(vec![not_null(name), Expr::Not(Box::new(Expr::In(field(name), set.clone())))])
        }
        (Cond::Like(name, pattern), true) => Expr::Like(field(name), pattern.clone()),
        (Cond::Like(name, pattern), false) => Expr::And(vec![
            not_null(name),
            Expr::Not(Box::new(Expr::Like(field(name), pattern.clone()))),
        ]),
    }
}

/// A filter no document matches, in a form the filter language can print and parse back.
fn never() -> Expr {
    let nothing = vec![String::new()];
    Expr::And(vec![Expr::Exists(nothing.clone()), Expr::Not(Box::new(Expr::Exists(nothing)))])
}

/// The comparison that holds exactly when `op` fails, for two values of one type.
fn negate(op: Op) -> Op {
    match op {
        Op::Eq => Op::Ne,
        Op::Ne => Op::Eq,
        Op::Lt => Op::Ge,
        Op::Le => Op::Gt,
        Op::Gt => Op::Le,
        Op::Ge => Op::Lt,
    }
}

struct Sql<'a> {
    c: Cursor<'a>,
    params: &'a [Value],
    next_param: usize,
}

impl Sql<'_> {
    fn err(&self, reason: &str) -> IndexError {
        let rest = self.c.rest();
        let token: String = match rest.chars().next() {
            None => "the end".into(),
            Some(c) if is_word(c) => {
                let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
                format!("{:?}", &rest[..end])
            }
            Some(c) => format!("{:?}", c.to_string()),
        };
        IndexError::Filter { pos: self.c.pos, reason: format!("{reason}, found {token}") }
    }
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if !self.c.descend() {
            return Err(self.err(&format!("nested deeper than {MAX_FILTER_DEPTH} levels")));
        }
        let out = f(self);
        self.c.depth -= 1;
        out
    }
    fn or(&mut self) -> Result<Cond> {
        let mut terms = vec![self.and()?];
        while self.c.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one") } else { Cond::Or(terms) })
    }
    fn and(&mut self) -> Result<Cond> {
        let mut terms = vec![self.not()?];
        while self.c.keyword("and") {
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one") } else { Cond::And(terms) })
    }
    fn not(&mut self) -> Result<Cond> {
        if self.c.keyword("not") {
            return self.nested(|p| Ok(Cond::Not(Box::new(p.not()?))));
        }
        if self.c.punct("(") {
            return self.nested(|p| {
                let c = p.or()?;
                if !p.c.punct(")") {
                    return Err(p.err("expected `)`"));
                }
                Ok(c)
            });
        }
        let column = self.column()?;
        self.predicate(column)
    }
    fn predicate(&mut self, column: String) -> Result<Cond> {
        if self.c.keyword("is") {
            let negated = self.c.keyword("not");
            if !self.c.keyword("null") {
                return Err(self.err("expected NULL after IS"));
            }
            let c = Cond::IsNull(column);
            return Ok(if negated { Cond::Not(Box::new(c)) } else { c });
        }
        let negated = self.c.keyword("not");
        let c = if self.c.keyword("in") {
            if !self.c.punct("(") {
                return Err(self.err("expected `(` after IN"));
            }
            let mut set = vec![self.value()?];
            while self.c.punct(",") {
                set.push(self.value()?);
            }
            if !self.c.punct(")") {
                return Err(self.err("expected `,` or `)`"));
            }
            Cond::In(column, set)
        } else if self.c.keyword("like") {
            let at = self.c.pos;
            match self.value()? {
                Value::String(pattern) => Cond::Like(column, pattern),
                _ => {
                    return Err(IndexError::Filter {
                        pos: at,
                        reason: "LIKE takes a string pattern".into(),
                    })
                }
            }
        } else if self.c.keyword("between") {
            let low = self.value()?;
            if !self.c.keyword("and") {
                return Err(self.err("expected AND in BETWEEN"));
            }
            let high = self.value()?;
            Cond::And(vec![Cond::Cmp(column.clone(), Op::Ge, low), Cond::Cmp(column, Op::Le, high)])
        } else if negated {
            return Err(self.err("expected IN, LIKE or BETWEEN after NOT"));
        } else {
            let ops = [
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<>", Op::Ne),
                ("!=", Op::Ne),
                ("==", Op::Eq),
                ("=", Op::Eq),
                ("<", Op::Lt),
                (">", Op::Gt),
            ];
            let Some(op) = ops.iter().find(|(text, _)| self.c.punct(text)).map(|&(_, op)| op)
            else {
                return Err(self.err("expected a comparison, IS, IN, LIKE or BETWEEN"));
            };
            Cond::Cmp(column, op, self.value()?)
        };
        Ok(if negated { Cond::Not(Box::new(c)) } else { c })
    }
    fn column(&mut self) -> Result<String> {
        self.c.skip_ws();
        for (open, close) in [('"', '"'), ('`', '`'), ('[', ']')] {
            if let Some(body) = self.c.rest().strip_prefix(open) {
                let Some(end) = body.find(close) else {
                    return Err(self.err("unterminated quoted column name"));
                };
                let name = body[..end].to_string();
                self.c.pos += end + 2;
                return Ok(name);
            }
        }
        let rest = self.c.rest();
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        let keywords = ["and", "or", "not", "is", "in", "like", "between", "null", "true", "false"];
        if word.is_empty()
            || word.starts_with(|c: char| c.is_ascii_digit())
            || keywords.iter().any(|k| word.eq_ignore_ascii_case(k))
        {
            return Err(self.err("expected a column name"));
        }
        let name = word.to_string();
        self.c.pos += end;
        if self.c.rest().trim_start().starts_with('(') {
            return Err(self.err("functions are not supported"));
        }
        Ok(name)
    }
    fn value(&mut self) -> Result<Value> {
        self.c.skip_ws();
        if self.c.punct("?") {
            let Some(v) = self.params.get(self.next_param) else {
                return Err(IndexError::Filter {
                    pos: self.c.pos - 1,
                    reason: format!(
                        "`?` number {} has no parameter ({} given)",
                        self.next_param + 1,
                        self.params.len()
                    ),
                });
            };
            self.next_param += 1;
            return match v {
                Value::Array(_) | Value::Object(_) => Err(IndexError::Filter {
                    pos: self.c.pos - 1,
                    reason: format!(
                        "parameter {} is {v}: parameters are numbers, strings, booleans or null",
                        self.next_param
                    ),
                }),
                v => Ok(v.clone()),
            };
        }
        if let Some(body) = self.c.rest().strip_prefix('\'') {
            // SQL strings double a quote to escape it.
            let mut out = String::new();
            let mut chars = body.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                        chars.next();
                        out.push('\'');
                        continue;
                    }
                    self.c.pos += i + 2;
                    return Ok(Value::String(out));
                }
                out.push(c);
            }
            return Err(self.err("unterminated string"));
        }
        for (kw, v) in
            [("null", Value::Null), ("true", Value::Bool(true)), ("false", Value::Bool(false))]
        {
            if self.c.keyword(kw) {
                return Ok(v);
            }
        }
        let rest = self.c.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')))
            .unwrap_or(rest.len());
        match rest[..end].parse::<serde_json::Number>() {
            Ok(n) if end > 0 => {
                self.c.pos += end;
                Ok(Value::Number(n))
            }
            _ => Err(self.err("expected a value (?, a number, a 'string', NULL, TRUE, FALSE)")),
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    /// Matches of `cond` over documents 0..: what SQLite's WHERE would select.
    fn selected(cond: &str, params: &[Value], docs: &[Map<String, Value>]) -> Vec<usize> {
        let f = Filter::from_sql(cond, params).unwrap_or_else(|e| panic!("{cond}: {e}"));
        // The printed form parses back to the same filter (what a remote shard receives).
        let again = Filter::parse(f.source()).unwrap_or_else(|e| panic!("{}: {e}", f.source()));
        assert_eq!(again.expr, f.expr, "{cond} printed as {}", f.source());
        (0..docs.len()).filter(|&i| f.matches(&docs[i])).collect()
    }

    #[test]
    fn three_valued_logic_as_sqlite() {
        let docs: Vec<_> = [
            json!({"category": "a", "year": 2020, "title": "Deep Nets"}),
            json!({"category": "b", "year": 2021, "title": "deep sea"}),
            json!({"category": "a", "year": null}),
            json!({"year": 2019, "title": "Shallow"}),
            json!({}),
        ]
        .into_iter()
        .map(obj)
        .collect();
        // Expected rows are what SQLite returns on a table of these rows (NULL for missing).
        let cases: Vec<(&str, Vec<Value>, Vec<usize>)> = vec![
            ("category = ? AND year > ?", vec![json!("a"), json!(2019)], vec![0]),
            ("category = ?", vec![json!("a")], vec![0, 2]),
            ("NOT category = ?", vec![json!("a")], vec![1]),
            ("category != 'a'", vec![], vec![1]),
            // Row 2's year is NULL: the AND is unknown, and so is its NOT. Row 3's category is
            // NULL but its year is not 2020: the AND is false, its NOT true.
            ("NOT (category = 'a' AND year = 2020)", vec![], vec![1, 3]),
            ("NOT (category = 'a' OR year = 2019)", vec![], vec![1]),
            ("year IS NULL", vec![], vec![2, 4]),
            ("year IS NOT NULL", vec![], vec![0, 1, 3]),
            ("NOT year IS NULL", vec![], vec![0, 1, 3]),
            ("year IN (?, ?)", vec![json!(2019), json!(2021)], vec![1, 3]),
            ("year NOT IN (2019, 2021)", vec![], vec![0]),
            ("year NOT IN (2019, NULL)", vec![], vec![]),
            ("title LIKE 'deep%'", vec![], vec![0, 1]),
            ("title NOT LIKE '%e_p%'", vec![], vec![3]),
            ("year BETWEEN 2020 AND ?", vec![json!(2021)], vec![0, 1]),
            ("year NOT BETWEEN 2020 AND 2021", vec![], vec![3]),
            ("year = NULL", vec![], vec![]),
            ("NOT year = NULL", vec![], vec![]),
            ("(category = 'b' OR category IS NULL) AND year >= 2019", vec![], vec![1, 3]),
            ("\"category\" = 'a' AND `year` = 2020", vec![], vec![0]),
            ("category = ? OR 1", vec![json!("x")], vec![]),
        ];
        for (cond, params, want) in cases {
            if cond.ends_with("OR 1") {
                // Literals on the left are outside the subset.
                assert!(Filter::from_sql(cond, &params).is_err());
                continue;
            }
            assert_eq!(selected(cond, &params, &docs), want, "{cond}");
        }
    }

    #[test]
    fn parameters_are_values_not_text() {
        let docs = vec![obj(json!({"name": "x' OR '1'='1"})), obj(json!({"name": "y"}))];
        assert_eq!(selected("name = ?", &[json!("x' OR '1'='1")], &docs), [0]);
        assert_eq!(selected("name = ?", &[json!("y' OR 1=1 --")], &docs), Vec::<usize>::new());
        assert_eq!(selected("name = 'it''s'", &[], &[obj(json!({"name": "it's"}))]), [0]);
    }

    #[test]
    fn outside_the_subset_names_the_token() {
        for (cond, params, token) in [
            ("year > ? AND", vec![json!(1)], "the end"),
            ("lower(title) = 'x'", vec![], "functions are not supported"),
            ("year + 1 = 2", vec![], "\"+\""),
            ("year IN (SELECT 1)", vec![], "\"SELECT\""),
            ("year = ?", vec![], "has no parameter"),
            ("year = ?", vec![json!(1), json!(2)], "2 parameters"),
            ("year = ?", vec![json!([1])], "parameters are numbers"),
            ("year LIKE 3", vec![], "string pattern"),
            ("year IS 3", vec![], "expected NULL"),
            ("year NOT = 3", vec![], "after NOT"),
            ("title = 'open", vec![], "unterminated"),
            ("; DROP TABLE x", vec![], "\";\""),
        ] {
            let err = Filter::from_sql(cond, &params).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(token), "{cond}: {err}");
        }
        let deep = format!("{}year = 1{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::from_sql(&deep, &[]).unwrap_err().to_string().contains("nested deeper"));
    }
}
