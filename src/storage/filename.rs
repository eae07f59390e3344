//! Client-supplied filenames are display names only: keep the last path component,
//! drop control characters and the invisible ones that change how a name reads,
//! cap the length (keeping the extension).

const MAX_BYTES: usize = 200;

pub fn sanitize(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|&c| !c.is_control() && !is_invisible_formatting(c)).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return "upload".to_string();
    }
    if cleaned.len() <= MAX_BYTES {
        return cleaned.to_string();
    }
    let (stem, extension) = match cleaned.rfind('.') {
        Some(dot) if cleaned.len() - dot <= 16 => cleaned.split_at(dot),
        _ => (cleaned, ""),
    };
    let mut end = MAX_BYTES - extension.len();
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &stem[..end])
}

/// Bidirectional controls make "invoice\u{202E}txt.exe" display as "invoiceexe.txt";
/// zero-width and other invisible characters make two names look alike. Zero-width
/// joiners (U+200C, U+200D) stay: scripts and emoji need them.
fn is_invisible_formatting(c: char) -> bool {
    matches!(c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        | '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}')
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn path_components_and_control_characters_are_removed() {
        assert_eq!(sanitize("../../etc/passwd\u{7}.pdf"), "passwd.pdf");
        assert_eq!(sanitize("C:\\Users\\me\\report.docx"), "report.docx");
        assert_eq!(sanitize("..."), "upload");
        assert_eq!(sanitize(""), "upload");
    }

    #[test]
    fn bidirectional_controls_and_invisible_characters_are_removed() {
        assert_eq!(sanitize("invoice\u{202E}txt.exe"), "invoicetxt.exe");
        assert_eq!(sanitize("\u{2067}report\u{2069}\u{200B}.pdf\u{FEFF}"), "report.pdf");
        assert_eq!(sanitize("نامه\u{200C}ها.docx"), "نامه\u{200C}ها.docx");
    }

    #[test]
    fn long_names_are_capped_keeping_the_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let name = sanitize(&long);
        assert!(name.len() <= 200);
        assert!(name.ends_with(".pdf"));
    }
}
