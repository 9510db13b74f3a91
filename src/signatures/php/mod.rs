//! Known-bad by what PHP code does, beside the YARA-X rules' text matching:
//! the file is tokenized ([`lex`]) and read as a sequence of expressions
//! whose values the analysis follows:
//!
//! - **request input** (`$_GET`, `$_POST`, `$_REQUEST`, `$_COOKIE`,
//!   `$_FILES`, `$_SERVER['HTTP_…']`, `getallheaders()`,
//!   `getenv('HTTP_…')`, `php://input`, `filter_input`, and every variable
//!   `extract()` or `parse_str()` makes of it) through assignments,
//!   concatenation, arrays, interpolation, function arguments and results,
//!   and a function's parameters, into the sinks: commands, code (`eval`,
//!   `assert`, `create_function`, `include` of it, `preg_replace` /e), the
//!   name of a function called (`$x()`, `call_user_func`, callbacks), file
//!   writes and uploads, a file's whole path, the recipient of a mail, a
//!   whole SQL query, the host of a database login or socket;
//! - **data read from a network socket** into commands or code (reverse
//!   shells);
//! - **literal values folded** ([`fold`]): `'as'.'sert'`, `chr(115)…`,
//!   `strrev`, `str_rot13`, `base64_decode`, `gzinflate` and the rest, so a
//!   dangerous function name assembled from pieces is seen, and an encoded
//!   payload is decoded (bounded in depth and bytes) and judged again, layer
//!   by layer.
//!
//! It is an approximation made for judging: one pass per round over the
//! tokens, values kept per variable and per function, not per statement.
//! Every finding names its evidence (line, source, sink).

mod fold;
pub mod lex;

use lex::{Part, Tok, Token};
use std::collections::HashMap;
use std::rc::Rc;

/// One finding: the rule, the line, what flowed where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule's name (`php_flow_…`).
    pub rule: &'static str,
    /// The line of the sink (of the outermost file).
    pub line: u32,
    /// Source and sink, in words.
    pub evidence: String,
}

impl Finding {
    /// `rule: line N, evidence`, as a record's `signatures` entry.
    pub fn label(&self) -> String {
        format!("{}: line {}, {}", self.rule, self.line, self.evidence)
    }
}

/// What the analysis of a file found, and the payloads it decoded.
#[derive(Debug, Default)]
pub struct Analysis {
    /// One per rule: its first example.
    pub findings: Vec<Finding>,
    /// Decoded layers (literal blobs the file decodes), for the text rules.
    pub layers: Vec<Vec<u8>>,
}

/// Decoded layers followed at most (a payload in a payload in …).
const MAX_DEPTH: u8 = 4;
/// Bytes decoded per file at most, over all layers.
const MAX_DECODED: usize = 16 << 20;
/// Alternatives kept per value.
const MAX_ALTS: usize = 16;
/// Rounds over the tokens (a value assigned below its use reaches it).
const ROUNDS: usize = 3;
/// Bytes of literal values made per round over a file (or a decoded
/// layer) at most.
const MAX_MADE: usize = 16 << 20;
/// Bytes of a value made by concatenation at most.
const MAX_CONCAT: usize = 1 << 20;
/// Expression nesting followed at most.
const MAX_NEST: u32 = 200;

/// Analyzes PHP source (any file: inline HTML is skipped).
pub fn analyze(src: &[u8]) -> Analysis {
    let mut out = Analysis::default();
    let mut budget = MAX_DECODED;
    run(src, 0, None, &mut out, &mut budget);
    out
}

fn run(src: &[u8], depth: u8, outer_line: Option<u32>, out: &mut Analysis, budget: &mut usize) {
    let tokens = lex::lex(src);
    if tokens.is_empty() {
        return;
    }
    let scopes = Scopes::of(&tokens);
    let mut cx = Cx {
        t: &tokens,
        scope_of: scopes.scope_of,
        funcs: scopes.funcs,
        env: HashMap::new(),
        extracted: HashMap::new(),
        findings: Vec::new(),
        decoded: Vec::new(),
        record: false,
        made: MAX_MADE,
        nest: 0,
    };
    for round in 0..ROUNDS {
        cx.record = round + 1 == ROUNDS;
        cx.made = MAX_MADE;
        let mut i = 0;
        while i < tokens.len() {
            let (_, j) = cx.expr(i);
            i = if j > i { j } else { i + 1 };
        }
    }
    for mut f in cx.findings {
        if let Some(l) = outer_line {
            f.evidence = format!("in a payload decoded at line {l}: line {} {}", f.line, f.evidence);
            f.line = l;
        }
        // One example per rule: the first.
        if !out.findings.iter().any(|o| o.rule == f.rule) {
            out.findings.push(f);
        }
    }
    for (line, bytes, executed) in cx.decoded {
        if bytes.len() > *budget {
            continue;
        }
        *budget -= bytes.len();
        let line = outer_line.unwrap_or(line);
        if depth < MAX_DEPTH && (executed || memchr::memmem::find(&bytes, b"<?").is_some()) {
            let code = if executed && memchr::memmem::find(&bytes, b"<?").is_none() {
                [b"<?php ".as_slice(), &bytes].concat()
            } else {
                bytes.clone()
            };
            run(&code, depth + 1, Some(line), out, budget);
        }
        if out.layers.len() < 64 {
            out.layers.push(bytes);
        }
    }
}

/// Where a value came from, when it is input from outside.
#[derive(Debug)]
struct Src {
    /// `$_GET['c']`, `getallheaders()`, `a network socket`, …
    what: String,
    line: u32,
    /// Read from a socket the code opened, not from the request.
    network: bool,
}

/// What the analysis knows of a value.
#[derive(Clone, Debug, Default)]
struct Val {
    /// Literal values it may have (up to [`MAX_ALTS`]).
    known: Vec<Rc<Vec<u8>>>,
    /// It may have values not in `known`.
    open: bool,
    /// Input from outside reaches it.
    taint: Option<Rc<Src>>,
    /// The input, through string operations only (no unknown function).
    raw: bool,
    /// The input and nothing else (no literal text added).
    pure: bool,
    /// A known value made by an operation (concatenation, `chr`, a
    /// decoder), not written as one literal.
    assembled: bool,
    /// A known value that came out of a decoder.
    decoded: bool,
    /// A file-level variable the file never assigns, which this value is
    /// (copied, not computed from): a request parameter where
    /// `register_globals` is on (the shells of that era run `$cmd` so).
    global: Option<Rc<(Vec<u8>, u32)>>,
}

impl Val {
    fn lit(v: Vec<u8>) -> Val {
        Val { known: vec![Rc::new(v)], ..Val::default() }
    }

    fn unknown() -> Val {
        Val { open: true, ..Val::default() }
    }

    fn input(src: Src) -> Val {
        Val { open: true, taint: Some(Rc::new(src)), raw: true, pure: true, ..Val::default() }
    }

    /// The one literal value, if it has exactly one.
    fn one(&self) -> Option<&[u8]> {
        match (&self.known[..], self.open, &self.taint) {
            ([v], false, None) => Some(v),
            _ => None,
        }
    }

