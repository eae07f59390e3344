//! Common clients (curl, reqwest) send a filename's control characters raw inside the
//! part's `Content-Disposition`, which the multipart parser rejects as a malformed
//! header. The filename is sanitised anyway, so this stream adapter drops control
//! characters from part headers (never from file bodies) before parsing.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use futures_util::Stream;

pub struct PartHeaderSanitizer<S> {
    inner: S,
    /// `\r\n--<boundary>\r\n`: what opens a part's headers.
    delimiter: Vec<u8>,
    /// KMP failure table of `delimiter`.
    fallback: Vec<usize>,
    matched: usize,
    in_headers: bool,
    /// The last bytes of the headers, to see their closing blank line.
    header_tail: [u8; 4],
}

impl<S> PartHeaderSanitizer<S> {
    pub fn new(inner: S, boundary: &str) -> PartHeaderSanitizer<S> {
        let delimiter = [b"\r\n--".as_slice(), boundary.as_bytes(), b"\r\n"].concat();
        let mut fallback = vec![0; delimiter.len()];
        let mut k = 0;
        for i in 1..delimiter.len() {
            while k > 0 && delimiter[i] != delimiter[k] {
                k = fallback[k - 1];
            }
            if delimiter[i] == delimiter[k] {
                k += 1;
            }
            fallback[i] = k;
        }
        // The body starts with the first delimiter, without the CRLF before it.
        PartHeaderSanitizer { inner, delimiter, fallback, matched: 2, in_headers: false, header_tail: [0; 4] }
    }

    fn filter(&mut self, chunk: Bytes) -> Bytes {
        let mut rewritten: Option<Vec<u8>> = None;
        for (i, &byte) in chunk.iter().enumerate() {
            if self.in_headers {
                if byte < 0x20 && !matches!(byte, b'\r' | b'\n' | b'\t') || byte == 0x7F {
                    rewritten.get_or_insert_with(|| chunk[..i].to_vec());
                    continue;
                }
                self.header_tail = [self.header_tail[1], self.header_tail[2], self.header_tail[3], byte];
                if &self.header_tail == b"\r\n\r\n" {
                    self.in_headers = false;
                    self.matched = 0;
                }
            } else {
                while self.matched > 0 && self.delimiter[self.matched] != byte {
                    self.matched = self.fallback[self.matched - 1];
                }
                if self.delimiter[self.matched] == byte {
                    self.matched += 1;
                }
                if self.matched == self.delimiter.len() {
                    self.in_headers = true;
                    self.header_tail = *b"\0\0\r\n";
                    self.matched = 0;
                }
            }
            if let Some(out) = rewritten.as_mut() {
                out.push(byte);
            }
        }
        rewritten.map_or(chunk, Bytes::from)
    }
}

impl<S, E> Stream for PartHeaderSanitizer<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(self.filter(chunk)))),
            other => other,
        }
    }
}

/// The boundary parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &[u8], split_every: usize) -> Vec<u8> {
        let mut sanitizer = PartHeaderSanitizer::new(futures_util::stream::empty::<Result<Bytes, ()>>(), "XyZ");
        body.chunks(split_every).flat_map(|c| sanitizer.filter(Bytes::copy_from_slice(c)).to_vec()).collect()
    }

    #[test]
    fn control_characters_leave_headers_but_not_bodies() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\x07b.pdf\"\r\n\r\n\x07body\x01\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x\x08\"\r\n\r\nv\x07\r\n--XyZ--\r\n";
        let expected = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ab.pdf\"\r\n\r\n\x07body\x01\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\x07\r\n--XyZ--\r\n";
        for split in [1, 2, 3, 7, 1000] {
            assert_eq!(run(body, split), expected.to_vec(), "split every {split}");
        }
    }

    #[test]
    fn boundary_is_read_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=\"abc\""), Some("abc".into()));
        assert_eq!(boundary("multipart/form-data;boundary=x-1"), Some("x-1".into()));
        assert_eq!(boundary("text/plain"), None);
    }
}
