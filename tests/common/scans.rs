//! Scanned documents made on the spot: a PDF page rendered in grey by poppler's
//! pdftoppm (what a scanner would see) and wrapped back into a PDF as a bare image,
//! with no text layer. Shared by tests/ocr.rs and the pipeline benchmark.

use std::io::Write;
use std::process::{Command, Stdio};

use super::pdf_writer::{pdf, stream};

/// A grey raster: one byte a pixel, rows top to bottom.
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Runs pdftoppm on `pdf` with `args` (one page: `-singlefile`, to stdout) and returns
/// what it printed.
pub fn pdftoppm(pdf: &[u8], args: &[&str]) -> Vec<u8> {
    let mut child = Command::new("pdftoppm")
        .args(args)
        .args(["-singlefile", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pdftoppm (poppler-utils) is installed");
    let mut stdin = child.stdin.take().unwrap();
    let input = pdf.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "pdftoppm {args:?}");
    output.stdout
}

/// Page `page` of `pdf` rendered in grey at `dpi`.
pub fn render_page(pdf: &[u8], page: u32, dpi: u32) -> Raster {
    let page = page.to_string();
    let pgm = pdftoppm(pdf, &["-r", &dpi.to_string(), "-gray", "-f", &page, "-l", &page]);
    // P5 <width> <height> 255 <pixels>
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        let start = at;
        while !pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[start..at]).into_owned());
        at += 1;
    }
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert_eq!(pgm.len() - at, width * height, "one byte a pixel");
    Raster { width, height, pixels: pgm[at..].to_vec() }
}

/// The image XObject of a raster (uncompressed DeviceGray).
pub fn image_object(raster: &Raster) -> Vec<u8> {
    stream(
        &format!(
            "/Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8",
            raster.width, raster.height
        ),
        &raster.pixels,
    )
}

/// The content stream that draws image /Scan over a whole `width` × `height` page.
pub fn full_page_image(width: f64, height: f64) -> String {
    format!("q {width} 0 0 {height} 0 0 cm /Scan Do Q")
}

/// A PDF whose pages are only these rasters, each on a `width` × `height` point page.
pub fn image_only_pdf(rasters: &[Raster], width: f64, height: f64) -> Vec<u8> {
    let mut objects = vec![b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(), Vec::new()];
    let mut kids = Vec::new();
    for raster in rasters {
        let page_id = objects.len() + 1;
        kids.push(format!("{page_id} 0 R"));
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents {} 0 R /Resources << /XObject \
                 << /Scan {} 0 R >> >> >>",
                page_id + 1,
                page_id + 2
            )
            .into_bytes(),
        );
        objects.push(stream("", full_page_image(width, height).as_bytes()));
        objects.push(image_object(raster));
    }
    objects[1] = format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), rasters.len()).into_bytes();
    pdf(&objects)
}
