//! What each subcommand does, writing to the given streams and returning the exit status.

use std::io::{self, Write};
use std::path::Path;

use ractor_resilience::config::EnvOverrides;

use crate::cli::RunArgs;
use crate::{DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, EXIT_INVALID_CONFIG, SystemConfig};

/// `check-config FILE`: prints the resolved configuration to `out` and returns 0, or prints
/// every mistake (`path:line:column: field: reason`, one per line) to `err` and returns
/// [`EXIT_INVALID_CONFIG`].
///
/// # Errors
/// Only if writing to `out` or `err` fails.
pub fn check_config(
    file: &Path,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    match SystemConfig::load_with_env(file, overrides) {
        Ok(config) => {
            writeln!(
                out,
                "# {}: valid; resolved configuration (defaults filled in):\n",
                file.display()
            )?;
            write!(out, "{config}")?;
            Ok(0)
        }
        Err(errors) => {
            writeln!(err, "{errors}")?;
            writeln!(err, "{}: {} mistake(s) found", file.display(), errors.len())?;
            Ok(EXIT_INVALID_CONFIG)
        }
    }
}

/// `run` (and no subcommand), for now: loads the configuration (`--config`, or the embedded
/// default), prints it, and says that the running system is not there yet.
///
/// # Errors
/// Only if writing to `out` or `err` fails.
pub fn run(
    args: &RunArgs,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    let loaded = match &args.config {
        Some(file) => SystemConfig::load_with_env(file, overrides),
        None => {
            SystemConfig::from_toml_str_with_env(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, overrides)
        }
    };
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            writeln!(err, "{errors}")?;
            return Ok(EXIT_INVALID_CONFIG);
        }
    };
    let name = args
        .config
        .as_deref()
        .map_or(DEFAULT_CONFIG_NAME.into(), |p| p.display().to_string());
    writeln!(out, "# configuration: {name}\n")?;
    write!(out, "{config}")?;
    writeln!(
        out,
        "\n# The agent system itself (coordinator, supervised workers, simulated provider, /metrics)\n\
         # arrives with the runnable-system work; this build loads and validates its configuration."
    )?;
    Ok(0)
}
