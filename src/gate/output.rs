//! What every file vaxpass writes for people must respect, whoever writes it (the CLI's
//! sink, the service's downloads): cells a spreadsheet will not run as formulas, and files
//! only their owner can read (issue #8, items 8 and 12).

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

/// Characters that make a spreadsheet read a cell as a formula or smuggle one in (OWASP
/// "CSV Injection": `=`, `+`, `-`, `@`, tab, carriage return).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV cell that a spreadsheet shows as text: a value beginning with one of `= + - @`,
/// tab or carriage return gets a `'` in front, as OWASP recommends, so that
/// `=HYPERLINK(…)` is displayed, never run. A value that already begins with `'` gets one
/// more, so the rule reads back unambiguously: **a cell that begins with `'` had one `'`
/// added by vaxpass; drop that one to get the value** (`'-5` is the record id `-5`, `''x`
/// is `'x`). Every other value is written as it is, without a copy.
///
/// Use it for every cell of every CSV vaxpass writes or serves (`rejected.csv`,
/// `revoked.csv`, CSV downloads).
pub(crate) fn csv_safe_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some(c) if FORMULA_STARTS.contains(&c) || c == '\'' => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

/// Creates (or truncates) `path` for writing, readable and writable by its owner only
/// (0600 on Unix) whatever the umask: outputs hold identity numbers, claim codes and
/// names. A file left by an earlier run with wider permissions is narrowed too, because
/// `open` applies the mode only when it creates the file.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        opts.mode(0o600);
        let file = opts.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    opts.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_neutralised_and_the_rest_borrowed() {
        for (value, written) in [
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("+1", "'+1"),
            ("-5", "'-5"),
            ("-", "'-"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("'x", "''x"),
        ] {
            assert_eq!(csv_safe_cell(value), written, "{value:?}");
            // The documented way back.
            assert_eq!(&csv_safe_cell(value)[1..], value);
        }
        for value in ["R1", "", "line:3", "Nguyễn Văn An", "1990-05-02", "a=b", " =1"] {
            assert!(matches!(csv_safe_cell(value), Cow::Borrowed(v) if v == value), "{value:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_even_when_they_existed_wider() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_private_file(&p).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"", "truncated");
        let q = dir.path().join("new.csv");
        drop(create_private_file(&q).unwrap());
        assert_eq!(std::fs::metadata(&q).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
