//! The loggrep query language → [`Expr`].
//!
//! ```text
//! query    := or
//! or       := and ("OR" and)*
//! and      := unary (["AND"] unary)*          (juxtaposition is AND)
//! unary    := "NOT" unary | "-" unary | primary
//! primary  := "(" or ")" | WORD | "QUOTED" | "/" REGEX "/" | PREFIX "*" | NAME ":" value
//! value    := WORD | "QUOTED" | (">" | ">=" | "<" | "<=") WORD
//! ```
//!
//! A WORD is a run of characters other than whitespace, parentheses and `"`. `AND`, `OR` and `NOT`
//! are operators only in capitals. `NAME:value` is a field term when NAME looks like a field path
//! (a letter, `_`, `$` or `@` first, then letters, digits, `_ . $ @ -`) and a value follows; any
//! other word with a colon (`172.18.0.5:3000`, `LOG:`) is literal text.
//!
//! A regex starts with `/` and ends at the first unescaped `/` that is followed by whitespace, a
//! parenthesis or the end of the query; inside it `\/` stands for `/` and may contain spaces
//! (`/timeout after \d+ms/`). A `/` word with no such closing slash is literal text, so paths
//! such as `/api/health` keep working. A word of letters and digits ending in `*` (`time*`) is a
//! prefix term; a `*` after other characters is an error (quote it to search the text).
//!
//! Owns syntax only: which field names exist is checked by `plan`, which has the index at hand.
//! Errors carry the 1-based column (in characters) of the offending token.

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Literal text searched in the raw event (bare word or quoted phrase).
    Text {
        text: String,
        column: usize,
    },
    /// `/pattern/`: a regex searched in each line of the raw event (the pattern as written,
    /// without the slashes; `column` is the opening slash's).
    Regex {
        pattern: String,
        column: usize,
    },
    /// `stem*`: the raw event has a token starting with `stem` (letters and digits only).
    Prefix {
        stem: String,
        column: usize,
    },
    /// `name:value`.
    Field {
        name: String,
        value: FieldValue,
        column: usize,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// The value side of a field term.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `name:word` or `name:"phrase"`.
    Text(String),
    /// `name:>N`, `name:>=N`, `name:<N`, `name:<=N` (the operand is kept as written).
    Compare(Cmp, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl std::fmt::Display for Cmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        })
    }
}

impl Cmp {
    /// Does `left <op> right` hold?
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
        }
    }
}

/// A syntax error at a column.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("column {column}: {message}")]
pub struct SyntaxError {
    /// 1-based column in characters.
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        column,
        message: message.into(),
    })
}

/// Parse a query. An empty (or all-blank) query gives `None`: match every event.
pub fn parse(query: &str) -> Result<Option<Expr>, SyntaxError> {
    let tokens = lex(query)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.or()?;
    if let Some(tok) = parser.peek() {
        return match tok.kind {
            Kind::RParen => err(tok.column, "unbalanced `)`"),
            _ => err(tok.column, "unexpected token"),
        };
    }
    Ok(Some(expr))
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Leaf(Expr),
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    column: usize,
}

fn lex(query: &str) -> Result<Vec<Tok>, SyntaxError> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(end) = (c == '/').then(|| regex_end(&chars, i)).flatten() {
            let pattern: String = chars[i + 1..end].iter().collect();
            if pattern.is_empty() {
                return err(column, "empty regex `//`");
            }
            tokens.push(Tok {
                kind: Kind::Leaf(Expr::Regex { pattern, column }),
                column,
            });
            i = end + 1;
            continue;
        }
        match c {
            '(' => {
                tokens.push(Tok {
                    kind: Kind::LParen,
                    column,
                });
                i += 1;
            }
            ')' => {
                tokens.push(Tok {
                    kind: Kind::RParen,
                    column,
                });
                i += 1;
            }
            '"' => {
                let (text, next) = quoted(&chars, i)?;
                if text.is_empty() {
                    return err(column, "empty phrase `\"\"`");
                }
                tokens.push(Tok {
                    kind: Kind::Leaf(Expr::Text { text, column }),
                    column,
                });
                i = next;
            }
            '-' if chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != ')') =>
            {
                tokens.push(Tok {
                    kind: Kind::Not,
                    column,
                });
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_word_end(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let kind = match word.as_str() {
                    "AND" => Kind::And,
                    "OR" => Kind::Or,
                    "NOT" => Kind::Not,
                    _ => {
                        let (leaf, next) = word_leaf(&chars, &word, column, i)?;
                        i = next;
                        Kind::Leaf(leaf)
                    }
                };
                tokens.push(Tok { kind, column });
            }
        }
    }
    Ok(tokens)
}

