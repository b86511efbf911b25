//! Error messages down to their root cause: libraries wrap errors (hyper's `connection
//! error`, a client's `error sending request`), and the wrapper alone does not tell an operator
//! why (`Connection reset by peer`). The chain is kept with `#[source]`; these read it.

/// The innermost error of `e`'s source chain, as text.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `e`'s message, followed by its root cause when the message does not already say it.
pub fn with_root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let (top, root) = (e.to_string(), root_cause(e));
    if top.contains(&root) {
        top
    } else {
        format!("{top}: {root}")
    }
}
