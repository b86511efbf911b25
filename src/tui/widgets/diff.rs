//! A line diff (`similar`'s), for the editor's preview.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    Same(String),
    Added(String),
    Removed(String),
}

pub fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    // Lines compared without their ends (a missing final newline is no change); Myers' diff
    // with a deadline, so a huge input degrades to a coarser diff, never a hang.
    let (old, new): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    similar::TextDiff::configure()
        .timeout(std::time::Duration::from_millis(200))
        .diff_slices(&old, &new)
        .iter_all_changes()
        .map(|c| {
            let line = c.value().to_string();
            match c.tag() {
                similar::ChangeTag::Equal => DiffLine::Same(line),
                similar::ChangeTag::Insert => DiffLine::Added(line),
                similar::ChangeTag::Delete => DiffLine::Removed(line),
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_kept_added_and_removed() {
        let d = diff_lines("a\nb\nc\n", "a\nc\nd");
        assert_eq!(
            d,
            [
                DiffLine::Same("a".into()),
                DiffLine::Removed("b".into()),
                DiffLine::Same("c".into()),
                DiffLine::Added("d".into()),
            ]
        );
        assert!(!changes(&diff_lines("x\n", "x")));
    }
}
