// sitewarden: injected JavaScript and card skimmers. Written for
// sitewarden, under its licence.

rule js_obfuscated_script_injection
{
    meta:
        description = "a remote script loaded from an address hidden with atob/String.fromCharCode/unescape"
    strings:
        $src_atob = /\.src\s*=\s*(window\.)?atob\s*\(/
        $src_cc = /\.src\s*=\s*String\.fromCharCode\s*\(/
        $attr = /setAttribute\s*\(\s*['"]src['"]\s*,\s*(window\.)?(atob|String\.fromCharCode|unescape)\s*\(/
        $write = /document\.write\s*\(\s*(window\.)?(atob|String\.fromCharCode|decodeURIComponent\s*\(\s*escape)\s*\(/
        // unescape of a text that holds the whole remote address, or is
        // mostly escaped: a legitimate embed escapes only the tag's
        // brackets and adds the host outside ("%3Cscript src='" + host).
        $write_unescape = /document\.write\s*\(\s*(window\.)?unescape\s*\(\s*['"]([^'"]{0,200}src(%3D|=)(%22|%27)?https?(%3A|:)(%2F|\/)(%2F|\/)|(%[0-9A-Fa-f]{2}){8})/ nocase
        $eval_atob = /\beval\s*\(\s*(window\.)?(atob|String\.fromCharCode|unescape)\s*\(/
        $fn_atob = /(new\s+)?Function\s*\(\s*(window\.)?atob\s*\(/
    condition:
        any of them
}

rule js_card_skimmer
{
    meta:
        description = "payment-card fields read and sent away (Magecart style)"
    strings:
        $f1 = /cc[_-]?(number|num|cid)|card[_-]?number|cardnumber/
        $f2 = /cvv2?|cvc|security[_-]?code/
        $f3 = /exp(iry|iration)?[_-]?(month|year|date)|cc[_-]?exp/
        $send1 = "sendBeacon"
        $send2 = /new\s+Image\s*\(\s*\)\s*\)?\s*\.src\s*=/
        $send3 = /new\s+WebSocket\s*\(/
        $send4 = /fetch\s*\(\s*['"]https?:\/\//
        $enc = /btoa\s*\(|JSON\.stringify\s*\(/
        $hook = /addEventListener\s*\(\s*['"](submit|click|change|blur)['"]|\.on\s*\(\s*['"](submit|click|change|blur)['"]|onsubmit|querySelectorAll\s*\(\s*['"](input|form|select)/
    condition:
        filesize < 512KB and #f1 + #f2 + #f3 >= 2 and $f1 and any of ($send*) and $enc and $hook
}

rule js_injected_remote_script_tag
{
    meta:
        description = "a script tag pointing at a bare IP address or a known injection pattern, written into a page"
    strings:
        $ip = /<script[^>]{0,80}src\s*=\s*["']?https?:\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}[:\/]/ nocase
        $dw = /document\.write\s*\(\s*['"]<script[^'"]{0,40}src\s*=\s*[^'"]{0,4}https?:\/\/[0-9]{1,3}\.[0-9]{1,3}\./ nocase
    condition:
        any of them
}
