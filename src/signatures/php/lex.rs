//! A PHP lexer for judging, not for running: it splits a file into the
//! tokens the analysis reads (variables, names, literals with their
//! interpolated variables, punctuation), skips comments and inline HTML, and
//! never fails: bytes it does not understand become punctuation. Linear in
//! the input; at most [`MAX_TOKENS`] tokens are kept.

/// Tokens kept from one file at most; past this the rest is not judged.
pub const MAX_TOKENS: usize = 2_000_000;

/// One token and its line (from 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// The line it starts on.
    pub line: u32,
    /// A name as written, when not in lower case (PHP before 8 reads an
    /// undefined constant as the string of its name).
    pub written: Option<Box<[u8]>>,
}

/// A part of a string literal: text, or a variable PHP puts in its place.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal bytes (escapes resolved).
    Text(Vec<u8>),
    /// `$name`, `{$name...}`, `${name}` inside the string; the index of an
    /// interpolated `$a[key]`, when it is a plain key, is kept.
    Var(Vec<u8>, Option<Vec<u8>>),
}

/// The kinds of token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// `$name` (without the `$`).
    Var(Vec<u8>),
    /// `$$name` or `${expr}`: a variable whose name is a value.
    VarVar,
    /// A name (function, constant, keyword, class), lower case, the last
    /// part of a namespaced name.
    Name(Vec<u8>),
    /// A quoted string, heredoc or nowdoc.
    Str(Vec<Part>),
    /// A backtick string: a shell command.
    Shell(Vec<Part>),
    /// A number, as written.
    Num(Vec<u8>),
    /// Punctuation or an operator.
    P(&'static str),
    /// `<?=`: what follows is echoed.
    EchoOpen,
    /// `?>`
    Close,
}

const OPS: &[&str] = &[
    "<<=", ">>=", "**=", "...", "<=>", "===", "!==", "??=", "?->", "::", "->", "=>", "==", "!=", "<>", "<=", ">=",
    "&&", "||", "??", ".=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "++", "--", "<<", ">>", "**",
];
const SINGLE: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ";", ",", ".", "=", "?", ":", "@", "!", "+", "-", "*", "/", "%", "&", "|", "^", "~",
    "<", ">", "#", "\\",
];

