// Migrations are embedded at compile time; rebuild when they change.
//
// Where pkg-config finds poppler's C++ library (libpoppler-cpp-dev), the build also
// compiles `docqueue-pdftext`, a small GPL program of its own over it (see
// src/processing/extract/pdf/pdftext_helper.cpp): extractors keep one running for their
// short PDFs instead of starting pdftotext for each. docqueue never links poppler.
// Without the library the build still succeeds and pdftotext reads every PDF.
use std::path::PathBuf;
use std::process::Command;

const HELPER_SOURCE: &str = "src/processing/extract/pdf/pdftext_helper.cpp";

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed={HELPER_SOURCE}");
    println!("cargo:rerun-if-env-changed=BUILD_WITHOUT_PDFTEXT_HELPER");
    if std::env::var_os("BUILD_WITHOUT_PDFTEXT_HELPER").is_some() {
        return;
    }
    let poppler = match pkg_config::Config::new().cargo_metadata(false).atleast_version("0.88").probe("poppler-cpp") {
        Ok(poppler) => poppler,
        Err(err) => {
            println!(
                "cargo:warning=poppler-cpp not found ({err}); docqueue-pdftext is not built and pdftotext reads \
                 every PDF (install libpoppler-cpp-dev for it)"
            );
            return;
        }
    };
    let helper = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("docqueue-pdftext");
    let mut compile = cc::Build::new().cpp(true).get_compiler().to_command();
    compile.args(["-O2", "-std=c++17", HELPER_SOURCE, "-o"]).arg(&helper);
    compile.args(poppler.include_paths.iter().map(|path| format!("-I{}", path.display())));
    compile.args(poppler.link_paths.iter().map(|path| format!("-L{}", path.display())));
    compile.args(poppler.libs.iter().map(|lib| format!("-l{lib}")));
    match Command::new(compile.get_program()).args(compile.get_args()).status() {
        Ok(status) if status.success() => println!("cargo:rustc-env=PDFTEXT_HELPER_BUILT_AT={}", helper.display()),
        outcome => {
            println!("cargo:warning=docqueue-pdftext could not be compiled ({outcome:?}); pdftotext reads every PDF");
        }
    }
}
