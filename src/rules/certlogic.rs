//! The CertLogic 1.2 evaluator and validator (eu-dcc-business-rules
//! certlogic/specification/README.md): a JsonLogic subset with CertLogic's truthiness (values
//! that are neither truthy nor falsy are errors where a boolean is needed), integer-only
//! arithmetic and comparison, date-times made by `plusTime`/`dccDateOfBirth`, `reduce`, and
//! `extractFromUVCI`.
//!
//! Where the prose is silent, the behaviour is certlogic-js's (`evaluator.ts`,
//! `internals.ts`), the implementation the specification's test suite runs against: `===`
//! and `in` compare as JavaScript's `===` (arrays, objects and date-times only equal
//! themselves), `var` paths read array indices with `parseInt`, and extra operands of `if`,
//! `!`, `plusTime`, `reduce` and `extractFromUVCI` are ignored by the evaluator (the validator
//! reports them).
//!
//! Why not `datalogic-rs`: its custom operators receive their arguments already evaluated
//! (docs.rs `datalogic_rs::CustomOperator`), so CertLogic's lazy `if`/`and` (a guard protects
//! a `plusTime` on a missing date) cannot be expressed with them, and its built-in `<`, `===`,
//! `and`, `reduce` and truthiness are JsonLogic's, which coerce where CertLogic must fail.
//! Replacing every operator would leave only its parser; the evaluator here is ~400 lines.

use std::rc::Rc;

use serde_json::Value as Json;

use super::datetime::{self, TimeUnit};

/// Evaluation steps allowed per evaluation: a rule set's logic over one certificate takes a
/// few hundred; nested `reduce`s over a hostile payload could take quadratic time.
const MAX_STEPS: u32 = 1_000_000;

/// Nesting allowed in an expression (serde_json already refuses more than 128 levels).
const MAX_DEPTH: u32 = 128;

