//! Continuation rules for text entries: which physical lines join the entry above them.
//!
//! Used by the text formats (plain, the non-JSON lines of a pino file, syslog and Redis bodies) through
//! their `EntryFormat::continues`. Rules: a Node or Java stack trace (`Error: …` / `TypeError: …`
//! followed by `    at …`, `\tat …`, `Caused by: …`, `\t... 5 more`) is one entry; Node's heap
//! out-of-memory report (`<--- Last few GCs --->` … `FATAL ERROR: … JavaScript heap out of memory`
//! and its native frames ` 1: 0x…`, blank lines included) is one entry; otherwise an indented line
//! continues the entry above. An entry stays open until a line that does not continue it arrives, or
//! the parser is flushed. PostgreSQL's own continuation rules live in `postgres.rs`, not here.

/// True for a line that opens a Node.js error report: `Error: …`, `TypeError: …`, `FATAL ERROR: …`,
/// `Uncaught Exception …` and the like.
pub fn is_error_start(line: &str) -> bool {
    if line.starts_with("FATAL ERROR:") || line.starts_with("<--- Last few GCs") {
        return true;
    }
    let word_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(line.len());
    let word = &line[..word_end];
    (word.ends_with("Error") || word.ends_with("Exception"))
        && matches!(line.as_bytes().get(word_end), None | Some(b':'))
}

/// True for a stack-frame-like line: indented (`    at …`, `\tat …`, ` 1: 0x…`) or `Caused by:`.
pub fn is_frame(line: &str) -> bool {
    let trimmed = line.trim_start();
    let indented = trimmed.len() < line.len() && !trimmed.is_empty();
    indented || line.starts_with("Caused by:")
}

/// True when `line` continues a text entry whose first line is `first`.
pub fn continues_text(first: &str, line: &str) -> bool {
    if is_frame(line) {
        return true;
    }
    let blank = line.trim().is_empty();
    if first.starts_with("<--- Last few GCs") {
        // The whole heap report: GC lines, separators, the FATAL ERROR line, blanks.
        return blank
            || line.starts_with('[')
            || line.starts_with("<---")
            || line.starts_with("FATAL ERROR:")
            || line.starts_with("-----");
    }
    if first.starts_with("FATAL ERROR:") {
        return blank || line.starts_with("-----");
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_stack_traces_continue() {
        let first = "TypeError: Cannot read properties of undefined (reading 'id')";
        assert!(is_error_start(first));
        assert!(is_error_start(
            "Error: connect ECONNREFUSED 172.18.0.5:3000"
        ));
        assert!(is_error_start("FATAL ERROR: Reached heap limit"));
        assert!(!is_error_start("Errors are fine"));
        assert!(continues_text(
            first,
            "    at Object.<anonymous> (/app/index.js:1:1)"
        ));
        assert!(continues_text(first, "\tat java.lang.Thread.run"));
        assert!(continues_text(first, "Caused by: java.io.IOException"));
        assert!(!continues_text(first, "next entry"));
        assert!(!continues_text(first, ""));
    }

    #[test]
    fn heap_out_of_memory_report_is_one_entry() {
        let first = "<--- Last few GCs --->";
        for line in [
            "",
            "[1:0x63b8f80]    42130 ms: Mark-Compact 2047.6 (2083.4) -> 2046.9 (2083.9) MB",
            "<--- JS stacktrace --->",
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            " 1: 0xb7c5f0 node::Abort() [node]",
        ] {
            assert!(continues_text(first, line), "{line}");
        }
        let fatal =
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory";
        assert!(continues_text(fatal, "----- Native stack trace -----"));
        assert!(continues_text(fatal, ""));
        assert!(continues_text(fatal, " 2: 0xa8e3d9 [node]"));
        assert!(!continues_text(fatal, "{\"level\":30}"));
    }
}
