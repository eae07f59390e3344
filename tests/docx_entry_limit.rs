//! A zip with 400,000 entries is refused from its end record, before its central
//! directory is read into memory. In a binary of its own: it measures this process's
//! peak memory.

use docqueue::config::Config;
use docqueue::processing::extract::{extract, ExtractError, ExtractOptions};

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// A zip of `entries` empty stored files, written directly (local headers, central
/// directory, end record).
fn zip_with_entries(entries: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries as usize * 100);
    let mut central = Vec::with_capacity(entries as usize * 60);
    for i in 0..entries {
        let name = format!("f/{i:08}");
        let offset = out.len() as u32;
        out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&[0; 12]); // crc, sizes
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let directory_at = out.len() as u32;
    out.extend_from_slice(&central);
    let count = entries.min(0xFFFF) as u16;
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap()
}

#[test]
fn a_zip_with_400000_entries_is_refused_before_its_directory_is_read() {
    let options = ExtractOptions::from(&Config::from_overrides(serde_json::json!({})).unwrap().processing);
    // 400,000 does not fit the end record's 16-bit count, which then reads 0xFFFF
    // ("see the ZIP64 record"); with no ZIP64 record, that is the count, over the limit.
    let bytes = zip_with_entries(400_000);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let result = extract(DOCX, &bytes, &options, &mut |_| {}, &|| false);
    let grown_mib = status_kib("VmHWM:").saturating_sub(before) / 1024;
    println!("400,000-entry zip ({} MB): peak RSS grew {grown_mib} MiB", bytes.len() / 1_000_000);
    match result {
        Err(ExtractError::Permanent(reason)) => assert!(reason.contains("max_docx_entries"), "{reason}"),
        other => panic!("expected a refusal, got {:?}", other.map(|d| d.sections.len())),
    }
    assert!(grown_mib < 20, "peak RSS grew {grown_mib} MiB");
}