/// A value during evaluation: JSON borrowed from the expression or the data, or made by an
/// operation (numbers, booleans, date-times, evaluated arrays, the `reduce` context).
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// JSON `null` (also a missing value).
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (CertLogic integers and data numbers).
    Number(f64),
    /// A string.
    String(&'a str),
    /// An array or object borrowed from the data (compared by identity, as in JavaScript).
    Json(&'a Json),
    /// An array made by evaluating an array expression.
    List(Rc<Vec<Value<'a>>>),
    /// An object made by the evaluator: the data context of `reduce`'s lambda, or a data
    /// context assembled from parts.
    Record(Rc<Vec<(&'a str, Value<'a>)>>),
    /// A date-time, milliseconds since 1970-01-01T00:00:00Z.
    DateTime(i64),
}

impl<'a> Value<'a> {
    /// A value over borrowed JSON.
    pub fn from_json(json: &'a Json) -> Value<'a> {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Value::String(s),
            Json::Array(_) | Json::Object(_) => Value::Json(json),
        }
    }

    /// An object made of named values (how a caller builds `{"payload", "external"}` without
    /// copying either).
    pub fn record(fields: Vec<(&'a str, Value<'a>)>) -> Value<'a> {
        Value::Record(Rc::new(fields))
    }

    /// The value as JSON; a date-time becomes its `toISOString` form, as `JSON.stringify`
    /// would print it.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_json(*n),
            Value::String(s) => Json::String((*s).to_owned()),
            Value::Json(j) => (*j).clone(),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Record(fields) => Json::Object(fields.iter().map(|(k, v)| ((*k).to_owned(), v.to_json())).collect()),
            Value::DateTime(t) => Json::String(datetime::to_iso_string(*t)),
        }
    }

    /// CertLogic "boolsiness": `Some(true)` truthy, `Some(false)` falsy, `None` neither
    /// (date-times; numbers are truthy unless zero).
    pub fn truthiness(&self) -> Option<bool> {
        match self {
            Value::Null => Some(false),
            Value::Bool(b) => Some(*b),
            Value::Number(n) => Some(*n != 0.0),
            Value::String(s) => Some(!s.is_empty()),
            Value::Json(Json::Array(a)) => Some(!a.is_empty()),
            Value::Json(Json::Object(o)) => Some(!o.is_empty()),
            Value::Json(j) => Value::from_json(j).truthiness(),
            Value::List(items) => Some(!items.is_empty()),
            Value::Record(fields) => Some(!fields.is_empty()),
            Value::DateTime(_) => None,
        }
    }

    fn as_int(&self) -> Option<f64> {
        match self {
            Value::Number(n) if n.is_finite() && n.fract() == 0.0 => Some(*n),
            _ => None,
        }
    }

    /// JavaScript `===`: numbers by value, strings by content, booleans and `null` by value;
    /// arrays and objects only when they are the same one.
    fn strict_equals(&self, other: &Value<'a>) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Json(a), Value::Json(b)) => std::ptr::eq(*a, *b),
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Record(a), Value::Record(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// One step of a `var` path (certlogic-js `access`): an integer fragment (`parseInt`)
    /// indexes arrays and strings and names an object key in its decimal form; `length`
    /// reads an array's or a string's length; anything else is an object key.
    fn get(&self, fragment: &str) -> Value<'a> {
        let index = parse_int(fragment);
        match self {
            Value::Json(Json::Object(map)) => {
                let found = match index {
                    Some(i) => map.get(&i.to_string()),
                    None => map.get(fragment),
                };
                found.map_or(Value::Null, Value::from_json)
            }
            Value::Json(Json::Array(items)) => match index {
                Some(i) => usize::try_from(i).ok().and_then(|i| items.get(i)).map_or(Value::Null, Value::from_json),
                None if fragment == "length" => Value::Number(items.len() as f64),
                None => Value::Null,
            },
            Value::List(items) => match index {
                Some(i) => usize::try_from(i).ok().and_then(|i| items.get(i)).cloned().unwrap_or(Value::Null),
                None if fragment == "length" => Value::Number(items.len() as f64),
                None => Value::Null,
            },
            Value::Record(fields) => {
                let key = index.map(|i| i.to_string());
                let key = key.as_deref().unwrap_or(fragment);
                fields.iter().find(|(k, _)| *k == key).map_or(Value::Null, |(_, v)| v.clone())
            }
            Value::String(s) => {
                // JavaScript strings index UTF-16 code units; a unit inside a surrogate pair
                // has no string of its own here and reads as null.
                match index {
                    Some(i) => {
                        usize::try_from(i).ok().and_then(|i| utf16_unit(s, i)).map_or(Value::Null, Value::String)
                    }
                    None if fragment == "length" => Value::Number(s.encode_utf16().count() as f64),
                    None => Value::Null,
                }
            }
            _ => Value::Null,
        }
    }
}

/// The character at UTF-16 index `i` of `s`, when it is a whole character.
fn utf16_unit(s: &str, i: usize) -> Option<&str> {
    let mut unit = 0;
    for (at, c) in s.char_indices() {
        if unit == i {
            return (c.len_utf16() == 1).then(|| &s[at..at + c.len_utf8()]);
        }
        unit += c.len_utf16();
        if unit > i {
            return None;
        }
    }
    None
}

/// JavaScript `parseInt(s, 10)` when it gives an integer: leading whitespace, a sign, then
/// at least one digit; what follows the digits is ignored.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = t.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    // Beyond i64 no array or key can match; saturate so the lookup simply misses.
    let value = t[..n].parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -value } else { value })
}