/// Splits `src` into tokens.
pub fn lex(src: &[u8]) -> Vec<Token> {
    let mut l = Lexer { s: src, i: 0, line: 1, out: Vec::new() };
    l.run();
    l.out
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: u32,
    out: Vec<Token>,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_name(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit()
}

impl Lexer<'_> {
    fn at(&self, k: usize) -> u8 {
        self.s.get(self.i + k).copied().unwrap_or(0)
    }

    fn starts(&self, p: &[u8]) -> bool {
        self.s.len() >= self.i + p.len() && self.s[self.i..self.i + p.len()].eq_ignore_ascii_case(p)
    }

    fn push(&mut self, tok: Tok, line: u32) {
        if self.out.len() < MAX_TOKENS {
            self.out.push(Token { tok, line, written: None });
        }
    }

    /// Moves `n` bytes on, counting lines.
    fn bump(&mut self, n: usize) {
        let end = (self.i + n).min(self.s.len());
        self.line += self.s[self.i..end].iter().filter(|&&b| b == b'\n').count() as u32;
        self.i = end;
    }

    fn run(&mut self) {
        while self.i < self.s.len() && self.out.len() < MAX_TOKENS {
            // Inline HTML up to the next open tag.
            match memchr::memmem::find(&self.s[self.i..], b"<?") {
                None => return,
                Some(k) => self.bump(k),
            }
            if self.starts(b"<?php") {
                self.bump(5);
            } else if self.starts(b"<?=") {
                let line = self.line;
                self.bump(3);
                self.push(Tok::EchoOpen, line);
            } else if self.starts(b"<?xml") {
                self.bump(2);
                continue;
            } else {
                self.bump(2);
            }
            self.code();
        }
    }

    /// PHP code up to `?>` or the end.
    fn code(&mut self) {
        while self.i < self.s.len() && self.out.len() < MAX_TOKENS {
            let b = self.at(0);
            let line = self.line;
            match b {
                b'\n' => self.bump(1),
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.i += 1,
                b'?' if self.at(1) == b'>' => {
                    self.bump(2);
                    self.push(Tok::Close, line);
                    return;
                }
                b'#' if self.at(1) == b'[' => {
                    // An attribute: `#[Name(...)]`, read as code.
                    self.i += 1;
                    self.push(Tok::P("#"), line);
                }
                b'#' => self.line_comment(),
                b'/' if self.at(1) == b'/' => self.line_comment(),
                b'/' if self.at(1) == b'*' => {
                    let end = memchr::memmem::find(&self.s[self.i + 2..], b"*/")
                        .map(|k| k + 4)
                        .unwrap_or(self.s.len() - self.i);
                    self.bump(end);
                }
                b'$' => self.variable(),
                b'\'' => {
                    let t = self.single_quoted();
                    self.push(Tok::Str(vec![Part::Text(t)]), line);
                }
                b'"' => {
                    self.i += 1;
                    let parts = self.interpolated(b'"');
                    self.push(Tok::Str(parts), line);
                }
                b'`' => {
                    self.i += 1;
                    let parts = self.interpolated(b'`');
                    self.push(Tok::Shell(parts), line);
                }
                b'<' if self.starts(b"<<<") => self.heredoc(),
                b'0'..=b'9' => {
                    let start = self.i;
                    while is_name(self.at(0)) || (self.at(0) == b'.' && self.at(1).is_ascii_digit()) {
                        self.i += 1;
                    }
                    self.push(Tok::Num(self.s[start..self.i].to_vec()), line);
                }
                b'\\' if is_name_start(self.at(1)) => self.i += 1,
                _ if is_name_start(b) => {
                    let mut start = self.i;
                    while is_name(self.at(0)) || (self.at(0) == b'\\' && is_name_start(self.at(1))) {
                        if self.at(0) == b'\\' {
                            start = self.i + 1;
                        }
                        self.i += 1;
                    }
                    let written = &self.s[start..self.i];
                    let lower = written.to_ascii_lowercase();
                    let differs = lower != written;
                    self.push(Tok::Name(lower), line);
                    if differs {
                        if let Some(t) = self.out.last_mut() {
                            t.written = Some(written.into());
                        }
                    }
                }
                _ => {
                    let op = OPS.iter().find(|op| self.s[self.i..].starts_with(op.as_bytes()));
                    match op {
                        Some(op) => {
                            self.i += op.len();
                            self.push(Tok::P(op), line);
                        }
                        None => {
                            let p = SINGLE.iter().find(|p| p.as_bytes()[0] == b).copied().unwrap_or("?");
                            self.i += 1;
                            self.push(Tok::P(p), line);
                        }
                    }
                }
            }
        }
    }

    fn line_comment(&mut self) {
        // Ends at the line's end or at `?>`.
        while self.i < self.s.len() {
            match self.at(0) {
                b'\n' => return,
                b'?' if self.at(1) == b'>' => return,
                _ => self.i += 1,
            }
        }
    }

    fn variable(&mut self) {
        let line = self.line;
        if self.at(1) == b'$' || self.at(1) == b'{' {
            self.i += 1;
            self.push(Tok::VarVar, line);
            return;
        }
        let start = self.i + 1;
        self.i += 1;
        while is_name(self.at(0)) {
            self.i += 1;
        }
        if self.i == start {
            self.push(Tok::P("$"), line);
        } else {
            self.push(Tok::Var(self.s[start..self.i].to_vec()), line);
        }
    }

    fn single_quoted(&mut self) -> Vec<u8> {
        self.i += 1;
        let mut t = Vec::new();
        while self.i < self.s.len() {
            let b = self.at(0);
            match b {
                b'\\' if self.at(1) == b'\'' || self.at(1) == b'\\' => {
                    t.push(self.at(1));
                    self.i += 2;
                }
                b'\'' => {
                    self.i += 1;
                    break;
                }
                _ => {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    t.push(b);
                    self.i += 1;
                }
            }
        }
        t
    }

    /// A double-quoted, backtick or heredoc body up to `end` (for a heredoc,
    /// `end` is 0 and the body is the whole of `self.s`).
    fn interpolated(&mut self, end: u8) -> Vec<Part> {
        let mut parts = Vec::new();
        let mut t = Vec::new();
        while self.i < self.s.len() {
            let b = self.at(0);
            if b == end && end != 0 {
                self.i += 1;
                break;
            }
            match b {
                b'\\' => {
                    let (bytes, n) = escape(&self.s[self.i..], end);
                    t.extend_from_slice(&bytes);
                    self.bump(n);
                }
                b'$' if is_name_start(self.at(1)) => {
                    flush(&mut parts, &mut t);
                    self.i += 1;
                    let start = self.i;
                    while is_name(self.at(0)) {
                        self.i += 1;
                    }
                    let name = self.s[start..self.i].to_vec();
                    let mut key = None;
                    if self.at(0) == b'[' {
                        let k0 = self.i + 1;
                        let close = self.s[k0..].iter().take(200).position(|&c| c == b']');
                        if let Some(n) = close {
                            key =
                                Some(self.s[k0..k0 + n].iter().copied().filter(|&c| c != b'\'' && c != b'"').collect());
                            self.i = k0 + n + 1;
                        }
                    } else if self.at(0) == b'-' && self.at(1) == b'>' && is_name_start(self.at(2)) {
                        self.i += 2;
                        while is_name(self.at(0)) {
                            self.i += 1;
                        }
                    }
                    parts.push(Part::Var(name, key));
                }
                b'{' | b'$' if (b == b'{' && self.at(1) == b'$') || (b == b'$' && self.at(1) == b'{') => {
                    flush(&mut parts, &mut t);
                    // `{$expr}`: the variable at its start, to the matching brace.
                    let mut depth = 0usize;
                    let start = self.i;
                    while self.i < self.s.len() {
                        match self.at(0) {
                            b'{' => depth += 1,
                            b'}' => {
                                depth -= 1;
                                if depth == 0 {
                                    self.i += 1;
                                    break;
                                }
                            }
                            b'\n' => self.line += 1,
                            _ => {}
                        }
                        self.i += 1;
                    }
                    let inner = &self.s[start..self.i];
                    let name: Vec<u8> = inner.iter().skip(2).copied().take_while(|&c| is_name(c)).collect();
                    let rest = &inner[(2 + name.len()).min(inner.len())..];
                    let key = rest.strip_prefix(b"[").and_then(|r| {
                        let n = r.iter().position(|&c| c == b']')?;
                        Some(r[..n].iter().copied().filter(|&c| c != b'\'' && c != b'"').collect())
                    });
                    parts.push(Part::Var(name, key));
                }
                _ => {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    t.push(b);
                    self.i += 1;
                }
            }
        }
        flush(&mut parts, &mut t);
        parts
    }

    fn heredoc(&mut self) {
        let line = self.line;
        self.i += 3;
        while self.at(0) == b' ' || self.at(0) == b'\t' {
            self.i += 1;
        }
        let quote = self.at(0);
        let nowdoc = quote == b'\'';
        if quote == b'\'' || quote == b'"' {
            self.i += 1;
        }
        let start = self.i;
        while is_name(self.at(0)) {
            self.i += 1;
        }
        let label = self.s[start..self.i].to_vec();
        if label.is_empty() {
            self.push(Tok::P("<"), line);
            return;
        }
        if quote == b'\'' || quote == b'"' {
            self.i += 1;
        }
        // The body: up to a line whose first non-blank text is the label.
        let body_start = match memchr::memchr(b'\n', &self.s[self.i..]) {
            Some(k) => self.i + k + 1,
            None => self.s.len(),
        };
        let mut j = body_start;
        let mut body_end = self.s.len();
        let mut after = self.s.len();
        while j < self.s.len() {
            let line_end = memchr::memchr(b'\n', &self.s[j..]).map(|k| j + k).unwrap_or(self.s.len());
            let l = &self.s[j..line_end];
            let t = l.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(l.len());
            if l[t..].starts_with(&label) && !l.get(t + label.len()).is_some_and(|&c| is_name(c)) {
                body_end = j.saturating_sub(1).max(body_start);
                after = j + t + label.len();
                break;
            }
            j = line_end + 1;
        }
        let body = &self.s[body_start.min(body_end)..body_end];
        let parts = if nowdoc {
            vec![Part::Text(body.to_vec())]
        } else {
            let mut sub = Lexer { s: body, i: 0, line: 0, out: Vec::new() };
            sub.interpolated(0)
        };
        self.bump(after - self.i);
        self.push(Tok::Str(parts), line);
    }
}