/// The index of the slash closing a regex that opens at `chars[start] == '/'`: the first
/// unescaped `/` followed by a word end or the end of the query.
fn regex_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '/' => {
                let closes = chars.get(i + 1).is_none_or(|c| is_word_end(*c));
                return closes.then_some(i);
            }
            _ => i += 1,
        }
    }
    None
}

fn is_word_end(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')' || c == '"'
}

/// A quoted phrase starting at `chars[start] == '"'`; `\"` and `\\` are escapes.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((text, i + 1)),
            '\\' if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                text.push(chars[i + 1]);
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    err(start + 1, "unterminated quote")
}

/// Interpret a word (ending at `end`): a field term or literal text.
fn word_leaf(
    chars: &[char],
    word: &str,
    column: usize,
    end: usize,
) -> Result<(Expr, usize), SyntaxError> {
    let text = || Expr::Text {
        text: word.to_string(),
        column,
    };
    let Some((name, value)) = word.split_once(':') else {
        if let Some(stem) = word.strip_suffix('*').filter(|s| !s.is_empty()) {
            if !stem.chars().all(char::is_alphanumeric) {
                return err(
                    column,
                    format!(
                        "a prefix term is letters and digits before `*` (quote \"{word}\" to search the text)"
                    ),
                );
            }
            let expr = Expr::Prefix {
                stem: stem.to_string(),
                column,
            };
            return Ok((expr, end));
        }
        return Ok((text(), end));
    };
    if !is_field_name(name) {
        return Ok((text(), end));
    }
    let value_column = column + name.chars().count() + 1;
    if value.is_empty() {
        // `name:"phrase"` continues with the quote; a bare `LOG:` is literal text.
        if chars.get(end) == Some(&'"') {
            let (phrase, next) = quoted(chars, end)?;
            let expr = Expr::Field {
                name: name.to_string(),
                value: FieldValue::Text(phrase),
                column,
            };
            return Ok((expr, next));
        }
        return Ok((text(), end));
    }
    let compare = [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ]
    .into_iter()
    .find_map(|(op, cmp)| value.strip_prefix(op).map(|rest| (op, cmp, rest)));
    let value = match compare {
        Some((op, _, "")) => {
            return err(
                value_column,
                format!("`{name}:{op}` needs a value, e.g. `{name}:{op}1000`"),
            );
        }
        Some((_, cmp, rest)) => FieldValue::Compare(cmp, rest.to_string()),
        None => FieldValue::Text(value.to_string()),
    };
    let expr = Expr::Field {
        name: name.to_string(),
        value,
        column,
    };
    Ok((expr, end))
}

fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || matches!(first, '_' | '$' | '@'))
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '@' | '-'))
        && !name.ends_with('.')
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn end_column(&self) -> usize {
        self.tokens.last().map_or(1, |t| t.column + 1)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.and()?];
        while let Some(tok) = self.peek() {
            if tok.kind != Kind::Or {
                break;
            }
            let column = tok.column;
            self.pos += 1;
            if self.starts_operand() {
                items.push(self.and()?);
            } else {
                return err(column, "`OR` needs a term on its right");
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn starts_operand(&self) -> bool {
        matches!(
            self.peek().map(|t| &t.kind),
            Some(Kind::LParen | Kind::Not | Kind::Leaf(_))
        )
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.unary()?];
        loop {
            match self.peek().map(|t| (&t.kind, t.column)) {
                Some((Kind::And, column)) => {
                    self.pos += 1;
                    if !self.starts_operand() {
                        return err(column, "`AND` needs a term on its right");
                    }
                    items.push(self.unary()?);
                }
                Some((Kind::LParen | Kind::Not | Kind::Leaf(_), _)) => items.push(self.unary()?),
                _ => break,
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        let Some(tok) = self.peek().cloned() else {
            return err(
                self.end_column(),
                "the query ends where a term was expected",
            );
        };
        match tok.kind {
            Kind::Not => {
                self.pos += 1;
                if !self.starts_operand() {
                    return err(tok.column, "`NOT` needs a term after it");
                }
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Kind::LParen => {
                self.pos += 1;
                if matches!(self.peek().map(|t| &t.kind), Some(Kind::RParen)) {
                    return err(tok.column, "empty parentheses");
                }
                let inner = self.or()?;
                match self.peek() {
                    Some(t) if t.kind == Kind::RParen => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => err(tok.column, "`(` is never closed"),
                }
            }
            Kind::Leaf(expr) => {
                self.pos += 1;
                Ok(expr)
            }
            Kind::RParen => err(tok.column, "unbalanced `)`"),
            Kind::And | Kind::Or => err(
                tok.column,
                "an operator needs a term on its left (quote it to search the word itself)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str, column: usize) -> Expr {
        Expr::Text {
            text: t.into(),
            column,
        }
    }

    #[test]
    fn words_and_phrases_are_anded() {
        let e = parse(r#"postgres "too many clients""#).unwrap().unwrap();
        assert_eq!(
            e,
            Expr::And(vec![text("postgres", 1), text("too many clients", 10)])
        );
    }

    #[test]
    fn field_terms_comparisons_and_literal_colons() {
        let e = parse("res.statusCode:503 duration_ms:>=1000 LOG: 172.18.0.5:3000")
            .unwrap()
            .unwrap();
        let Expr::And(items) = e else { panic!() };
        assert_eq!(
            items[0],
            Expr::Field {
                name: "res.statusCode".into(),
                value: FieldValue::Text("503".into()),
                column: 1
            }
        );
        assert_eq!(
            items[1],
            Expr::Field {
                name: "duration_ms".into(),
                value: FieldValue::Compare(Cmp::Ge, "1000".into()),
                column: 20
            }
        );
        assert_eq!(items[2], text("LOG:", 39));
        assert_eq!(items[3], text("172.18.0.5:3000", 44));
        let e = parse(r#"msg:"Job completed""#).unwrap().unwrap();
        assert_eq!(
            e,
            Expr::Field {
                name: "msg".into(),
                value: FieldValue::Text("Job completed".into()),
                column: 1
            }
        );
    }

    #[test]
    fn precedence_not_binds_tighter_than_and_than_or() {
        let e = parse("a b OR NOT c -(d OR e)").unwrap().unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                Expr::And(vec![text("a", 1), text("b", 3)]),
                Expr::And(vec![
                    Expr::Not(Box::new(text("c", 12))),
                    Expr::Not(Box::new(Expr::Or(vec![text("d", 16), text("e", 21)]))),
                ]),
            ])
        );
        assert_eq!(
            parse("a AND b").unwrap().unwrap(),
            Expr::And(vec![text("a", 1), text("b", 7)])
        );
        assert_eq!(parse("  ").unwrap(), None);
        // lowercase operators and a lone dash are text
        assert_eq!(
            parse("a or - b").unwrap().unwrap(),
            Expr::And(vec![
                text("a", 1),
                text("or", 3),
                text("-", 6),
                text("b", 8)
            ])
        );
    }

    #[test]
    fn regexes_and_prefixes() {
        let e = parse(r"/timeout after \d+ms/ time* /a\/b/")
            .unwrap()
            .unwrap();
        assert_eq!(
            e,
            Expr::And(vec![
                Expr::Regex {
                    pattern: r"timeout after \d+ms".into(),
                    column: 1
                },
                Expr::Prefix {
                    stem: "time".into(),
                    column: 23
                },
                Expr::Regex {
                    pattern: r"a\/b".into(),
                    column: 29
                },
            ])
        );
        // a slash word without a closing slash at a word end is text
        assert_eq!(
            parse("/api/health").unwrap().unwrap(),
            text("/api/health", 1)
        );
        assert_eq!(
            parse("-(/x/)").unwrap().unwrap(),
            Expr::Not(Box::new(Expr::Regex {
                pattern: "x".into(),
                column: 3
            }))
        );
        // a lone `*`, and `*` inside a field value, stay text
        assert_eq!(parse("*").unwrap().unwrap(), text("*", 1));
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            (r#"foo "bar"#, 5, "unterminated quote"),
            ("a OR", 3, "`OR` needs a term"),
            ("(a b", 1, "never closed"),
            ("a b)", 4, "unbalanced"),
            ("AND a", 1, "operator"),
            ("x duration_ms:>", 15, "needs a value"),
            ("a NOT", 3, "`NOT` needs"),
            ("()", 1, "empty parentheses"),
            (r#"a """#, 3, "empty phrase"),
            ("a //", 3, "empty regex"),
            ("a b.c*", 3, "prefix term"),
        ];
        for (query, column, message) in cases {
            let e = parse(query).unwrap_err();
            assert_eq!(e.column, column, "{query}: {e}");
            assert!(e.message.contains(message), "{query}: {e}");
        }
    }
}
