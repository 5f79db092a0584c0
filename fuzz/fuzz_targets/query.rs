//! The loggrep query language (`query::lang::parse`): a query parses, or its error names a column
//! inside it (1 to its length in characters, one past the end for what is missing at the end);
//! every term's column points at the term in the text; a blank query is the only `None`; parsing
//! is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::query::lang::{Expr, parse};

/// Check every term's column against the query's characters.
fn check(expr: &Expr, chars: &[char]) {
    let at = |column: usize| -> &[char] {
        assert!(
            column >= 1 && column <= chars.len(),
            "column {column} outside a query of {} characters",
            chars.len()
        );
        &chars[column - 1..]
    };
    match expr {
        Expr::Text { column, .. } => {
            at(*column);
        }
        Expr::Regex { column, .. } => {
            assert_eq!(at(*column)[0], '/', "a regex's column is not its slash");
        }
        Expr::Prefix { stem, column } => {
            let stem: Vec<char> = stem.chars().collect();
            assert!(
                at(*column).starts_with(&stem),
                "a prefix's column is not its stem"
            );
        }
        Expr::Field { name, column, .. } => {
            let name: Vec<char> = name.chars().collect();
            assert!(
                at(*column).starts_with(&name),
                "a field's column is not its name"
            );
        }
        Expr::And(items) | Expr::Or(items) => {
            assert!(items.len() >= 2, "an AND or OR of {} terms", items.len());
            items.iter().for_each(|e| check(e, chars));
        }
        Expr::Not(inner) => check(inner, chars),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let chars: Vec<char> = query.chars().collect();
    let result = parse(query);
    assert_eq!(result, parse(query), "parsing twice gives two answers");
    match result {
        Ok(None) => assert!(
            query.chars().all(char::is_whitespace),
            "a query with text parses to nothing"
        ),
        Ok(Some(expr)) => check(&expr, &chars),
        Err(e) => {
            assert!(
                e.column >= 1 && e.column <= chars.len() + 1,
                "error column {} outside a query of {} characters: {e}",
                e.column,
                chars.len()
            );
            assert!(!e.message.is_empty(), "an error without a message");
        }
    }
});