    /// Either value.
    fn union(mut self, o: &Val) -> Val {
        for k in &o.known {
            if self.known.len() >= MAX_ALTS {
                self.open = true;
                break;
            }
            if !self.known.contains(k) {
                self.known.push(k.clone());
            }
        }
        self.open |= o.open;
        if self.taint.is_none() {
            self.taint = o.taint.clone();
            self.raw = o.raw;
            self.pure = o.pure;
        } else if o.taint.is_some() {
            self.raw |= o.raw;
            self.pure |= o.pure;
        }
        self.assembled |= o.assembled;
        self.decoded |= o.decoded;
        if self.global.is_none() {
            self.global = o.global.clone();
        }
        self
    }

    /// `self . o`.
    /// `self . o`; `budget`: bytes the analysis may still make (each
    /// result made is charged).
    fn concat(&self, o: &Val, budget: &mut usize) -> Val {
        let mut v =
            Val { open: self.open || o.open, assembled: true, decoded: self.decoded || o.decoded, ..Val::default() };
        if !self.known.is_empty() && !o.known.is_empty() {
            'outer: for a in &self.known {
                for b in &o.known {
                    let n = a.len() + b.len();
                    if v.known.len() >= MAX_ALTS || n > MAX_CONCAT || n > *budget {
                        v.open = true;
                        break 'outer;
                    }
                    *budget -= n;
                    v.known.push(Rc::new([a.as_slice(), b.as_slice()].concat()));
                }
            }
        } else {
            v.open = true;
        }
        let (t, other) = if self.taint.is_some() { (self, o) } else { (o, self) };
        if t.taint.is_some() {
            v.taint = t.taint.clone();
            v.raw = t.raw || other.raw;
            // Input with literal text around it is no longer the input alone.
            v.pure = t.pure && other.taint.is_some() && other.known.iter().all(|k| k.is_empty());
        }
        v
    }

    /// The result of a function the analysis does not know, of these
    /// arguments: input stays input, but no longer raw.
    fn through(args: &[Val]) -> Val {
        let mut v = Val::unknown();
        if let Some(t) = args.iter().find(|a| a.taint.is_some()) {
            v.taint = t.taint.clone();
        }
        v
    }

    fn tainted(&self, network_too: bool) -> Option<&Src> {
        self.taint.as_deref().filter(|s| network_too || !s.network)
    }
}

/// Function scopes: each named function's body is a scope of its own
/// (variables of one function are not another's), with its parameters.
struct Scopes {
    scope_of: Vec<u32>,
    funcs: HashMap<Vec<u8>, (u32, Vec<Vec<u8>>)>,
}