fn number_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// Why an expression could not be evaluated (certlogic-js throws; a rule counts as "open").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// `null`, a non-integer number, or an object with other than one key (CertLogic spec,
    /// "Literal values").
    #[error("not a CertLogic expression: {0}")]
    NotAnExpression(&'static str),
    /// An operator outside CertLogic.
    #[error("unrecognised operator \"{0}\"")]
    UnknownOperator(String),
    /// An operation not of the form `{"<operator>": [<values...>]}`, or `var` without a
    /// string path.
    #[error("\"{0}\" is not of the form {{\"{0}\": [<operands>]}}")]
    Form(String),
    /// The wrong number of operands.
    #[error("\"{operator}\" needs {expected} operands, not {found}")]
    Arity {
        /// The operator.
        operator: String,
        /// What it takes.
        expected: &'static str,
        /// What it got.
        found: usize,
    },
    /// An operand of the wrong type (spec: "type mismatches … throw an error").
    #[error("\"{operator}\": {problem}")]
    Operand {
        /// The operator.
        operator: &'static str,
        /// What was wrong.
        problem: &'static str,
    },
    /// A value that is neither truthy nor falsy where one is needed (spec, "Truthy and falsy
    /// values").
    #[error("\"{0}\": an operand is neither truthy nor falsy")]
    NeitherTruthyNorFalsy(&'static str),
    /// A date or date-time string outside the formats `plusTime` allows.
    #[error("\"{0}\": not an allowed date or date-time")]
    DateFormat(&'static str),
    /// More than `MAX_STEPS` steps or `MAX_DEPTH` levels.
    #[error("the expression takes too long to evaluate")]
    Budget,
}

/// Evaluates a CertLogic expression over a data context.
pub fn evaluate<'a>(expr: &'a Json, data: &Value<'a>) -> Result<Value<'a>, EvalError> {
    Evaluator { steps: 0 }.eval(expr, data, 0)
}

struct Evaluator {
    steps: u32,
}

const INFIX: [&str; 12] = ["===", "and", ">", "<", ">=", "<=", "in", "+", "after", "before", "not-after", "not-before"];

impl Evaluator {
    fn eval<'a>(&mut self, expr: &'a Json, data: &Value<'a>, depth: u32) -> Result<Value<'a>, EvalError> {
        self.steps += 1;
        if self.steps > MAX_STEPS || depth > MAX_DEPTH {
            return Err(EvalError::Budget);
        }
        let depth = depth + 1;
        match expr {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) => Ok(Value::String(s)),
            Json::Number(_) => {
                let v = Value::from_json(expr);
                v.as_int().map(Value::Number).ok_or(EvalError::NotAnExpression("a non-integer number"))
            }
            Json::Null => Err(EvalError::NotAnExpression("null")),
            Json::Array(items) => {
                let values = items.iter().map(|e| self.eval(e, data, depth)).collect::<Result<Vec<_>, _>>()?;
                Ok(Value::List(Rc::new(values)))
            }
            Json::Object(map) => {
                let mut entries = map.iter();
                let (Some((operator, values)), None) = (entries.next(), entries.next()) else {
                    return Err(EvalError::NotAnExpression("an object with other than one key"));
                };
                if operator == "var" {
                    let Json::String(path) = values else { return Err(EvalError::Form("var".into())) };
                    return Ok(access(data, path));
                }
                let values = match values {
                    Json::Array(v) if !v.is_empty() => v.as_slice(),
                    _ => return Err(EvalError::Form(operator.clone())),
                };
                self.operation(operator, values, data, depth)
            }
        }
    }

    fn operation<'a>(
        &mut self,
        operator: &str,
        values: &'a [Json],
        data: &Value<'a>,
        depth: u32,
    ) -> Result<Value<'a>, EvalError> {
        match operator {
            "if" => {
                let [guard, then, otherwise, ..] = values else {
                    return Err(arity("if", "3", values.len()));
                };
                match self.eval(guard, data, depth)?.truthiness() {
                    Some(true) => self.eval(then, data, depth),
                    Some(false) => self.eval(otherwise, data, depth),
                    None => Err(EvalError::NeitherTruthyNorFalsy("if")),
                }
            }
            op if INFIX.contains(&op) => self.infix(op, values, data, depth),
            "!" => match self.eval(&values[0], data, depth)?.truthiness() {
                Some(t) => Ok(Value::Bool(!t)),
                None => Err(EvalError::NeitherTruthyNorFalsy("!")),
            },
            "plusTime" => {
                let amount = values.get(1).and_then(literal_int).ok_or(EvalError::Operand {
                    operator: "plusTime",
                    problem: "the amount (operand 2) must be an integer",
                })?;
                let unit =
                    values.get(2).and_then(Json::as_str).and_then(TimeUnit::parse).ok_or(EvalError::Operand {
                        operator: "plusTime",
                        problem: "the unit (operand 3) must be \"year\", \"month\", \"day\" or \"hour\"",
                    })?;
                let Value::String(s) = self.eval(&values[0], data, depth)? else {
                    return Err(EvalError::Operand {
                        operator: "plusTime",
                        problem: "the date (operand 1) must be a string",
                    });
                };
                datetime::plus_time(s, amount, unit).map(Value::DateTime).ok_or(EvalError::DateFormat("plusTime"))
            }
            "reduce" => {
                let [operand, lambda, initial, ..] = values else {
                    return Err(arity("reduce", "3", values.len()));
                };
                let items = self.eval(operand, data, depth)?;
                let items: Vec<Value<'a>> = match items {
                    Value::Null => return self.eval(initial, data, depth),
                    Value::Json(Json::Array(a)) => a.iter().map(Value::from_json).collect(),
                    Value::List(l) => l.as_ref().clone(),
                    _ => {
                        return Err(EvalError::Operand {
                            operator: "reduce",
                            problem: "the operand must be an array or null",
                        });
                    }
                };
                let mut accumulator = self.eval(initial, data, depth)?;
                for current in items {
                    let context = Value::record(vec![("accumulator", accumulator), ("current", current)]);
                    accumulator = self.eval(lambda, &context, depth)?;
                }
                Ok(accumulator)
            }
            "extractFromUVCI" => {
                let uvci = match self.eval(&values[0], data, depth)? {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    _ => {
                        return Err(EvalError::Operand {
                            operator: "extractFromUVCI",
                            problem: "the UVCI (operand 1) must be a string or null",
                        });
                    }
                };
                let index = values.get(1).and_then(literal_int).ok_or(EvalError::Operand {
                    operator: "extractFromUVCI",
                    problem: "the index (operand 2) must be an integer",
                })?;
                Ok(uvci.and_then(|u| extract_from_uvci(u, index)).map_or(Value::Null, Value::String))
            }
            "dccDateOfBirth" => {
                let Value::String(s) = self.eval(&values[0], data, depth)? else {
                    return Err(EvalError::Operand {
                        operator: "dccDateOfBirth",
                        problem: "the operand must be a string",
                    });
                };
                datetime::dcc_date_of_birth(s).map(Value::DateTime).ok_or(EvalError::DateFormat("dccDateOfBirth"))
            }
            other => Err(EvalError::UnknownOperator(other.to_owned())),
        }
    }

    fn infix<'a>(
        &mut self,
        operator: &str,
        values: &'a [Json],
        data: &Value<'a>,
        depth: u32,
    ) -> Result<Value<'a>, EvalError> {
        let n = values.len();
        let comparison = matches!(operator, "<" | ">" | "<=" | ">=" | "after" | "before" | "not-after" | "not-before");
        match operator {
            "and" if n < 2 => return Err(arity(operator, "at least 2", n)),
            _ if comparison && !(2..=3).contains(&n) => return Err(arity(operator, "2 or 3", n)),
            "===" | "in" | "+" if n != 2 => return Err(arity(operator, "2", n)),
            _ => {}
        }
        if operator == "and" {
            // Lazy, left to right: the first falsy operand, or the last one.
            let mut last = Value::Bool(true);
            for expr in values {
                last = self.eval(expr, data, depth)?;
                match last.truthiness() {
                    Some(true) => {}
                    Some(false) => return Ok(last),
                    None => return Err(EvalError::NeitherTruthyNorFalsy("and")),
                }
            }
            return Ok(last);
        }
        let args = values.iter().map(|e| self.eval(e, data, depth)).collect::<Result<Vec<_>, _>>()?;
        match operator {
            "===" => Ok(Value::Bool(args[0].strict_equals(&args[1]))),
            "in" => {
                let found = match &args[1] {
                    Value::Json(Json::Array(items)) => {
                        items.iter().any(|i| args[0].strict_equals(&Value::from_json(i)))
                    }
                    Value::List(items) => items.iter().any(|i| args[0].strict_equals(i)),
                    _ => {
                        return Err(EvalError::Operand {
                            operator: "in",
                            problem: "the right-hand side must be an array",
                        });
                    }
                };
                Ok(Value::Bool(found))
            }
            "+" => match (args[0].as_int(), args[1].as_int()) {
                (Some(a), Some(b)) => Ok(Value::Number(a + b)),
                _ => Err(EvalError::Operand { operator: "+", problem: "both operands must be integers" }),
            },
            _ => {
                let dates = matches!(operator, "after" | "before" | "not-after" | "not-before");
                let keys = args
                    .iter()
                    .map(|a| match a {
                        Value::DateTime(t) if dates => Some(*t as f64),
                        _ if !dates => a.as_int(),
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>();
                let Some(keys) = keys else {
                    return Err(EvalError::Operand {
                        operator: static_name(operator),
                        problem: if dates {
                            "all operands must be date-times"
                        } else {
                            "all operands must be integers"
                        },
                    });
                };
                let holds = |l: f64, r: f64| match operator {
                    "<" | "before" => l < r,
                    ">" | "after" => l > r,
                    "<=" | "not-after" => l <= r,
                    _ => l >= r,
                };
                Ok(Value::Bool(keys.windows(2).all(|w| holds(w[0], w[1]))))
            }
        }
    }
}

