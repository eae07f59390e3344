//! Client-supplied filenames are display names only: keep the last path component,
//! drop control characters, cap the length (keeping the extension).

const MAX_BYTES: usize = 200;

pub fn sanitize(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
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
    fn long_names_are_capped_keeping_the_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let name = sanitize(&long);
        assert!(name.len() <= 200);
        assert!(name.ends_with(".pdf"));
    }
}
