//! The `slate` binary: parse arguments, run the command, map the result to
//! an exit code (0 success, 2 error).

use std::process::ExitCode;

fn main() -> ExitCode {
    match slate::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("slate: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
