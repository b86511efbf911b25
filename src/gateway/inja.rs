//! Inja's variable names in a minijinja template.
//!
//! Why: Gloo renders function templates with Inja, where a variable name runs on over `-`,
//! `.` and `/` (`{{ default(user-id, "") }}`, `X-Amz-Date`); minijinja reads `user-id` as a
//! subtraction and fails on every call. Before compiling, such names are rewritten into a call
//! of [`var`], which looks the name up as Inja would. Names no Inja spelling can hold (`1st`,
//! `@odata.type`, a space) are written by discovery as `var("@odata.type")` directly.

use minijinja::State;
use minijinja::value::{Enumerator, Object, ObjectRepr, Rest, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Rewrites the Inja names minijinja reads otherwise (with `-`, `/` or `.`, or starting with
/// `@` or `$`) inside `{{ }}` and `{% %}` into `var("a", "b-c")`, split at `.` and `/` as
/// Inja splits them; all else is kept as written.
pub fn to_minijinja(text: &str) -> Cow<'_, str> {
    if !text.contains("{{") && !text.contains("{%") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut changed = false;
    let mut rest = text;
    while let Some(open) = find_open(rest) {
        out.push_str(&rest[..open]);
        let tag = &rest[open..open + 2];
        out.push_str(tag);
        let body = &rest[open + 2..];
        let end = if tag == "{#" {
            body.find("#}").map_or(body.len(), |e| e + 2)
        } else {
            let (len, rewritten) = block(body, &mut out);
            changed |= rewritten;
            rest = &body[len..];
            continue;
        };
        out.push_str(&body[..end]);
        rest = &body[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn find_open(s: &str) -> Option<usize> {
    ["{{", "{%", "{#"].iter().filter_map(|t| s.find(t)).min()
}

/// Copies one expression block (after its opening tag) into `out`, rewriting names; returns
/// the bytes consumed (through the closing tag) and whether a name was rewritten.
fn block(body: &str, out: &mut String) -> (usize, bool) {
    let b = body.as_bytes();
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        let c = b[i];
        if (c == b'}' || c == b'%') && b.get(i + 1) == Some(&b'}') {
            out.push_str(&body[i..i + 2]);
            return (i + 2, changed);
        }
        if c == b'"' || c == b'\'' {
            let mut j = i + 1;
            while j < b.len() && b[j] != c {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let j = (j + 1).min(b.len());
            out.push_str(&body[i..j]);
            i = j;
            continue;
        }
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if c.is_ascii_digit() {
            let j = i + b[i..]
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric() || **x == b'.' || **x == b'_')
                .count();
            out.push_str(&body[i..j]);
            i = j;
            continue;
        }
        if boundary && (c.is_ascii_alphabetic() || matches!(c, b'_' | b'@' | b'$')) {
            let mut j = i + 1;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'/' | b'_' | b'-'))
            {
                j += 1;
            }
            // `x-}}`: the `-` is whitespace control, not part of the name.
            let mut name = &body[i..j];
            while name.ends_with('-') && matches!(b.get(i + name.len()), Some(b'-' | b'}' | b'%')) {
                name = &name[..name.len() - 1];
            }
            // `a.b` goes through `var` too: minijinja's `a.b` fails when `a` is undefined (a
            // body without that object), Inja's gives nothing, which `default` fills.
            let plain = !name.contains(['-', '/', '.']) && !name.starts_with(['@', '$']);
            if plain || b.get(i + name.len()) == Some(&b'(') {
                out.push_str(name);
            } else {
                out.push_str("var(");
                for (k, seg) in name.split(['.', '/']).enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&serde_json::to_string(seg).unwrap_or_default());
                }
                out.push(')');
                changed = true;
            }
            i += name.len();
            continue;
        }
        let len = body[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&body[i..i + len]);
        i += len;
    }
    (b.len(), changed)
}