fn flush(parts: &mut Vec<Part>, t: &mut Vec<u8>) {
    if !t.is_empty() {
        parts.push(Part::Text(std::mem::take(t)));
    }
}

/// The bytes an escape at the start of `s` stands for in a double-quoted
/// string, and its length.
fn escape(s: &[u8], end: u8) -> (Vec<u8>, usize) {
    let c = s.get(1).copied().unwrap_or(0);
    let simple = |b: u8| (vec![b], 2);
    match c {
        b'n' => simple(b'\n'),
        b't' => simple(b'\t'),
        b'r' => simple(b'\r'),
        b'v' => simple(0x0b),
        b'e' => simple(0x1b),
        b'f' => simple(0x0c),
        b'\\' | b'$' | b'"' => simple(c),
        b'`' if end == b'`' => simple(c),
        b'x' | b'X' => {
            let hex: Vec<u8> = s[2..].iter().copied().take(2).take_while(u8::is_ascii_hexdigit).collect();
            match std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => (vec![v], 2 + hex.len()),
                None => (b"\\x".to_vec(), 2),
            }
        }
        b'0'..=b'7' => {
            let oct: Vec<u8> = s[1..].iter().copied().take(3).take_while(|b| (b'0'..=b'7').contains(b)).collect();
            let v = std::str::from_utf8(&oct).ok().and_then(|o| u32::from_str_radix(o, 8).ok()).unwrap_or(0);
            (vec![v as u8], 1 + oct.len())
        }
        b'u' if s.get(2) == Some(&b'{') => {
            let n = s[3..].iter().take(8).position(|&b| b == b'}');
            let cp =
                n.and_then(|n| std::str::from_utf8(&s[3..3 + n]).ok()).and_then(|h| u32::from_str_radix(h, 16).ok());
            match (n, cp.and_then(char::from_u32)) {
                (Some(n), Some(ch)) => (ch.to_string().into_bytes(), 4 + n),
                _ => (b"\\u".to_vec(), 2),
            }
        }
        0 => (b"\\".to_vec(), 1),
        _ => (vec![b'\\', c], 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src.as_bytes()).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_variables_and_comments() {
        let t = toks("<html><?php // x\n$a = 'b\\'c' . \"d\\x41$e[f]{$g['h']}\"; # y\n/* z */ \\Foo\\Bar(1.5) ?>x");
        assert_eq!(
            t,
            vec![
                Tok::Var(b"a".to_vec()),
                Tok::P("="),
                Tok::Str(vec![Part::Text(b"b'c".to_vec())]),
                Tok::P("."),
                Tok::Str(vec![
                    Part::Text(b"dA".to_vec()),
                    Part::Var(b"e".to_vec(), Some(b"f".to_vec())),
                    Part::Var(b"g".to_vec(), Some(b"h".to_vec())),
                ]),
                Tok::P(";"),
                Tok::Name(b"bar".to_vec()),
                Tok::P("("),
                Tok::Num(b"1.5".to_vec()),
                Tok::P(")"),
                Tok::Close,
            ]
        );
    }

    #[test]
    fn short_tags_backticks_and_heredocs() {
        assert_eq!(
            toks("<?=`$_GET[_]`?>"),
            vec![Tok::EchoOpen, Tok::Shell(vec![Part::Var(b"_GET".to_vec(), Some(b"_".to_vec()))]), Tok::Close]
        );
        let t = toks("<?php $x = <<<EOT\nab $y\n  EOT;\n$z = <<<'N'\n$q\nN;\n");
        assert_eq!(t[2], Tok::Str(vec![Part::Text(b"ab ".to_vec()), Part::Var(b"y".to_vec(), None)]));
        assert_eq!(t[6], Tok::Str(vec![Part::Text(b"$q".to_vec())]));
        let lines: Vec<u32> = lex(b"<?php\n$a;\n\n$b;").iter().map(|t| t.line).collect();
        assert_eq!(lines, vec![2, 2, 4, 4]);
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "<?php \"",
            "<?php '",
            "<?php <<<",
            "<?php <<<A\n",
            "<?php \"{$",
            "<?php \"\\u{zz",
            "<?php `$",
            "<?php $",
            "<?",
        ] {
            let _ = lex(s.as_bytes());
        }
    }
}
