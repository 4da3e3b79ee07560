//! Output formats, in one place: Docker's tables, Go templates (`--format '{{.ID}}'`,
//! `table …`), and `json`.

use std::collections::BTreeMap;

use gotmpl::{Template, TemplateError, Value};

/// Aligns tab-separated cells like Go's tabwriter with the docker CLI's settings
/// (minimum width 10, padding 3); the last cell of each line is not padded.
pub fn tabulate(text: &str) -> String {
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count() + 3).max(10);
            }
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                for _ in c.chars().count()..widths[i] {
                    line.push(' ');
                }
            }
        }
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    }
    out
}

/// Shortens to `n` characters with an ellipsis, as the CLI shows long commands.
pub fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn arg_str(args: &[Value], i: usize) -> String {
    match args.get(i) {
        Some(Value::String(s)) => s.to_string(),
        Some(Value::Nil) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => serde_json::json!(f),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        _ => serde_json::Value::Null,
    }
}

/// Docker's template functions.
fn template(src: &str) -> Result<Template, String> {
    // `.Label "key"` is a method in Docker's Go contexts; berth's contexts are plain maps, so
    // it is rewritten to the `label` function.
    let src = src.replace(".Label \"", "label . \"");
    let bad = |e: TemplateError| format!("template parsing error: {e}");
    Template::new("")
        .func("json", |a: &[Value]| {
            let v = a.first().map(to_json).unwrap_or(serde_json::Value::Null);
            Ok(Value::String(serde_json::to_string(&v).unwrap_or_default().into()))
        })
        .func("join", |a: &[Value]| {
            let sep = arg_str(a, 1);
            let items: Vec<String> = match a.first() {
                Some(Value::List(l)) => l
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.to_string(),
                        v => v.to_string(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Ok(Value::String(items.join(&sep).into()))
        })
        .func("split", |a: &[Value]| {
            let s = arg_str(a, 0);
            let sep = arg_str(a, 1);
            Ok(Value::List(s.split(sep.as_str()).map(|p| Value::String(p.into())).collect::<Vec<_>>().into()))
        })
        .func("lower", |a: &[Value]| Ok(Value::String(arg_str(a, 0).to_lowercase().into())))
        .func("upper", |a: &[Value]| Ok(Value::String(arg_str(a, 0).to_uppercase().into())))
        .func("title", |a: &[Value]| {
            let s = arg_str(a, 0);
            let mut c = s.chars();
            let t = match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            };
            Ok(Value::String(t.into()))
        })
        .func("truncate", |a: &[Value]| {
            let s = arg_str(a, 0);
            let n = match a.get(1) {
                Some(Value::Int(i)) => *i as usize,
                Some(Value::Uint(u)) => *u as usize,
                _ => s.len(),
            };
            Ok(Value::String(s.chars().take(n).collect::<String>().into()))
        })
        .func("pad", |a: &[Value]| {
            let s = arg_str(a, 0);
            let n = |i: usize| match a.get(i) {
                Some(Value::Int(v)) => *v as usize,
                Some(Value::Uint(v)) => *v as usize,
                _ => 0,
            };
            Ok(Value::String(format!("{}{}{}", " ".repeat(n(1)), s, " ".repeat(n(2))).into()))
        })
        .func("println", |a: &[Value]| {
            let parts: Vec<String> = a
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.to_string(),
                    v => v.to_string(),
                })
                .collect();
            Ok(Value::String(format!("{}\n", parts.join(" ")).into()))
        })
        .func("label", |a: &[Value]| {
            let key = arg_str(a, 1);
            let v = match a.first() {
                Some(Value::Map(m)) => match m.get("LabelsMap") {
                    Some(Value::Map(l)) => l.get(key.as_str()).cloned().unwrap_or(Value::String("".into())),
                    _ => Value::String("".into()),
                },
                _ => Value::String("".into()),
            };
            Ok(v)
        })
        .parse(&src)
        .map_err(bad)
}

/// Executes a Go template against one JSON value.
pub fn execute(src: &str, data: &serde_json::Value) -> Result<String, String> {
    let t = template(src)?;
    let v = gotmpl::to_value(data).map_err(|e| format!("template: {e}"))?;
    t.execute_to_string(&v).map_err(|e| format!("template: {e}"))
}

/// How a listing command prints.
pub enum Format {
    /// A table; `None` means the command's default columns.
    Table(Option<String>),
    Json,
    Template(String),
}

pub fn parse(s: &str) -> Format {
    let t = s.trim();
    if t.is_empty() || t == "table" {
        Format::Table(None)
    } else if t == "json" {
        Format::Json
    } else if let Some(rest) = t.strip_prefix("table ") {
        Format::Table(Some(rest.to_string()))
    } else {
        Format::Template(s.to_string())
    }
}

/// Renders rows (each a JSON object of Docker's context fields) in the given format.
/// `default` is the table template used for plain `table`; `headers` names each field's
/// column header.
pub fn render(
    format: &Format,
    rows: &[serde_json::Value],
    default: &str,
    headers: &BTreeMap<&str, &str>,
) -> Result<String, String> {
    match format {
        Format::Json => {
            let mut out = String::new();
            for r in rows {
                let mut obj = r.clone();
                if let Some(m) = obj.as_object_mut() {
                    m.remove("LabelsMap");
                }
                out.push_str(&serde_json::to_string(&obj).unwrap_or_default());
                out.push('\n');
            }
            Ok(out)
        }
        Format::Template(t) => {
            let mut out = String::new();
            for r in rows {
                out.push_str(&execute(t, r)?);
                out.push('\n');
            }
            Ok(out)
        }
        Format::Table(t) => {
            let t = t.as_deref().unwrap_or(default).replace("\\t", "\t");
            let header_ctx: serde_json::Map<String, serde_json::Value> =
                headers.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect();
            let mut text = execute(&t, &serde_json::Value::Object(header_ctx))?;
            text.push('\n');
            for r in rows {
                text.push_str(&execute(&t, r)?);
                text.push('\n');
            }
            Ok(tabulate(&text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_like_docker() {
        let t = tabulate("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tx\n");
        assert_eq!(t, "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n");
    }

    #[test]
    fn templates_and_functions() {
        let v =
            serde_json::json!({"ID": "abc", "Names": ["a", "b"], "State": {"Running": true}, "LabelsMap": {"k": "v"}});
        assert_eq!(execute("{{.ID}} {{join .Names \",\"}}", &v).unwrap(), "abc a,b");
        assert_eq!(execute("{{.State.Running}}", &v).unwrap(), "true");
        assert_eq!(execute("{{json .State}}", &v).unwrap(), "{\"Running\":true}");
        assert_eq!(execute("{{.Label \"k\"}}", &v).unwrap(), "v");
        assert_eq!(execute("{{upper .ID}}", &v).unwrap(), "ABC");
        assert!(execute("{{.ID", &v).is_err());
    }

    #[test]
    fn table_headers() {
        let mut h = BTreeMap::new();
        h.insert("ID", "CONTAINER ID");
        h.insert("Image", "IMAGE");
        let rows = vec![serde_json::json!({"ID": "abc", "Image": "busybox"})];
        let out = render(&Format::Table(Some("{{.ID}}\\t{{.Image}}".into())), &rows, "", &h).unwrap();
        assert_eq!(out, "CONTAINER ID   IMAGE\nabc            busybox\n");
    }

    #[test]
    fn ellipses() {
        assert_eq!(ellipsis("sleep 1000", 20), "sleep 1000");
        assert_eq!(ellipsis("sh -c echo out; echo err >&2; exit 3", 20), "sh -c echo out; ech…");
    }
}