fn arity(operator: &str, expected: &'static str, found: usize) -> EvalError {
    EvalError::Arity { operator: operator.to_owned(), expected, found }
}

fn static_name(operator: &str) -> &'static str {
    INFIX.iter().find(|o| **o == operator).copied().unwrap_or("comparison")
}

/// An integer literal operand (`plusTime`'s amount, `extractFromUVCI`'s index).
fn literal_int(j: &Json) -> Option<i64> {
    let n = j.as_f64()?;
    (n.is_finite() && n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0).then_some(n as i64)
}

/// certlogic-js `access`: `""` is the whole context; otherwise each `.`-separated fragment
/// drills down, and a missing value anywhere gives `null`.
fn access<'a>(data: &Value<'a>, path: &str) -> Value<'a> {
    if path.is_empty() {
        return data.clone();
    }
    let mut current = data.clone();
    for fragment in path.split('.') {
        if matches!(current, Value::Null) {
            return Value::Null;
        }
        current = current.get(fragment);
    }
    current
}

/// The spec's `extractFromUVCI`: without an optional `URN:UVCI:` prefix, split on `/`, `#`
/// and `:`, the fragment at `index`.
pub(crate) fn extract_from_uvci(uvci: &str, index: i64) -> Option<&str> {
    let index = usize::try_from(index).ok()?;
    uvci.strip_prefix("URN:UVCI:").unwrap_or(uvci).split(['/', '#', ':']).nth(index)
}

