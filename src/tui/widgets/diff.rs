//! A line diff (longest common subsequence), for the editor's preview.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    Same(String),
    Added(String),
    Removed(String),
}

pub fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Large inputs: show everything as replaced rather than spend quadratic time.
    if a.len() * b.len() > 4_000_000 {
        return a
            .iter()
            .map(|l| DiffLine::Removed(l.to_string()))
            .chain(b.iter().map(|l| DiffLine::Added(l.to_string())))
            .collect();
    }
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(DiffLine::Same(a[i].to_string()));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(DiffLine::Removed(a[i].to_string()));
            i += 1;
        } else {
            out.push(DiffLine::Added(b[j].to_string()));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| DiffLine::Removed(l.to_string())));
    out.extend(b[j..].iter().map(|l| DiffLine::Added(l.to_string())));
    out
}

/// Whether the diff changes anything.
pub fn changes(d: &[DiffLine]) -> bool {
    d.iter().any(|l| !matches!(l, DiffLine::Same(_)))
}

/// The changes with `context` unchanged lines around each; longer unchanged runs become `…`.
pub fn compact(d: &[DiffLine], context: usize) -> Vec<DiffLine> {
    let near = |i: usize| {
        let lo = i.saturating_sub(context);
        let hi = (i + context + 1).min(d.len());
        d[lo..hi].iter().any(|l| !matches!(l, DiffLine::Same(_)))
    };
    let mut out = Vec::new();
    let mut skipped = false;
    for (i, l) in d.iter().enumerate() {
        if near(i) {
            out.push(l.clone());
            skipped = false;
        } else if !skipped {
            out.push(DiffLine::Same("…".into()));
            skipped = true;
        }
    }
    out
}
