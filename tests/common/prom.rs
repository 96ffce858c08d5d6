//! A strict parser of the Prometheus text exposition format (version 0.0.4) for the tests: `# HELP` and
//! `# TYPE` lines and samples, nothing else. A line it does not understand, a sample of a family without a
//! `# TYPE`, a bucket without `le`, or the same series twice is an error, never skipped.
#![allow(dead_code)]

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name to type (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the series `name` whose labels are exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
    }

    /// Every series of `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) => {
            s.parse().map_err(|_| format!("{s:?} is not a number"))
        }
        _ => Err(format!("{s:?} is not a number")),
    }
}

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest of the line.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    let mut rest = &s[1..];
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("a label without '='")?;
        let name = &rest[..eq];
        if !valid_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label {name}: value not quoted"));
        }
        let mut v = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => v.push('\\'),
                    Some('"') => v.push('"'),
                    Some('n') => v.push('\n'),
                    other => return Err(format!("label {name}: bad escape {other:?}")),
                },
                '\n' => return Err(format!("label {name}: raw newline")),
                c => v.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("label {name}: unterminated value"))?;
        if out.insert(name.to_string(), v).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(format!("after label {name}: expected ',' or '}}', got {rest:?}"));
        }
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(types.get(base).map(String::as_str), Some("histogram") | Some("summary")) {
                return Some(base);
            }
        }
    }
    None
}

pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut ex = Exposition::default();
    let lines: Vec<&str> =
        text.strip_suffix('\n').ok_or("the exposition does not end with a newline")?.split('\n').collect();
    for (n, line) in lines.iter().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) if valid_name(name) => {}
                (Some("TYPE"), Some(name), Some(t)) if valid_name(name) => {
                    if !matches!(t, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                        return Err(fail(format!("unknown type {t}")));
                    }
                    if ex.samples.iter().any(|s| family_of(&s.name, &ex.types) == Some(name)) {
                        return Err(fail("TYPE after the family's samples".into()));
                    }
                    if ex.types.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(fail("TYPE twice".into()));
                    }
                }
                _ => return Err(fail("a comment that is neither HELP nor TYPE".into())),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(fail(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = match line[name_end..].starts_with('{') {
            true => labels(&line[name_end..]).map_err(fail)?,
            false => (BTreeMap::new(), &line[name_end..]),
        };
        let fields: Vec<&str> =
            rest.strip_prefix(' ').ok_or_else(|| fail("no space before the value".into()))?.split(' ').collect();
        let v = match fields.as_slice() {
            [v] => value(v).map_err(fail)?,
            [v, ts] if ts.parse::<i64>().is_ok() => value(v).map_err(fail)?,
            _ => return Err(fail("expected a value and at most a timestamp".into())),
        };
        let family = family_of(name, &ex.types).ok_or_else(|| fail(format!("{name} has no # TYPE")))?;
        if ex.types[family] == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(fail("a bucket without le".into()));
        }
        if ex.samples.iter().any(|s| s.name == name && s.labels == labels) {
            return Err(fail("the same series twice".into()));
        }
        ex.samples.push(Sample { name: name.to_string(), labels, value: v });
    }
    Ok(ex)
}
