// docqueue-pdftext: poppler's text output, page by page, for one PDF after another,
// as pdftotext prints it (the same TextOutputDev in its default reading-order
// layout). It links poppler, which is GPL: this program is GPL-2.0-or-later, and
// docqueue (MIT) only talks to it through pipes, as it does to pdftotext.
//
// An extractor process starts it at its first short PDF and keeps it for the
// documents that follow, so no program starts per PDF. Protocol, little-endian:
//   in:  u64 length, then the PDF's bytes; repeated until stdin closes
//   out: i32 status (the page count; -1 unreadable, -2 password-protected), then for
//        each page a u32 length and that many bytes of UTF-8 (0xFFFFFFFF: the page
//        could not be read).

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

// Like pdftotext -q: a broken stream can make poppler report gigabytes of errors.
void quiet(const std::string &, void *) {}

bool read_exact(void *buffer, size_t length) { return std::fread(buffer, 1, length, stdin) == length; }

bool write_u32(uint32_t value) {
    unsigned char bytes[4];
    for (int i = 0; i < 4; i++) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
    return std::fwrite(bytes, 1, 4, stdout) == 4;
}

bool answer(const std::vector<char> &pdf) {
    std::unique_ptr<poppler::document> document(
        poppler::document::load_from_raw_data(pdf.data(), static_cast<int>(pdf.size())));
    if (!document) return write_u32(static_cast<uint32_t>(-1));
    if (document->is_locked()) return write_u32(static_cast<uint32_t>(-2));
    int pages = document->pages();
    if (!write_u32(static_cast<uint32_t>(pages))) return false;
    for (int index = 0; index < pages; index++) {
        std::unique_ptr<poppler::page> page(document->create_page(index));
        if (!page) {
            if (!write_u32(0xFFFFFFFFu)) return false;
            continue;
        }
        poppler::byte_array text = page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout).to_utf8();
        if (!write_u32(static_cast<uint32_t>(text.size()))) return false;
        if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) return false;
    }
    return std::fflush(stdout) == 0;
}

// A PDF with no pages, open for the whole run. poppler-cpp builds its global tables
// (the glyph-name-to-Unicode maps, the data directories' listings) when the first
// document opens and frees them when the last one closes; without a document kept open
// that happened for every PDF and cost about four fifths of reading a one-page one.
const char KEPT_OPEN[] =
    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

}  // namespace

int main() {
    poppler::set_debug_error_function(quiet, nullptr);
    std::unique_ptr<poppler::document> kept_open(
        poppler::document::load_from_raw_data(KEPT_OPEN, static_cast<int>(sizeof KEPT_OPEN - 1)));
    for (;;) {
        unsigned char header[8];
        if (!read_exact(header, 8)) return 0;
        uint64_t length = 0;
        for (int i = 0; i < 8; i++) length |= static_cast<uint64_t>(header[i]) << (8 * i);
        if (length > 0x7FFFFFFF) return 2;
        std::vector<char> pdf(length);
        if (!read_exact(pdf.data(), length)) return 2;
        if (!answer(pdf)) return 3;
    }
}
