//! Maps between byte offsets in a TOML document and field paths like `service[1].port`.

use core::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Every key and value of a document with its path and span.
#[derive(Debug)]
pub(super) struct Locator {
    entries: Vec<(String, Range<usize>)>,
}

impl Locator {
    /// Indexes `text`; fails on a TOML syntax error.
    pub(super) fn new(text: &str) -> Result<Self, toml::de::Error> {
        let root = DeTable::parse(text)?;
        let mut entries = Vec::new();
        walk_table(root.get_ref(), "", &mut entries);
        Ok(Self { entries })
    }

    /// The path of the innermost key or value at byte `offset` (empty at the top level).
    pub(super) fn path_at(&self, offset: usize) -> String {
        self.entries
            .iter()
            .filter(|(_, span)| span.contains(&offset) || span.start == offset)
            .min_by_key(|(_, span)| span.len())
            .map(|(path, _)| path.clone())
            .unwrap_or_default()
    }

    /// Where `path`, or the nearest of its parents, starts.
    pub(super) fn span_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some((_, span)) = self.entries.iter().find(|(p, _)| p == path) {
                return Some(span.start);
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }
}

fn walk_table(table: &DeTable<'_>, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push((path.clone(), key.span()));
        walk_value(value, path, out);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, path: String, out: &mut Vec<(String, Range<usize>)>) {
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, &path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_value(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
    out.push((path, value.span()));
}

/// The 1-based line and column of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}