impl Scopes {
    fn of(t: &[Token]) -> Scopes {
        let mut scope_of = vec![0u32; t.len()];
        let mut funcs = HashMap::new();
        let mut stack: Vec<(u32, usize)> = Vec::new(); // (scope, brace depth of its body)
        let mut depth = 0usize;
        let mut next = 1u32;
        let mut pending: Option<u32> = None;
        let mut i = 0;
        while i < t.len() {
            match &t[i].tok {
                Tok::Name(n) if n == b"function" => {
                    let mut j = i + 1;
                    if matches!(t.get(j).map(|x| &x.tok), Some(Tok::P("&"))) {
                        j += 1;
                    }
                    if let (Some(Tok::Name(name)), Some(Tok::P("("))) =
                        (t.get(j).map(|x| &x.tok), t.get(j + 1).map(|x| &x.tok))
                    {
                        let mut params = Vec::new();
                        let mut k = j + 2;
                        let mut paren = 1;
                        while k < t.len() && paren > 0 {
                            match &t[k].tok {
                                Tok::P("(") => paren += 1,
                                Tok::P(")") => paren -= 1,
                                Tok::Var(v) if paren == 1 => {
                                    if matches!(
                                        t.get(k + 1).map(|x| &x.tok),
                                        Some(Tok::P(",") | Tok::P(")") | Tok::P("="))
                                    ) {
                                        params.push(v.clone());
                                    }
                                }
                                _ => {}
                            }
                            k += 1;
                        }
                        let id = next;
                        next += 1;
                        funcs.entry(name.clone()).or_insert((id, params));
                        pending = Some(id);
                    }
                }
                Tok::P(";") if pending.is_some() => pending = None, // abstract: no body
                Tok::P("{") => {
                    depth += 1;
                    if let Some(id) = pending.take() {
                        stack.push((id, depth));
                    }
                }
                Tok::P("}") => {
                    if stack.last().is_some_and(|&(_, d)| d == depth) {
                        stack.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            scope_of[i] = stack.last().map(|&(s, _)| s).unwrap_or(0);
            i += 1;
        }
        Scopes { scope_of, funcs }
    }
}

/// Request arrays.
fn superglobal(name: &[u8]) -> bool {
    matches!(
        name,
        b"_GET"
            | b"_POST"
            | b"_REQUEST"
            | b"_COOKIE"
            | b"_FILES"
            | b"HTTP_GET_VARS"
            | b"HTTP_POST_VARS"
            | b"HTTP_COOKIE_VARS"
            | b"HTTP_POST_FILES"
            | b"HTTP_RAW_POST_DATA"
    )
}

/// Keys of `$_SERVER` (and `getenv`) the client writes.
fn client_key(key: &[u8]) -> bool {
    key.starts_with(b"HTTP_") || key == b"QUERY_STRING" || key == b"PHP_AUTH_USER" || key == b"PHP_AUTH_PW"
}

/// Functions whose first argument runs as a command.
const EXEC: &[&str] = &["system", "exec", "shell_exec", "passthru", "popen", "proc_open", "pcntl_exec", "expect_popen"];
/// Names that are dangerous to see assembled or called by a variable.
const DANGEROUS: &[&str] = &[
    "system",
    "exec",
    "shell_exec",
    "passthru",
    "popen",
    "proc_open",
    "pcntl_exec",
    "assert",
    "eval",
    "create_function",
    "call_user_func",
    "call_user_func_array",
    "array_map",
    "array_filter",
    "preg_replace",
    "base64_decode",
    "gzinflate",
    "gzuncompress",
    "str_rot13",
    "file_put_contents",
    "fwrite",
    "fputs",
    "move_uploaded_file",
    "include",
    "require",
    "register_shutdown_function",
    "usort",
    "uasort",
    "uksort",
    "array_walk",
    "ob_start",
    "mail",
    "fsockopen",
];
/// Functions that take a callback: the argument it is in (-1: the last).
const CALLBACKS: &[(&str, i32)] = &[
    ("call_user_func", 0),
    ("call_user_func_array", 0),
    ("forward_static_call", 0),
    ("forward_static_call_array", 0),
    ("array_map", 0),
    ("array_filter", 1),
    ("array_walk", 1),
    ("array_walk_recursive", 1),
    ("array_reduce", 1),
    ("usort", 1),
    ("uasort", 1),
    ("uksort", 1),
    ("array_udiff", -1),
    ("array_udiff_assoc", -1),
    ("array_uintersect", -1),
    ("array_diff_ukey", -1),
    ("array_intersect_ukey", -1),
    ("register_shutdown_function", 0),
    ("register_tick_function", 0),
    ("iterator_apply", 1),
    ("ob_start", 0),
    ("set_error_handler", 0),
    ("set_exception_handler", 0),
    ("header_register_callback", 0),
    ("spl_autoload_register", 0),
    ("preg_replace_callback", 1),
    ("mb_ereg_replace_callback", 1),
];
/// Functions whose result says nothing of the input's content.
const CLEAN: &[&str] = &[
    "intval",
    "floatval",
    "boolval",
    "is_numeric",
    "is_string",
    "is_array",
    "is_int",
    "isset",
    "empty",
    "count",
    "sizeof",
    "strlen",
    "md5",
    "sha1",
    "crc32",
    "hash",
    "hash_hmac",
    "password_hash",
    "password_verify",
    "in_array",
    "array_key_exists",
    "preg_match",
    "preg_match_all",
    "strcmp",
    "strcasecmp",
    "strpos",
    "stripos",
    "file_exists",
    "is_file",
    "is_dir",
    "escapeshellarg",
    "function_exists",
    "is_callable",
    "abs",
    "max",
    "min",
    "round",
    "time",
    "date",
    "define",
    "defined",
    "filesize",
    "ctype_digit",
    "ctype_alnum",
    "hash_equals",
    "json_encode",
    "htmlspecialchars",
    "esc_html",
    "esc_attr",
    "esc_url",
    "absint",
    "sanitize_key",
    "sanitize_file_name",
    "sanitize_text_field",
    "wp_verify_nonce",
    "check_admin_referer",
    "current_user_can",
];
/// String functions: the input goes through unchanged in kind.
const TRANSPARENT: &[&str] = &[
    "trim",
    "ltrim",
    "rtrim",
    "stripslashes",
    "stripcslashes",
    "urldecode",
    "rawurldecode",
    "base64_decode",
    "str_rot13",
    "strrev",
    "strtolower",
    "strtoupper",
    "substr",
    "str_replace",
    "sprintf",
    "implode",
    "join",
    "hex2bin",
    "gzinflate",
    "gzuncompress",
    "gzdecode",
    "html_entity_decode",
    "current",
    "reset",
    "end",
    "array_pop",
    "array_shift",
    "array_values",
    "pack",
    "convert_uudecode",
    "strval",
    "unserialize",
    "json_decode",
    "explode",
    "str_split",
    "wp_unslash",
    "array_slice",
    "trim",
    "nl2br",
    "ucfirst",
];
/// Keep the input the whole value.
const KEEPS_PURE: &[&str] = &[
    "trim",
    "ltrim",
    "rtrim",
    "stripslashes",
    "urldecode",
    "rawurldecode",
    "base64_decode",
    "str_rot13",
    "strrev",
    "hex2bin",
    "html_entity_decode",
    "stripcslashes",
    "current",
    "reset",
    "end",
    "array_pop",
    "array_shift",
    "strval",
    "wp_unslash",
    "gzinflate",
    "gzuncompress",
    "gzdecode",
];
/// Functions a whole path from the request makes a file manager of.
const FILE_ACCESS: &[&str] = &[
    "unlink",
    "rmdir",
    "rename",
    "chmod",
    "chown",
    "chgrp",
    "readfile",
    "file_get_contents",
    "highlight_file",
    "show_source",
    "fopen",
    "file",
    "scandir",
    "opendir",
    "touch",
    "copy",
    "mkdir",
    "symlink",
    "link",
    "fpassthru",
    "parse_ini_file",
    "glob",
    "dir",
];
/// Functions that open a connection: the host is the first argument.
const CONNECT: &[&str] = &["fsockopen", "pfsockopen", "stream_socket_client", "socket_connect"];
const DB_LOGIN: &[&str] =
    &["mysql_connect", "mysqli_connect", "mysql_pconnect", "pg_connect", "mysqli", "pdo", "mssql_connect"];
const SQL: &[&str] = &[
    "mysql_query",
    "mysqli_query",
    "pg_query",
    "mssql_query",
    "sqlite_query",
    "mysql_db_query",
    "mysql_unbuffered_query",
];
/// Socket openers: what is read from their result is network input.
const SOCKETS: &[&str] =
    &["fsockopen", "pfsockopen", "stream_socket_client", "socket_create", "socket_accept", "stream_socket_accept"];

fn is(list: &[&str], name: &[u8]) -> bool {
    list.iter().any(|n| n.as_bytes() == name)
}

/// What a value is, in a few words, for evidence.
fn show(v: &[u8]) -> String {
    let s = crate::util::bytes::printable(&v[..v.len().min(40)]);
    if v.len() > 40 {
        format!("'{s}…'")
    } else {
        format!("'{s}'")
    }
}

struct Cx<'t> {
    t: &'t [Token],
    scope_of: Vec<u32>,
    funcs: HashMap<Vec<u8>, (u32, Vec<Vec<u8>>)>,
    env: HashMap<(u32, Vec<u8>), Val>,
    /// Scopes where `extract()` made variables of request input.
    extracted: HashMap<u32, Rc<Src>>,
    findings: Vec<Finding>,
    /// Decoded values: (line, bytes, run as code).
    decoded: Vec<(u32, Vec<u8>, bool)>,
    /// Keep findings (the last round).
    record: bool,
    /// Bytes of literal values the analysis may still make (by
    /// concatenation and folding); past it, values are not followed.
    made: usize,
    nest: u32,
}

impl Cx<'_> {
    fn tok(&self, i: usize) -> Option<&Tok> {
        self.t.get(i).map(|t| &t.tok)
    }

    fn line(&self, i: usize) -> u32 {
        self.t.get(i).or(self.t.last()).map(|t| t.line).unwrap_or(0)
    }

    fn is_p(&self, i: usize, p: &str) -> bool {
        matches!(self.tok(i), Some(Tok::P(q)) if *q == p)
    }

    fn is_name(&self, i: usize, n: &[u8]) -> bool {
        matches!(self.tok(i), Some(Tok::Name(m)) if m == n)
    }

    fn find(&mut self, rule: &'static str, line: u32, evidence: String) {
        if self.record {
            let f = Finding { rule, line, evidence };
            if !self.findings.contains(&f) && self.findings.len() < 64 {
                self.findings.push(f);
            }
        }
    }

    /// Keeps a decoded payload to judge again (once, in the last round);
    /// `executed`: it is run as code.
    fn layer(&mut self, line: u32, bytes: &[u8], executed: bool) {
        if !self.record {
            return;
        }
        match self.decoded.iter_mut().find(|(_, b, _)| b.as_slice() == bytes) {
            Some(d) => d.2 |= executed,
            None => self.decoded.push((line, bytes.to_vec(), executed)),
        }
    }

    fn scope(&self, i: usize) -> u32 {
        self.scope_of.get(i).copied().unwrap_or(0)
    }

    fn get_var(&self, i: usize, name: &[u8]) -> Val {
        let scope = if name == b"GLOBALS" { 0 } else { self.scope(i) };
        match self.env.get(&(scope, name.to_vec())) {
            Some(v) => v.clone(),
            None => match self.extracted.get(&scope) {
                Some(src) if name != b"this" => {
                    Val { open: true, taint: Some(src.clone()), raw: true, pure: true, ..Val::default() }
                }
                _ if scope == 0
                    && !matches!(
                        name,
                        b"this" | b"GLOBALS" | b"argv" | b"argc" | b"php_errormsg" | b"http_response_header"
                    ) =>
                {
                    Val { open: true, global: Some(Rc::new((name.to_vec(), self.line(i)))), ..Val::default() }
                }
                _ => Val::unknown(),
            },
        }
    }

    fn set_var(&mut self, scope: u32, name: &[u8], v: &Val) {
        let e = self.env.entry((scope, name.to_vec())).or_default();
        *e = std::mem::take(e).union(v);
    }

    /// The value of `$name[key]`.
    fn index(&self, i: usize, name: &[u8], base: Val, key: Option<&[u8]>) -> Val {
        if superglobal(name) {
            let what = match key {
                Some(k) => format!("${}[{}]", String::from_utf8_lossy(name), show(k)),
                None => format!("${}[…]", String::from_utf8_lossy(name)),
            };
            return Val::input(Src { what, line: self.line(i), network: false });
        }
        if name == b"_SERVER" {
            if let Some(k) = key.filter(|k| client_key(k)) {
                let what = format!("$_SERVER[{}]", show(k));
                return Val::input(Src { what, line: self.line(i), network: false });
            }
            return Val::unknown();
        }
        base
    }

    /// An expression from `i`; its value and the index after it.
    fn expr(&mut self, i: usize) -> (Val, usize) {
        if self.nest > MAX_NEST {
            return (Val::unknown(), i + 1);
        }
        self.nest += 1;
        let r = self.expr_inner(i);
        self.nest -= 1;
        r
    }

    fn expr_inner(&mut self, i: usize) -> (Val, usize) {
        let (mut v, mut j) = self.binary(i, 0);
        loop {
            match self.tok(j) {
                Some(Tok::P("?")) => {
                    if self.is_p(j + 1, ":") {
                        let (r, k) = self.expr(j + 2);
                        v = v.union(&r);
                        j = k;
                    } else {
                        let (a, k) = self.expr(j + 1);
                        let mut k = k;
                        let mut b = Val::default();
                        if self.is_p(k, ":") {
                            let (bb, kk) = self.expr(k + 1);
                            b = bb;
                            k = kk;
                        }
                        v = a.union(&b);
                        j = k;
                    }
                }
                Some(Tok::P("??")) => {
                    let (r, k) = self.expr(j + 1);
                    v = v.union(&r);
                    j = k;
                }
                _ => return (v, j),
            }
        }
    }

    /// The binary operator at `j` and its precedence (PHP's order: `.`
    /// binds tighter than `&`, which binds tighter than `^`, then `|`;
    /// obfuscators rely on it).
    fn binop(&self, j: usize) -> Option<(&'static str, u8)> {
        let op = match self.tok(j)? {
            Tok::P(p) => *p,
            Tok::Name(n) if matches!(n.as_slice(), b"and" | b"or" | b"xor") => "||",
            Tok::Name(n) if n == b"instanceof" => "instanceof",
            _ => return None,
        };
        let prec = match op {
            "||" | "&&" => 1,
            "|" => 3,
            "^" => 4,
            "&" => 5,
            "==" | "!=" | "===" | "!==" | "<>" | "<=>" | "<" | ">" | "<=" | ">=" => 6,
            "<<" | ">>" => 7,
            "." => 8,
            "+" | "-" => 9,
            "*" | "/" | "%" => 10,
            "**" => 11,
            "instanceof" => 12,
            _ => return None,
        };
        Some((op, prec))
    }

    /// Operands and binary operators from `i`, those of precedence `min`
    /// and above (precedence climbing, left associative).
    fn binary(&mut self, i: usize, min: u8) -> (Val, usize) {
        let (mut v, mut j) = self.unary(i);
        while let Some((op, prec)) = self.binop(j) {
            if prec < min {
                break;
            }
            let (r, k) = self.binary(j + 1, prec + 1);
            v = match op {
                "." => v.concat(&r, &mut self.made),
                "^" | "|" | "&" => self.bitwise(op, &v, &r),
                _ => Val::unknown(),
            };
            j = if k > j { k } else { j + 1 };
        }
        (v, j)
    }

    /// `a OP b` for the bitwise operators, which PHP applies byte by byte
    /// to two strings (obfuscators build names with them); anything else
    /// is a number.
    fn bitwise(&mut self, op: &str, a: &Val, b: &Val) -> Val {
        let (Some(x), Some(y)) = (a.one(), b.one()) else {
            return Val::through(&[a.clone(), b.clone()]);
        };
        let numeric = |v: &[u8]| !v.is_empty() && v.iter().all(|c| c.is_ascii_digit());
        if numeric(x) || numeric(y) || x.len().max(y.len()) > self.made {
            return Val::unknown();
        }
        let out: Vec<u8> = match op {
            "|" => (0..x.len().max(y.len()))
                .map(|k| x.get(k).copied().unwrap_or(0) | y.get(k).copied().unwrap_or(0))
                .collect(),
            "&" => x.iter().zip(y).map(|(p, q)| p & q).collect(),
            _ => x.iter().zip(y).map(|(p, q)| p ^ q).collect(),
        };
        self.made -= out.len();
        Val { assembled: true, ..Val::lit(out) }
    }

    /// Arguments in parentheses at `i` (which holds `(`); the values, with
    /// the index after `)`.
    fn args(&mut self, i: usize) -> (Vec<Val>, usize) {
        let mut out = Vec::new();
        let mut j = i + 1;
        while j < self.t.len() && !self.is_p(j, ")") {
            if self.is_p(j, "...") || self.is_p(j, "&") {
                j += 1;
                continue;
            }
            // Named argument `name: value`.
            if matches!(self.tok(j), Some(Tok::Name(_))) && self.is_p(j + 1, ":") {
                j += 2;
            }
            let (v, k) = self.expr(j);
            out.push(v);
            j = if k > j { k } else { j + 1 };
            if self.is_p(j, ",") {
                j += 1;
            } else if !self.is_p(j, ")") {
                // Something this reader does not follow: skip to the close.
                j = self.close(i);
                break;
            }
        }
        (out, (j + 1).min(self.t.len().max(j + 1)))
    }

    /// The index of the bracket that closes the one at `i`.
    fn close(&self, i: usize) -> usize {
        let mut depth = 0i32;
        let mut j = i;
        while j < self.t.len() {
            match self.tok(j) {
                Some(Tok::P("(" | "[" | "{")) => depth += 1,
                Some(Tok::P(")" | "]" | "}")) => {
                    depth -= 1;
                    if depth <= 0 {
                        return j;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        j
    }

    fn unary(&mut self, i: usize) -> (Val, usize) {
        match self.tok(i) {
            Some(Tok::P("~")) => {
                let (v, j) = self.unary(i + 1);
                match v.one() {
                    Some(x) if !x.iter().all(u8::is_ascii_digit) => {
                        let out = x.iter().map(|b| !b).collect();
                        (Val { assembled: true, ..Val::lit(out) }, j)
                    }
                    _ => (Val::through(&[v]), j),
                }
            }
            Some(Tok::P("@" | "&" | "+" | "-")) => self.unary(i + 1),
            Some(Tok::P("!")) => {
                let (_, j) = self.unary(i + 1);
                (Val::unknown(), j)
            }
            Some(Tok::P("++" | "--")) => self.unary(i + 1),
            Some(Tok::P("(")) => {
                // A cast.
                if let (Some(Tok::Name(n)), true) = (self.tok(i + 1), self.is_p(i + 2, ")")) {
                    let n = n.clone();
                    if matches!(
                        n.as_slice(),
                        b"int"
                            | b"integer"
                            | b"float"
                            | b"double"
                            | b"bool"
                            | b"boolean"
                            | b"string"
                            | b"array"
                            | b"object"
                            | b"binary"
                            | b"unset"
                    ) {
                        let (v, j) = self.unary(i + 3);
                        let clean =
                            matches!(n.as_slice(), b"int" | b"integer" | b"float" | b"double" | b"bool" | b"boolean");
                        return (if clean { Val::unknown() } else { v }, j);
                    }
                }
                let (v, j) = self.expr(i + 1);
                let j = if self.is_p(j, ")") { j + 1 } else { self.close(i) + 1 };
                self.postfix(v, j, None)
            }
            _ => {
                let (v, j, var) = self.primary(i);
                self.postfix(v, j, var)
            }
        }
    }

    /// Calls, indexes, properties and assignments after a value.
    /// `var`: the variable (scope, name) the value is, when it is one.
    fn postfix(&mut self, mut v: Val, mut j: usize, mut var: Option<(u32, Vec<u8>)>) -> (Val, usize) {
        let mut root_var = var.clone();
        loop {
            match self.tok(j) {
                Some(Tok::P("[")) => {
                    let close = "]";
                    let (key, k) = if self.is_p(j + 1, close) { (Val::default(), j + 1) } else { self.expr(j + 1) };
                    let k = if self.is_p(k, close) { k + 1 } else { self.close(j) + 1 };
                    let name = var.as_ref().map(|(_, n)| n.clone());
                    v = match name {
                        Some(n) if superglobal(&n) || n == b"_SERVER" => self.index(j, &n, v, key.one()),
                        _ if v.taint.is_some() => Val { pure: v.pure, raw: v.raw, ..v },
                        _ => {
                            // An element of a literal string is a byte of it.
                            match (v.one(), key.one().and_then(|k| std::str::from_utf8(k).ok()?.parse::<usize>().ok()))
                            {
                                (Some(s), Some(n)) if !v.known.is_empty() && n < s.len() && var.is_none() => {
                                    Val::lit(vec![s[n]])
                                }
                                _ => v,
                            }
                        }
                    };
                    var = None;
                    j = k;
                }
                Some(Tok::P("->" | "?->" | "::")) => {
                    let op_static = self.is_p(j, "::");
                    match self.tok(j + 1) {
                        Some(Tok::Name(m)) => {
                            let m = m.clone();
                            if self.is_p(j + 2, "(") {
                                let line = self.line(j + 1);
                                let (args, k) = self.args(j + 2);
                                v = self.call(&m, &args, line, true);
                                root_var = None;
                                j = k;
                            } else {
                                // A property: kept per name, over the file.
                                let key = [b"->".as_slice(), &m].concat();
                                v = if op_static {
                                    Val::unknown()
                                } else {
                                    self.env.get(&(u32::MAX, key.clone())).cloned().unwrap_or_else(Val::unknown)
                                };
                                var = Some((u32::MAX, key));
                                root_var = var.clone();
                                j += 2;
                                continue;
                            }
                        }
                        Some(Tok::Var(_)) => {
                            // `$obj->$name(...)`: a method named by a value.
                            let (name, k, _) = self.primary(j + 1);
                            if self.is_p(k, "(") {
                                let line = self.line(j + 1);
                                let (args, kk) = self.args(k);
                                self.dynamic_call(&name, &args, line);
                                v = Val::through(&args);
                                j = kk;
                            } else {
                                v = Val::unknown();
                                j = k;
                            }
                        }
                        _ => {
                            v = Val::unknown();
                            j += 1;
                        }
                    }
                    var = None;
                }
                Some(Tok::P("(")) => {
                    let line = self.line(j);
                    let (args, k) = self.args(j);
                    v = self.dynamic_call(&v, &args, line);
                    var = None;
                    j = k;
                }
                Some(Tok::P("=")) if root_var.is_some() => {
                    let (r, k) = self.expr(if self.is_p(j + 1, "&") { j + 2 } else { j + 1 });
                    if let Some((scope, name)) = root_var.take() {
                        self.set_var(scope, &name, &r);
                    }
                    return (r, k);
                }
                Some(Tok::P(".=")) if root_var.is_some() => {
                    let (r, k) = self.expr(j + 1);
                    let cur = v.concat(&r, &mut self.made);
                    let cur = if v.known.is_empty() && !v.open { Val { assembled: true, ..r.clone() } } else { cur };
                    if let Some((scope, name)) = root_var.take() {
                        self.set_var(scope, &name, &cur);
                    }
                    return (cur, k);
                }
                Some(Tok::P("??=" | "+=" | "-=" | "*=" | "/=" | "%=" | "|=" | "&=" | "^=" | "<<=" | ">>=" | "**="))
                    if root_var.is_some() =>
                {
                    let (r, k) = self.expr(j + 1);
                    if let Some((scope, name)) = root_var.take() {
                        let r = if self.is_p(j, "??=") || self.is_p(j, "^=") { r } else { Val::unknown() };
                        self.set_var(scope, &name, &r);
                    }
                    return (v, k);
                }
                Some(Tok::P("++" | "--")) => {
                    j += 1;
                }
                _ => return (v, j),
            }
            if var.is_none() && root_var.is_some() && !matches!(self.tok(j), Some(Tok::P("[" | "=" | ".=" | "->"))) {
                root_var = None;
            }
        }
    }

    /// A primary value at `i`: its value, the index after it, and the
    /// variable it is.
    fn primary(&mut self, i: usize) -> (Val, usize, Option<(u32, Vec<u8>)>) {
        let line = self.line(i);
        let Some(tok) = self.tok(i).cloned() else { return (Val::unknown(), i, None) };
        match tok {
            Tok::Var(name) => {
                let scope = if name == b"GLOBALS" { 0 } else { self.scope(i) };
                let v = if superglobal(&name) && !self.is_p(i + 1, "[") {
                    Val::input(Src { what: format!("${}", String::from_utf8_lossy(&name)), line, network: false })
                } else {
                    self.get_var(i, &name)
                };
                (v, i + 1, Some((scope, name)))
            }
            Tok::VarVar => {
                // `$$name = value`: a variable named by input makes input
                // of every variable.
                let (n, j) = if self.is_p(i + 1, "{") {
                    let (v, k) = self.expr(i + 2);
                    (v, if self.is_p(k, "}") { k + 1 } else { k })
                } else {
                    let (v, k, _) = self.primary(i + 1);
                    (v, k)
                };
                if self.is_p(j, "=") {
                    let (r, k) = self.expr(j + 1);
                    if let Some(src) = n.taint.clone().filter(|_| r.taint.is_some()) {
                        self.extracted.entry(self.scope(i)).or_insert(src);
                    }
                    return (r, k, None);
                }
                (Val::unknown(), j, None)
            }
            Tok::Str(parts) => (self.string(i, &parts), i + 1, None),
            Tok::Shell(parts) => {
                let v = self.string(i, &parts);
                self.sink_exec("`…` (a shell command)", &v, line);
                (Val::through(&[v]), i + 1, None)
            }
            Tok::Num(n) => (Val::lit(n), i + 1, None),
            Tok::P("[") => {
                let (v, j) = self.array(i, "]");
                if self.is_p(j, "=") {
                    // `[$a, $b] = value`
                    let (r, k) = self.expr(j + 1);
                    self.assign_all(i, j, &r);
                    return (r, k, None);
                }
                (v, j, None)
            }
            Tok::Name(n) => self.name(i, &n, line),
            _ => (Val::unknown(), i, None),
        }
    }

    /// Every variable between `from` and `to` takes `v` (a destructuring).
    fn assign_all(&mut self, from: usize, to: usize, v: &Val) {
        for k in from..to {
            if let Some(Tok::Var(n)) = self.tok(k) {
                let n = n.clone();
                let scope = self.scope(k);
                let v = Val { known: Vec::new(), open: true, ..v.clone() };
                self.set_var(scope, &n, &v);
            }
        }
    }

    /// An array literal from `i` (at `[` or `(`) to `close`: the union of
    /// its elements, in order.
    fn array(&mut self, i: usize, close: &str) -> (Val, usize) {
        let mut v = Val::default();
        let mut j = i + 1;
        while j < self.t.len() && !self.is_p(j, close) {
            if self.is_p(j, ",") || self.is_p(j, "...") || self.is_p(j, "&") {
                j += 1;
                continue;
            }
            let (e, k) = self.expr(j);
            let (e, k) = if self.is_p(k, "=>") { self.expr(k + 1) } else { (e, k) };
            v = v.union(&e);
            j = if k > j { k } else { j + 1 };
            if !self.is_p(j, ",") && !self.is_p(j, close) {
                j = self.close(i);
                break;
            }
        }
        (v, j + 1)
    }

    fn string(&mut self, i: usize, parts: &[Part]) -> Val {
        let mut v = Val::lit(Vec::new());
        if parts.is_empty() {
            return v;
        }
        let mut first = true;
        for p in parts {
            let pv = match p {
                Part::Text(t) => Val::lit(t.clone()),
                Part::Var(name, key) => {
                    let base = self.get_var(i, name);
                    if key.is_some() || superglobal(name) || name == b"_SERVER" {
                        self.index(i, name, base, key.as_deref())
                    } else {
                        base
                    }
                }
            };
            v = if first { pv } else { v.concat(&pv, &mut self.made) };
            first = false;
        }
        v
    }

    /// A name at `i`: a keyword, a call, a constant.
    fn name(&mut self, i: usize, n: &[u8], line: u32) -> (Val, usize, Option<(u32, Vec<u8>)>) {
        match n {
            b"function" | b"fn" => {
                // Skip the header: name, parameters, `use`, return type.
                let mut j = i + 1;
                while j < self.t.len() && !self.is_p(j, "(") {
                    j += 1;
                }
                j = self.close(j) + 1;
                if self.is_name(j, b"use") {
                    j = self.close(j + 1) + 1;
                }
                if self.is_p(j, ":") {
                    j += 1;
                    while matches!(self.tok(j), Some(Tok::Name(_)) | Some(Tok::P("?" | "|" | "\\"))) {
                        j += 1;
                    }
                }
                // Parameters and `use` variables are assigned (by the caller).
                for k in i + 1..j.min(self.t.len()) {
                    if let Some(Tok::Var(v)) = self.tok(k) {
                        let v = v.clone();
                        let scope = self.scope(k);
                        self.set_var(scope, &v, &Val::unknown());
                    }
                }
                if n == b"fn" && self.is_p(j, "=>") {
                    let (_, k) = self.expr(j + 1);
                    return (Val::unknown(), k, None);
                }
                (Val::unknown(), j, None)
            }
            b"new" => {
                let (class, j) = match self.tok(i + 1) {
                    Some(Tok::Name(c)) => (Val::lit(c.clone()), i + 2),
                    Some(Tok::Var(_)) => {
                        let (v, k, _) = self.primary(i + 1);
                        (v, k)
                    }
                    _ => (Val::unknown(), i + 1),
                };
                if self.is_p(j, "(") {
                    let (args, k) = self.args(j);
                    if let Some(c) = class.one() {
                        let c = c.to_ascii_lowercase();
                        if c == b"reflectionfunction" {
                            self.callee(
                                &args.first().cloned().unwrap_or_default(),
                                "new ReflectionFunction()",
                                &args[1.min(args.len())..],
                                line,
                            );
                        }
                        return (self.call(&c, &args, line, true), k, None);
                    }
                    return (Val::through(&args), k, None);
                }
                (Val::unknown(), j, None)
            }
            b"array" | b"list" if self.is_p(i + 1, "(") => {
                let (v, j) = self.array(i + 1, ")");
                if self.is_p(j, "=") {
                    let (r, k) = self.expr(j + 1);
                    self.assign_all(i, j, &r);
                    return (r, k, None);
                }
                (v, j, None)
            }
            b"eval" | b"assert" if self.is_p(i + 1, "(") => {
                let (args, j) = self.args(i + 1);
                let what = if n == b"eval" { "eval()" } else { "assert()" };
                if let Some(a) = args.first() {
                    self.sink_code(what, a, line);
                }
                (Val::unknown(), j, None)
            }
            b"include" | b"include_once" | b"require" | b"require_once" => {
                let (v, j) = self.expr(i + 1);
                if let Some(src) = v.tainted(true).filter(|_| v.pure) {
                    let e = format!("{} (line {}) is the file {}", src.what, src.line, String::from_utf8_lossy(n));
                    self.find("php_flow_request_to_code", line, e);
                }
                (Val::unknown(), j, None)
            }
            b"foreach" if self.is_p(i + 1, "(") => {
                let (v, mut j) = self.expr(i + 2);
                if self.is_name(j, b"as") {
                    let end = self.close(i + 1);
                    let elem = Val { known: v.known.clone(), open: true, ..v.clone() };
                    self.assign_all(j + 1, end, &elem);
                    j = end + 1;
                }
                (Val::unknown(), j, None)
            }
            b"global" => {
                // `global $a, $b;`: the function's $a is the file's.
                let mut j = i + 1;
                let scope = self.scope(i);
                while let Some(Tok::Var(v)) = self.tok(j) {
                    let v = v.clone();
                    if scope != 0 {
                        let g = self.get_var(0, &v);
                        if g.taint.is_some() || !g.known.is_empty() {
                            self.set_var(scope, &v, &g);
                        }
                    }
                    j += 1;
                    if self.is_p(j, ",") {
                        j += 1;
                    }
                }
                (Val::unknown(), j, None)
            }
            b"echo" | b"print" | b"return" | b"clone" | b"yield" | b"throw" | b"else" | b"do" | b"try" | b"case" => {
                (Val::unknown(), i + 1, None)
            }
            b"true" | b"false" | b"null" => (Val::lit(Vec::new()), i + 1, None),
            _ if self.is_p(i + 1, "(") => {
                let (args, j) = self.args(i + 1);
                (self.call(n, &args, line, false), j, None)
            }
            _ if self.is_p(i + 1, "::") || self.is_p(i + 1, "\\") => (Val::unknown(), i + 1, None),
            _ => {
                // An undefined constant is the string of its name (PHP
                // before 8), which obfuscators count on. A defined one is
                // not a literal this reader knows: one of several values.
                let written = self.t[i].written.as_deref().map(<[u8]>::to_vec).unwrap_or_else(|| n.to_vec());
                if n.starts_with(b"__") {
                    return (Val::unknown(), i + 1, None);
                }
                (Val::lit(written), i + 1, None)
            }
        }
    }

    /// `name(args)`; `method`: called on an object or class.
    fn call(&mut self, name: &[u8], args: &[Val], line: u32, method: bool) -> Val {
        let named = String::from_utf8_lossy(name).to_string();
        // A function of the file: its parameters take the arguments (not a
        // method's: one name serves many classes).
        if let Some((scope, params)) = self.funcs.get(name).cloned().filter(|_| !method) {
            for (p, a) in params.iter().zip(args) {
                if a.taint.is_some() || !a.known.is_empty() {
                    let a = Val { pure: false, ..a.clone() };
                    self.set_var(scope, p, &a);
                }
            }
        }
        if method {
            if is(DB_LOGIN, name) {
                self.sink_db_login(&named, args, line);
            }
            return Val::through(args);
        }
        self.sinks(name, &named, args, line);
        // Sources.
        let first = args.first();
        let lit0 = first.and_then(Val::one);
        match name {
            b"getallheaders" | b"apache_request_headers" | b"filter_input" | b"filter_input_array" => {
                return Val::input(Src { what: format!("{named}()"), line, network: false });
            }
            b"getenv" if lit0.is_some_and(client_key) => {
                return Val::input(Src {
                    what: format!("getenv({})", show(lit0.unwrap_or_default())),
                    line,
                    network: false,
                });
            }
            b"file_get_contents" | b"fopen" | b"file" | b"readfile" | b"stream_get_contents"
                if first.is_some_and(|a| a.known.iter().any(|k| k.eq_ignore_ascii_case(b"php://input"))) =>
            {
                return Val::input(Src { what: "php://input".into(), line, network: false });
            }
            b"extract" | b"parse_str" | b"import_request_variables" | b"mb_parse_str"
                if args.len() <= 1 || name == b"extract" =>
            {
                let src = match (name, first) {
                    (b"import_request_variables", _) => {
                        Some(Rc::new(Src { what: "import_request_variables()".into(), line, network: false }))
                    }
                    (_, Some(a)) => a.taint.clone(),
                    _ => None,
                };
                if let Some(src) = src {
                    let scope_line = line;
                    let scope = self.scope_at_line(scope_line);
                    self.extracted.entry(scope).or_insert(src);
                }
                return Val::unknown();
            }
            _ => {}
        }
        if is(SOCKETS, name) {
            return Val::input(Src { what: format!("a network socket ({named}())"), line, network: true });
        }
        if is(CLEAN, name) {
            return Val::unknown();
        }
        // Fold literal arguments.
        let lits: Option<Vec<&[u8]>> = args.iter().map(Val::one).collect();
        if let Some(lits) = lits.filter(|l| !l.is_empty()) {
            if let Some(out) = fold::call(name, &lits).filter(|o| o.len() <= self.made) {
                self.made -= out.len();
                let decoded = fold::is_decoder(name) || args.iter().any(|a| a.decoded);
                if decoded && out.len() >= 64 {
                    self.layer(line, &out, false);
                }
                return Val { assembled: true, decoded, ..Val::lit(out) };
            }
        }
        if name == b"implode" || name == b"join" {
            // implode(sep, array-of-literals): the pieces in order.
            if let (Some(sep), Some(arr)) = (args.first().and_then(Val::one), args.get(1)) {
                if !arr.open && !arr.known.is_empty() && arr.taint.is_none() {
                    let joined = arr.known.iter().map(|k| k.as_slice()).collect::<Vec<_>>().join(sep);
                    return Val { assembled: true, ..Val::lit(joined) };
                }
            }
        }
        if is(TRANSPARENT, name) {
            let mut v = Val::through(args);
            if let Some(t) = args.iter().find(|a| a.taint.is_some()) {
                v.raw = t.raw;
                v.pure = t.pure && is(KEEPS_PURE, name);
            }
            v.decoded = fold::is_decoder(name) || args.iter().any(|a| a.decoded);
            return v;
        }
        Val::through(args)
    }

    /// The scope of the first token on `line` (for calls whose index is
    /// not at hand).
    fn scope_at_line(&self, line: u32) -> u32 {
        let k = self.t.partition_point(|t| t.line < line);
        self.scope(k)
    }

    /// A call through a value: `$f(...)`, `(expr)(...)`.
    fn dynamic_call(&mut self, callee: &Val, args: &[Val], line: u32) -> Val {
        self.callee(callee, "a call through a variable", args, line);
        let mut out = Val::through(args);
        for k in callee.known.clone() {
            let name = k.to_ascii_lowercase();
            if name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') && !name.is_empty() {
                out = out.union(&self.call(&name, args, line, false));
            }
        }
        out
    }

    /// The function a callback or a variable call names: input there, or
    /// a dangerous name assembled from pieces, is a finding. `rest`: the
    /// other arguments (input among them makes a dangerous name one too).
    fn callee(&mut self, callee: &Val, via: &str, rest: &[Val], line: u32) {
        // The whole name from input: a name built around input (a method
        // prefix, a class) is how real applications dispatch.
        if let Some(src) = callee.tainted(true).filter(|_| callee.pure) {
            let e = format!("{} (line {}) is the function called by {via}", src.what, src.line);
            self.find("php_flow_request_function_name", line, e);
            return;
        }
        for k in &callee.known {
            let name = k.to_ascii_lowercase();
            if !is(DANGEROUS, &name) {
                continue;
            }
            let name_s = String::from_utf8_lossy(&name).to_string();
            if callee.assembled {
                let e = format!("{} is assembled and called by {via}", show(&name));
                self.find("php_flow_assembled_function_name", line, e);
            } else if let Some(src) = rest.iter().find_map(|a| a.tainted(true)) {
                let e = format!("{} (line {}) reaches {name_s}() by {via}", src.what, src.line);
                let rule = if src.network { "php_flow_network_to_exec" } else { "php_flow_request_to_exec" };
                self.find(rule, line, e);
            }
        }
    }

    fn sink_exec(&mut self, what: &str, v: &Val, line: u32) {
        if let Some(src) = v.tainted(true) {
            let rule = if src.network { "php_flow_network_to_exec" } else { "php_flow_request_to_exec" };
            let e = format!("{} (line {}) reaches {what}", src.what, src.line);
            self.find(rule, line, e);
        } else if let Some(g) = v.global.as_deref() {
            let e = format!(
                "${} (line {}), never assigned in the file (a request parameter under register_globals), reaches {what}",
                String::from_utf8_lossy(&g.0),
                g.1
            );
            self.find("php_flow_request_to_exec", line, e);
        }
    }

    fn sink_code(&mut self, what: &str, v: &Val, line: u32) {
        if let Some(src) = v.tainted(true) {
            let rule = if src.network { "php_flow_network_to_exec" } else { "php_flow_request_to_code" };
            let e = format!("{} (line {}) reaches {what}", src.what, src.line);
            self.find(rule, line, e);
        }
        if v.decoded {
            for k in &v.known {
                let e = format!("a decoded payload of {} bytes reaches {what}", k.len());
                self.find("php_flow_decoded_code", line, e);
                self.layer(line, k, true);
            }
        }
    }

    fn sink_db_login(&mut self, named: &str, args: &[Val], line: u32) {
        if let Some(src) = args.first().filter(|a| a.raw).and_then(|a| a.tainted(false)) {
            let e = format!("{} (line {}) is the host of {named}()", src.what, src.line);
            self.find("php_flow_request_db_login", line, e);
        }
    }

    fn sink_sql(&mut self, named: &str, args: &[Val], line: u32) {
        // mysqli_query($link, $query): the query is the last argument.
        if let Some(src) = args.last().filter(|a| a.pure).and_then(|a| a.tainted(false)) {
            let e = format!("{} (line {}) is the whole query of {named}()", src.what, src.line);
            self.find("php_flow_request_is_sql", line, e);
        }
    }

    fn sinks(&mut self, name: &[u8], named: &str, args: &[Val], line: u32) {
        let a = |k: usize| args.get(k).cloned().unwrap_or_default();
        if is(EXEC, name) {
            // proc_open's descriptors: a socket there is a reverse shell.
            for (k, v) in args.iter().take(if name == b"proc_open" { 2 } else { 1 }).enumerate() {
                let v = if k == 0 { v.clone() } else { Val { global: None, ..v.clone() } };
                self.sink_exec(&format!("{named}()"), &v, line);
            }
            return;
        }
        if name == b"assert" {
            // Called through a variable (the keyword form is read in `name`).
            self.sink_code("assert()", &a(0), line);
            return;
        }
        if name == b"create_function" {
            for v in args {
                self.sink_code("create_function()", v, line);
            }
            return;
        }
        if matches!(name, b"preg_replace" | b"mb_ereg_replace" | b"mb_eregi_replace") {
            let pattern = a(0);
            let e_mod = pattern.known.iter().any(|p| {
                let p = p.as_slice();
                let delim = p.first().copied().unwrap_or(b'/');
                let close = match delim {
                    b'(' => b')',
                    b'{' => b'}',
                    b'[' => b']',
                    b'<' => b'>',
                    d => d,
                };
                p.iter().rposition(|&b| b == close).is_some_and(|k| k > 0 && p[k + 1..].contains(&b'e'))
            }) || (name != b"preg_replace" && a(3).known.iter().any(|o| o.contains(&b'e')));
            // A pattern from input is a search tool, not code: only a
            // literal `/e` runs the replacement.
            if e_mod && pattern.taint.is_none() {
                self.sink_code(&format!("{named}() with /e"), &a(1), line);
            }
            return;
        }
        if let Some(&(_, pos)) = CALLBACKS.iter().find(|(n, _)| n.as_bytes() == name) {
            let k = if pos < 0 { args.len().saturating_sub(1) } else { pos as usize };
            if let Some(cb) = args.get(k) {
                let rest: Vec<Val> = args.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, v)| v.clone()).collect();
                self.callee(cb, &format!("{named}()"), &rest, line);
                if cb.one().is_some() {
                    let n = cb.known[0].to_ascii_lowercase();
                    if is(EXEC, &n) || n == b"assert" {
                        for v in &rest {
                            self.sink_exec(&format!("{}() by {named}()", String::from_utf8_lossy(&n)), v, line);
                        }
                    }
                }
            }
            return;
        }
        match name {
            b"file_put_contents" => {
                let (path, data) = (a(0), a(1));
                if let (Some(src), true) = (path.tainted(false), data.taint.is_some() && path.raw) {
                    let e = format!(
                        "{} (line {}) names the file file_put_contents() writes with input",
                        src.what, src.line
                    );
                    self.find("php_flow_request_to_file_write", line, e);
                }
            }
            b"move_uploaded_file" | b"copy" => {
                let (from, to) = (a(0), a(1));
                let upload = name == b"move_uploaded_file"
                    || from
                        .taint
                        .as_ref()
                        .is_some_and(|s| s.what.starts_with("$_FILES") || s.what.starts_with("$HTTP_POST_FILES"));
                if let Some(src) = to.tainted(false).filter(|_| upload && to.raw) {
                    let e = format!("{} (line {}) names where {named}() puts an upload", src.what, src.line);
                    self.find("php_flow_request_to_file_write", line, e);
                }
            }
            b"fopen" => {
                let mode = a(1);
                let writes = mode.known.iter().any(|m| m.iter().any(|b| matches!(b, b'w' | b'a' | b'x' | b'c')));
                if let Some(src) = a(0).tainted(false).filter(|_| writes && a(0).raw) {
                    let e = format!("{} (line {}) names the file fopen() opens for writing", src.what, src.line);
                    self.find("php_flow_request_to_file_write", line, e);
                }
            }
            b"mail" => {
                if let Some(src) =
                    a(0).tainted(false).filter(|_| a(0).raw && (a(2).taint.is_some() || a(1).taint.is_some()))
                {
                    let e =
                        format!("{} (line {}) is the recipient of mail() with input as its text", src.what, src.line);
                    self.find("php_flow_request_to_mail", line, e);
                }
            }
            _ => {}
        }
        if is(FILE_ACCESS, name) {
            // An upload's `tmp_name` is a path PHP made.
            let upload = |s: &&Src| s.what.starts_with("$_FILES") || s.what.starts_with("$HTTP_POST_FILES");
            if let Some(src) = a(0).tainted(false).filter(|s| a(0).pure && !upload(s)) {
                let e = format!("{} (line {}) is the whole path of {named}()", src.what, src.line);
                self.find("php_flow_request_file_access", line, e);
            }
        }
        if is(CONNECT, name) {
            if let Some(src) = a(0).tainted(false).filter(|_| a(0).raw) {
                let e = format!("{} (line {}) is the host {named}() connects to", src.what, src.line);
                self.find("php_flow_request_socket", line, e);
            }
        }
        if is(DB_LOGIN, name) {
            self.sink_db_login(named, args, line);
        }
        if is(SQL, name) {
            self.sink_sql(named, args, line);
        }
    }
}

#[cfg(test)]
mod tests;