/// `var("a", "b")`: the variable named `a.b` if there is one (a route parameter `{a.b}`),
/// else member `b` of variable `a` (a JSON body's nested object). Undefined when absent.
pub fn var(state: &State, segments: Rest<String>) -> Value {
    let segs = &segments.0;
    if segs.len() > 1
        && let Some(v) = state.lookup(&segs.join(".")).filter(|v| !v.is_undefined())
    {
        return v;
    }
    let Some(first) = segs.first() else {
        return Value::UNDEFINED;
    };
    let mut v = state.lookup(first).unwrap_or(Value::UNDEFINED);
    for s in segs.iter().skip(1) {
        v = v.get_attr(s).unwrap_or(Value::UNDEFINED);
    }
    v
}

/// A JSON object or array from the request body, as a template value: members are reached
/// (`owner.name`, `var("owner", "@id")`) with strings escaped for where the template renders;
/// rendered whole, it is its JSON text: as it is in a JSON body (`"o": {{ default(o, "") }}`),
/// escaped elsewhere.
#[derive(Debug)]
pub struct Json {
    pub value: serde_json::Value,
    pub escape: fn(&str) -> String,
    /// Rendered whole into a JSON body: the JSON text unescaped.
    pub raw: bool,
}

impl Json {
    /// A JSON value as a template value, strings escaped by `escape`.
    pub fn convert(v: &serde_json::Value, escape: fn(&str) -> String, raw: bool) -> Value {
        match v {
            serde_json::Value::String(s) => Value::from(escape(s)),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::from(i),
                (None, Some(f)) => Value::from(f),
                _ => Value::from(n.to_string()),
            },
            serde_json::Value::Bool(b) => Value::from(*b),
            serde_json::Value::Null => Value::from(()),
            other => Value::from_object(Json {
                value: other.clone(),
                escape,
                raw,
            }),
        }
    }
}

impl Object for Json {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.value {
            serde_json::Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let child = match &self.value {
            serde_json::Value::Object(m) => m.get(key.as_str()?),
            serde_json::Value::Array(a) => a.get(key.as_usize()?),
            _ => None,
        }?;
        Some(Json::convert(child, self.escape, self.raw))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.value {
            serde_json::Value::Object(m) => {
                Enumerator::Values(m.keys().map(|k| Value::from(k.as_str())).collect())
            }
            serde_json::Value::Array(a) => Enumerator::Seq(a.len()),
            _ => Enumerator::Empty,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.value.to_string();
        if self.raw {
            f.write_str(&text)
        } else {
            f.write_str(&(self.escape)(&text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_inja_names_only() {
        for (inja, want) in [
            (
                r#"/u/{{ default(user-id, "") }}"#,
                r#"/u/{{ default(var("user-id"), "") }}"#,
            ),
            (
                r#"{{default(X-Amz-Date, "")}}"#,
                r#"{{default(var("X-Amz-Date"), "")}}"#,
            ),
            ("{{ a.b-c }}", r#"{{ var("a", "b-c") }}"#),
            ("{{ a.b }}", r#"{{ var("a", "b") }}"#),
            ("{{ a - b }}", "{{ a - b }}"),
            ("{{ 1-2 }}", "{{ 1-2 }}"),
            (r#"{{ "x-y" }}"#, r#"{{ "x-y" }}"#),
            ("{{ x-}}", "{{ x-}}"),
            ("{# a-b #}{{ a }}", "{# a-b #}{{ a }}"),
            (
                "{% if a-b %}x{% endif %}",
                r#"{% if var("a-b") %}x{% endif %}"#,
            ),
            ("{{ @odata.type }}", r#"{{ var("@odata", "type") }}"#),
            ("no tags a-b", "no tags a-b"),
            ("{{ é-x }}", "{{ é-x }}"),
            ("{{ unclosed-x", r#"{{ var("unclosed-x")"#),
        ] {
            assert_eq!(to_minijinja(inja), want, "{inja}");
        }
    }
}