/// One reason an expression is not well-formed CertLogic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationIssue {
    /// Where, as a JSON pointer into the expression.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// Checks that an expression is well-formed CertLogic without evaluating it (certlogic-js
/// `validateFormat`): known operators, right arities, integer literals, `var` paths without
/// empty fragments, literal `plusTime` amounts and units and `extractFromUVCI` indices.
pub fn validate(expr: &Json) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    validate_at(expr, &mut String::new(), &mut issues);
    issues
}

fn validate_at(expr: &Json, at: &mut String, issues: &mut Vec<ValidationIssue>) {
    let mut issue = |at: &str, message: String| issues.push(ValidationIssue { at: at.to_owned(), message });
    match expr {
        Json::Bool(_) | Json::String(_) => {}
        Json::Number(n) => {
            // JavaScript's Number.isInteger: any finite whole number, however large.
            if !n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0) {
                issue(at, format!("{n} is a non-integer number"));
            }
        }
        Json::Null => issue(at, "null is not a CertLogic expression".into()),
        Json::Array(items) => validate_items(items, items.len(), at, issues),
        Json::Object(map) => {
            if map.len() != 1 {
                issue(at, format!("an expression object must have exactly one key, not {}", map.len()));
                return;
            }
            let Some((operator, values)) = map.iter().next() else { return };
            if operator == "var" {
                match values {
                    Json::String(path) if path.is_empty() || path.split('.').all(|f| !f.is_empty()) => {}
                    Json::String(path) => issue(at, format!("the data access path {path:?} has an empty fragment")),
                    _ => issue(at, "not of the form {\"var\": \"<path>\"}".into()),
                }
                return;
            }
            let Json::Array(values) = values else {
                issue(at, format!("operation not of the form {{\"{operator}\": [<values...>]}}"));
                return;
            };
            let n = values.len();
            let (ok, expected, validated) = match operator.as_str() {
                "if" | "reduce" | "plusTime" => (n == 3, "exactly 3", 3),
                "and" => (n >= 2, "at least 2", n),
                "<" | ">" | "<=" | ">=" | "after" | "before" | "not-after" | "not-before" => {
                    (matches!(n, 2 | 3), "2 or 3", 3)
                }
                "===" | "in" | "+" | "extractFromUVCI" => (n == 2, "exactly 2", 2),
                "!" | "dccDateOfBirth" => (n == 1, "exactly 1", 1),
                other => {
                    issue(at, format!("unrecognised operator: {other:?}"));
                    return;
                }
            };
            if !ok {
                issue(at, format!("\"{operator}\" must have {expected} operands, but it has {n}"));
            }
            let base = at.len();
            at.push('/');
            at.push_str(&operator.replace('~', "~0").replace('/', "~1"));
            match operator.as_str() {
                "plusTime" => {
                    validate_items(values, 1, at, issues);
                    if values.get(1).is_some_and(|a| literal_int(a).is_none()) {
                        issues.push(ValidationIssue {
                            at: format!("{at}/1"),
                            message: "the amount must be an integer".into(),
                        });
                    }
                    if values.get(2).is_some_and(|u| u.as_str().and_then(TimeUnit::parse).is_none()) {
                        issues.push(ValidationIssue {
                            at: format!("{at}/2"),
                            message: "the unit must be one of year, month, day, hour".into(),
                        });
                    }
                }
                "extractFromUVCI" => {
                    validate_items(values, 1, at, issues);
                    if values.get(1).is_some_and(|a| literal_int(a).is_none()) {
                        issues.push(ValidationIssue {
                            at: format!("{at}/1"),
                            message: "the index must be an integer".into(),
                        });
                    }
                }
                _ => validate_items(values, validated, at, issues),
            }
            at.truncate(base);
        }
    }
}

