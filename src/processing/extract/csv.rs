//! CSV: one line of text per row, each value named by its column when the first row
//! is a header ("City: Kenai; State: AK"), the plain values otherwise.

use ::csv::{ReaderBuilder, StringRecord};

use super::{text, too_many_chars, ExtractError, ExtractOptions, ExtractedText, Section};

/// Rows after the first that are looked at to decide whether the first is a header.
pub(super) const SNIFF_ROWS: usize = 50;

pub(super) fn extract(bytes: &[u8], limits: &ExtractOptions) -> Result<ExtractedText, ExtractError> {
    let content = text::decode(bytes)?;
    let first_line = content.lines().next().unwrap_or_default();
    let mut records = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(sniff_delimiter(first_line))
        .from_reader(content.as_bytes())
        .into_records();
    let mut next_row = || -> Result<Option<StringRecord>, ExtractError> {
        records.next().transpose().map_err(|e| ExtractError::Permanent(format!("the CSV could not be parsed: {e}")))
    };

    let Some(first) = next_row()? else {
        return Ok(ExtractedText { sections: Vec::new(), markdown: false, pages: None, warning: None });
    };
    let mut sample = Vec::new();
    while sample.len() < SNIFF_ROWS {
        match next_row()? {
            Some(row) => sample.push(row),
            None => break,
        }
    }

    // Naming every value by its column multiplies the text by the header's length: a
    // small file with a huge header would grow without bound, so the limit is checked
    // row by row, not once at the end.
    let mut out = TextUnderLimit::new(limits);
    let header = if looks_like_header(&first, &sample) {
        Some(first)
    } else {
        out.push_row(&first, None, limits)?;
        None
    };
    for row in &sample {
        out.push_row(row, header.as_ref(), limits)?;
    }
    while let Some(row) = next_row()? {
        out.push_row(&row, header.as_ref(), limits)?;
    }
    Ok(ExtractedText {
        sections: vec![Section { text: out.text, page: None }],
        markdown: false,
        pages: None,
        warning: None,
    })
}

/// The text built so far, failing as soon as it passes `max_chars`. Spreadsheets share
/// it: their rows are named by a header just as CSV rows are.
pub(super) struct TextUnderLimit {
    pub(super) text: String,
    chars: usize,
    max_chars: usize,
}

impl TextUnderLimit {
    pub(super) fn new(limits: &ExtractOptions) -> Self {
        TextUnderLimit { text: String::new(), chars: 0, max_chars: limits.max_chars }
    }

    fn push_row(
        &mut self,
        row: &StringRecord,
        header: Option<&StringRecord>,
        limits: &ExtractOptions,
    ) -> Result<(), ExtractError> {
        self.push_with(|text, room| write_row(text, row, header, room), limits)
    }

    /// Appends what `write(text, room)` writes, where `room` is the characters left
    /// (a writer should stop soon after passing it), then checks the limit.
    pub(super) fn push_with(
        &mut self,
        write: impl FnOnce(&mut String, usize),
        limits: &ExtractOptions,
    ) -> Result<(), ExtractError> {
        let start = self.text.len();
        write(&mut self.text, self.max_chars.saturating_sub(self.chars));
        self.chars += self.text[start..].chars().count();
        if self.chars > self.max_chars {
            return Err(too_many_chars(limits));
        }
        Ok(())
    }
}

/// The most frequent of the usual delimiters in the first line; a comma when none occurs.
fn sniff_delimiter(first_line: &str) -> u8 {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .map(|d| (first_line.bytes().filter(|&b| b == d).count(), d))
        .filter(|&(count, _)| count > 0)
        .max_by_key(|&(count, _)| count)
        .map_or(b',', |(_, d)| d)
}

/// A simplified version of Python's `csv.Sniffer.has_header`: each column votes. A column
/// whose values are numbers votes for a header when its first cell is not a number; a
/// column whose values all have one length votes for a header when the first cell's
/// length differs. Ties mean no header.
pub(super) fn looks_like_header(first: &StringRecord, sample: &[StringRecord]) -> bool {
    let mut votes = 0i32;
    for (column, name) in first.iter().enumerate() {
        let values: Vec<&str> =
            sample.iter().filter_map(|row| row.get(column)).map(str::trim).filter(|v| !v.is_empty()).collect();
        let Some(first_value) = values.first() else {
            continue;
        };
        let name = name.trim();
        if values.iter().all(|v| is_number(v)) {
            votes += if is_number(name) { -1 } else { 1 };
        } else if values.iter().all(|v| v.chars().count() == first_value.chars().count()) {
            votes += if name.chars().count() == first_value.chars().count() { -1 } else { 1 };
        }
    }
    votes > 0
}

fn is_number(value: &str) -> bool {
    value.trim().parse::<f64>().is_ok()
}

/// Appends one row as a line. It stops early once the line alone is surely longer than
/// `room` characters (4 bytes each at most), so one row cannot allocate far past the
/// limit; the caller then fails the document.
fn write_row(out: &mut String, row: &StringRecord, header: Option<&StringRecord>, room: usize) {
    let start = out.len();
    match header {
        Some(header) => {
            for (column, value) in row.iter().enumerate() {
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                if out.len() > start {
                    out.push_str("; ");
                }
                if let Some(name) = header.get(column).map(str::trim).filter(|name| !name.is_empty()) {
                    out.push_str(name);
                    out.push_str(": ");
                }
                out.push_str(value);
                if out.len() - start > room.saturating_mul(4) {
                    return;
                }
            }
        }
        None => {
            for (column, value) in row.iter().enumerate() {
                if column > 0 {
                    out.push_str(", ");
                }
                out.push_str(value.trim());
                if out.len() - start > room.saturating_mul(4) {
                    return;
                }
            }
        }
    }
    if out[start..].trim().is_empty() {
        out.truncate(start);
    } else {
        out.push('\n');
    }
}
