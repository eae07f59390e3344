use std::process::ExitCode;

fn main() -> ExitCode {
    docqueue::cli::main()
}
