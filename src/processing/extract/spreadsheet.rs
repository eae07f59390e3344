//! XLSX and ODS, read by calamine: one section per sheet (its `page` is the sheet's
//! number), the sheet's name on the first line, then one line per row, each value
//! named by its column when the sheet's first row is a header, as for CSV.
//!
//! Both are zip archives that calamine inflates on its own, so the guards of
//! [`super::archive`] inflate every XML part first and count it; a hostile file never
//! reaches calamine. XLSX sheets are read cell by cell as they stream (a sheet declaring
//! a million-by-16,384 range allocates nothing); ODS sheets are read whole, and
//! calamine caps the repeated rows a sheet may declare.

use std::io::Cursor;

use ::csv::StringRecord;
use calamine::{Data, Ods, Reader, Xlsx};

use super::archive::Archive;
use super::csv::{looks_like_header, TextUnderLimit, SNIFF_ROWS};
use super::{without_panics, ExtractError, ExtractOptions, ExtractedText, Section};

/// A header names at most this many columns (the header-row limit): values further
/// right are written unnamed, so one wide header cannot be repeated on every row.
const MAX_HEADER_COLUMNS: usize = 256;

#[derive(Debug, Clone, Copy)]
pub(super) enum Workbook {
    Xlsx,
    Ods,
}

impl Workbook {
    fn name(self) -> &'static str {
        match self {
            Workbook::Xlsx => "XLSX",
            Workbook::Ods => "ODS",
        }
    }
}

/// One row: its non-empty values with their column numbers (0-based), left to right.
type Row = Vec<(usize, String)>;

pub(super) fn extract(
    kind: Workbook,
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    let format = kind.name();
    let mut archive = Archive::open(bytes, format, limits)?;
    let xml_parts: Vec<String> =
        archive.names().into_iter().filter(|name| name.ends_with(".xml") || name.ends_with(".rels")).collect();
    archive.check_declared_sizes(&xml_parts)?;
    archive.check_inflated_sizes(&xml_parts, is_cancelled)?;

    let unreadable = |reason: String| ExtractError::Permanent(format!("the {format} could not be read: {reason}"));
    let mut out = TextUnderLimit::new(limits);
    let sections = without_panics(|| -> Result<Vec<Section>, ExtractError> {
        let mut sections = Vec::new();
        match kind {
            Workbook::Xlsx => {
                let mut workbook = Xlsx::new(Cursor::new(archive.bytes())).map_err(|e| unreadable(e.to_string()))?;
                let names = workbook.sheet_names();
                for (index, name) in names.iter().enumerate() {
                    let mut sheet = SheetText::start(&mut out, name, limits)?;
                    let mut cells = workbook.worksheet_cells_reader(name).map_err(|e| unreadable(e.to_string()))?;
                    let mut row: Row = Vec::new();
                    let mut row_number = None;
                    while let Some(cell) = cells.next_cell().map_err(|e| unreadable(e.to_string()))? {
                        let (r, column) = cell.get_position();
                        if row_number != Some(r) {
                            sheet.push(std::mem::take(&mut row), &mut out)?;
                            row_number = Some(r);
                            if is_cancelled() {
                                return Err(ExtractError::Cancelled);
                            }
                        }
                        let value = Data::from(cell.get_value().clone()).to_string();
                        if !value.trim().is_empty() {
                            row.push((column as usize, value.trim().to_string()));
                        }
                    }
                    sheet.push(row, &mut out)?;
                    sections.push(sheet.finish(&mut out, index)?);
                    on_progress((index + 1) as f32 / names.len() as f32);
                }
            }
            Workbook::Ods => {
                let mut workbook = Ods::new(Cursor::new(archive.bytes())).map_err(|e| unreadable(e.to_string()))?;
                let names = workbook.sheet_names();
                for (index, name) in names.iter().enumerate() {
                    if is_cancelled() {
                        return Err(ExtractError::Cancelled);
                    }
                    let mut sheet = SheetText::start(&mut out, name, limits)?;
                    let range = workbook.worksheet_range(name).map_err(|e| unreadable(e.to_string()))?;
                    let first_column = range.start().map_or(0, |(_, column)| column as usize);
                    for cells in range.rows() {
                        let row = cells
                            .iter()
                            .enumerate()
                            .map(|(i, value)| (first_column + i, value.to_string().trim().to_string()))
                            .filter(|(_, value)| !value.is_empty())
                            .collect();
                        sheet.push(row, &mut out)?;
                    }
                    sections.push(sheet.finish(&mut out, index)?);
                    on_progress((index + 1) as f32 / names.len() as f32);
                }
            }
        }
        Ok(sections)
    })
    .map_err(unreadable)??;
    let pages = u32::try_from(sections.len()).ok();
    Ok(ExtractedText { sections, markdown: false, pages, warning: None })
}