fn validate_items(items: &[Json], limit: usize, at: &mut String, issues: &mut Vec<ValidationIssue>) {
    for (i, item) in items.iter().enumerate().take(limit) {
        let base = at.len();
        at.push('/');
        at.push_str(&i.to_string());
        validate_at(item, at, issues);
        at.truncate(base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn eval(logic: Json, data: Json) -> Result<Json, EvalError> {
        evaluate(&logic, &Value::from_json(&data)).map(|v| v.to_json())
    }

    #[test]
    fn truthiness_is_certlogics() {
        assert_eq!(eval(json!({"if": [[], 1, 2]}), json!(null)), Ok(json!(2)));
        assert_eq!(eval(json!({"if": ["0", 1, 2]}), json!(null)), Ok(json!(1)));
        assert_eq!(eval(json!({"and": [{"var": "x"}, true]}), json!({"x": {}})), Ok(json!({})));
        assert_eq!(
            eval(json!({"!": [{"plusTime": ["2021-01-01", 0, "day"]}]}), json!(null)),
            Err(EvalError::NeitherTruthyNorFalsy("!"))
        );
    }

    #[test]
    fn and_and_if_are_lazy() {
        let logic = json!({"and": [{"var": "x"}, {"after": [{"plusTime": [{"var": "x"}, 0, "hour"]}, {"plusTime": ["1970-01-01", 0, "hour"]}]}]});
        assert_eq!(eval(logic.clone(), json!({"x": ""})), Ok(json!("")));
        assert_eq!(eval(logic, json!({"x": "2022-04-01"})), Ok(json!(true)));
        assert_eq!(eval(json!({"if": [false, {"nope": [1]}, 3]}), json!(null)), Ok(json!(3)));
    }

    #[test]
    fn comparisons_refuse_what_is_not_an_integer() {
        assert_eq!(eval(json!({"<": [1, 2, 3]}), json!(null)), Ok(json!(true)));
        assert!(matches!(eval(json!({"<": ["1", 2]}), json!(null)), Err(EvalError::Operand { .. })));
        assert!(matches!(eval(json!({"+": [1, "2"]}), json!(null)), Err(EvalError::Operand { .. })));
        assert!(matches!(eval(json!({"in": ["a", {"var": "x"}]}), json!(null)), Err(EvalError::Operand { .. })));
    }

    #[test]
    fn strict_equality_is_javascripts() {
        assert_eq!(eval(json!({"===": [1, 1.0]}), json!(null)), Ok(json!(true)));
        assert_eq!(eval(json!({"===": [{"var": "a"}, {"var": "a"}]}), json!({"a": [1]})), Ok(json!(true)));
        assert_eq!(eval(json!({"===": [[1], [1]]}), json!(null)), Ok(json!(false)));
        assert_eq!(eval(json!({"in": [{"var": "x"}, {"var": "y"}]}), json!({"x": null, "y": [null]})), Ok(json!(true)));
    }

    #[test]
    fn var_reads_like_certlogic_js() {
        assert_eq!(eval(json!({"var": "a.1"}), json!({"a": ["x", "y"]})), Ok(json!("y")));
        assert_eq!(eval(json!({"var": "a.01"}), json!({"a": {"1": 5}})), Ok(json!(5)));
        assert_eq!(eval(json!({"var": "a.length"}), json!({"a": [1, 2]})), Ok(json!(2)));
        assert_eq!(eval(json!({"var": "a.0"}), json!({"a": "Ab"})), Ok(json!("A")));
        assert_eq!(eval(json!({"var": "a.b"}), json!({"a": 3})), Ok(json!(null)));
        assert!(matches!(eval(json!({"var": 1}), json!([1, 2])), Err(EvalError::Form(_))));
    }

    #[test]
    fn reduce_folds_with_a_context_and_keeps_date_times() {
        let last = json!({"reduce": [{"var": "d"}, {"plusTime": [{"var": "current"}, 1, "day"]}, 0]});
        assert_eq!(eval(last, json!({"d": ["2021-01-01", "2021-03-01"]})), Ok(json!("2021-03-02T00:00:00.000Z")));
        // `null` is not a CertLogic literal.
        assert_eq!(eval(json!({"reduce": [[], 1, null]}), json!(null)), Err(EvalError::NotAnExpression("null")));
        let sum = json!({"reduce": [{"var": "x"}, {"+": [{"var": "accumulator"}, {"var": "current.n"}]}, 0]});
        assert_eq!(eval(sum.clone(), json!({"x": [{"n": 1}, {"n": 2}]})), Ok(json!(3)));
        assert_eq!(eval(sum.clone(), json!({})), Ok(json!(0)));
        assert!(matches!(eval(sum, json!({"x": 3})), Err(EvalError::Operand { .. })));
    }

    #[test]
    fn extract_from_uvci_splits_on_separators() {
        assert_eq!(extract_from_uvci("URN:UVCI:01:NL:187/37512422923", 1), Some("NL"));
        assert_eq!(extract_from_uvci("a::c/#/f", 3), Some(""));
        assert_eq!(extract_from_uvci("a::c/#/f", 6), None);
        assert_eq!(extract_from_uvci("x", -1), None);
    }

    #[test]
    fn validation_reports_operators_arities_and_literals() {
        assert!(validate(&json!({"and": [true, {"var": "payload.v.0"}]})).is_empty());
        assert_eq!(validate(&json!(2.5))[0].message, "2.5 is a non-integer number");
        assert!(validate(&json!({"all": []}))[0].message.contains("unrecognised operator"));
        assert!(!validate(&json!({"all": false})).is_empty());
        assert!(!validate(&json!({"if": [true, 1]})).is_empty());
        assert!(!validate(&json!({"plusTime": [{"var": "d"}, {"var": "n"}, "day"]})).is_empty());
        assert!(!validate(&json!({"var": "a..b"})).is_empty());
        let nested = validate(&json!({"and": [true, {"!": [1.5]}]}));
        assert_eq!(nested[0].at, "/and/1/!/0");
    }

    #[test]
    fn evaluation_is_bounded() {
        // 32^5 lambda evaluations: far beyond MAX_STEPS.
        let mut logic = json!({"+": [{"var": "accumulator"}, 1]});
        for _ in 0..5 {
            logic = json!({"reduce": [[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], logic, 0]});
        }
        assert_eq!(eval(logic, json!(null)), Err(EvalError::Budget));
    }
}