/// One sheet's text as its rows arrive: the first non-empty row and the next
/// [`SNIFF_ROWS`] are held back until the header vote, then rows stream.
struct SheetText<'l> {
    limits: &'l ExtractOptions,
    /// The first non-empty row and the rows after it, until the vote.
    undecided: Vec<Row>,
    /// The header's names by column, once decided (None: no header).
    header: Option<Option<Vec<String>>>,
}

impl<'l> SheetText<'l> {
    fn start(out: &mut TextUnderLimit, name: &str, limits: &'l ExtractOptions) -> Result<Self, ExtractError> {
        out.push_with(
            |text, _| {
                text.push_str(name.trim());
                text.push('\n');
            },
            limits,
        )?;
        Ok(SheetText { limits, undecided: Vec::new(), header: None })
    }

    fn push(&mut self, row: Row, out: &mut TextUnderLimit) -> Result<(), ExtractError> {
        if row.is_empty() {
            return Ok(());
        }
        match &self.header {
            Some(header) => out.push_with(|text, room| write_row(text, &row, header.as_deref(), room), self.limits),
            None => {
                self.undecided.push(row);
                if self.undecided.len() > SNIFF_ROWS {
                    self.decide(out)?;
                }
                Ok(())
            }
        }
    }

    /// Votes on the header as CSV does, over the first [`MAX_HEADER_COLUMNS`] columns,
    /// and writes the rows held back.
    fn decide(&mut self, out: &mut TextUnderLimit) -> Result<(), ExtractError> {
        let rows = std::mem::take(&mut self.undecided);
        let dense = |row: &Row| {
            let mut values = vec![String::new(); row.last().map_or(0, |(c, _)| c + 1).min(MAX_HEADER_COLUMNS)];
            for (column, value) in row.iter().filter(|(c, _)| *c < MAX_HEADER_COLUMNS) {
                values[*column].clone_from(value);
            }
            StringRecord::from(values)
        };
        let header = rows.split_first().and_then(|(first, sample)| {
            let sample: Vec<StringRecord> = sample.iter().map(dense).collect();
            let first = dense(first);
            looks_like_header(&first, &sample).then(|| first.iter().map(str::to_string).collect::<Vec<_>>())
        });
        let body = if header.is_some() { &rows[1..] } else { &rows[..] };
        for row in body {
            out.push_with(|text, room| write_row(text, row, header.as_deref(), room), self.limits)?;
        }
        self.header = Some(header);
        Ok(())
    }

    fn finish(mut self, out: &mut TextUnderLimit, index: usize) -> Result<Section, ExtractError> {
        if self.header.is_none() {
            self.decide(out)?;
        }
        let text = std::mem::take(&mut out.text);
        Ok(Section { text, page: u32::try_from(index + 1).ok() })
    }
}

/// Appends one row as a line: "Name: value; Other: value" under a header, the values
/// joined by ", " otherwise. It stops once the line alone is surely longer than `room`
/// characters (4 bytes each at most); the caller then fails the document.
fn write_row(out: &mut String, row: &Row, header: Option<&[String]>, room: usize) {
    let start = out.len();
    for (column, value) in row {
        if out.len() > start {
            out.push_str(if header.is_some() { "; " } else { ", " });
        }
        if let Some(name) = header.and_then(|names| names.get(*column)).map(|n| n.trim()).filter(|n| !n.is_empty()) {
            out.push_str(name);
            out.push_str(": ");
        }
        out.push_str(value);
        if out.len() - start > room.saturating_mul(4) {
            return;
        }
    }
    out.push('\n');
}
