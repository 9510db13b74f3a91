// sitewarden: .htaccess, .user.ini and php.ini directives that make data
// run as code or send visitors elsewhere. Written for sitewarden, under its
// licence. A protective file ("deny from all", "Require all denied") matches
// none of them.

rule htaccess_php_handler_for_other_ext
{
    meta:
        description = "AddHandler/AddType/SetHandler making files other than .php (images, .htaccess itself) run as PHP"
    strings:
        $add = /Add(Handler|Type)\s+[^\n]{0,80}(php|x-httpd-php[0-9]*|application\/x-httpd)[^\n]{0,80}\s\.?(jpe?g|png|gif|ico|bmp|webp|svg|txt|html?|css|js|pdf|zip|log|dat|tmp|ht[a-z]{0,8}|[a-z]{1,5}\.php)\b/ nocase
        $set = /SetHandler\s+["']?(application\/x-httpd-php[0-9]*|php[0-9.]*-script|x-httpd-php[0-9]*|proxy:unix:[^\n|"]{0,120}php[^\n|"]{0,40}\|fcgi)/ nocase
        $force = /ForceType\s+["']?application\/x-httpd-php/ nocase
    condition:
        filesize < 256KB and any of them
}

rule ini_auto_prepend_file
{
    meta:
        description = "auto_prepend_file/auto_append_file: code run before or after every request"
    strings:
        $htaccess = /php_(admin_)?value\s+auto_(prepend|append)_file\s+["']?[^\s"'n][^\n]{0,200}/ nocase
        $ini = /(^|\n)\s*auto_(prepend|append)_file\s*=\s*["']?[^\s"';][^\n]{0,200}/ nocase
        $none = /auto_(prepend|append)_file\s*=?\s*["']?none["']?\s*(\n|$)/ nocase
        $wordfence = "wordfence-waf.php"
    condition:
        filesize < 256KB and ($htaccess or $ini) and not $none and not $wordfence
}

rule ini_dangerous_php_settings
{
    meta:
        description = "php.ini/.user.ini turning on remote includes or clearing disable_functions"
    strings:
        $url_include = /(^|\n)\s*allow_url_include\s*=\s*["']?(on|1|true|yes)/ nocase
        $htaccess_url_include = /php_(admin_)?flag\s+allow_url_include\s+on/ nocase
        $disable_none = /(^|\n)\s*disable_functions\s*=\s*["']?\s*["']?\s*(\n|$)/ nocase
        $open_basedir = /(^|\n)\s*open_basedir\s*=\s*["']?\/["']?\s*(\n|$)/ nocase
    condition:
        filesize < 256KB and any of them
}

rule htaccess_cloaked_redirect
{
    meta:
        description = "rewrite rules that send search-engine or mobile visitors to another host"
    strings:
        $ref = /RewriteCond\s+%\{HTTP_REFERER\}\s+[^\n]{0,200}(google|bing|yahoo|yandex|baidu|duckduckgo|ask\.com|aol)/ nocase
        $ua = /RewriteCond\s+%\{HTTP_USER_AGENT\}\s+[^\n]{0,300}(android|iphone|ipad|mobile|blackberry|opera mini|googlebot|bingbot)/ nocase
        $away = /RewriteRule\s+\S+\s+https?:\/\/[^\s\/]+/ nocase
        $errdoc = /ErrorDocument\s+(400|401|403|404|500)\s+https?:\/\// nocase
    condition:
        filesize < 256KB and (($ref or $ua) and $away or $errdoc)
}

rule htaccess_cgi_or_ssi_enabled
{
    meta:
        description = "CGI, Perl, Python or server-side includes turned on (Options +ExecCGI/+Includes, a cgi-script/perl/python/server-parsed handler, the INCLUDES filter)"
    strings:
        // "-ExecCGI" (turning it off, as hardening guides do) is no match.
        $exec_cgi = /(^|\n)\s*Options\s+([^\n]*\s)?\+?ExecCGI\b/ nocase
        $includes = /(^|\n)\s*Options\s+([^\n]*\s)?\+?Includes(NOEXEC)?\b/ nocase
        $handler = /(Add|Set)Handler\s+["']?(cgi-script|perl-script|python-program|mod_python|server-parsed|fcgid-script|cgi)\b/ nocase
        $filter = /(Add|Set)OutputFilter\s+["']?INCLUDES/ nocase
    condition:
        filesize < 256KB and any of them
}

rule htaccess_php_engine_on
{
    meta:
        description = "php_flag engine on: PHP turned back on where it was turned off (an uploads folder)"
    strings:
        $on = /php_(admin_)?flag\s+engine\s+["']?(on|1|true)\b/ nocase
    condition:
        filesize < 256KB and $on
}

rule server_config_with_php_inside
{
    meta:
        description = "PHP code inside .htaccess or an ini file: run once a handler makes the file itself executable"
    strings:
        $php = /<\?(php|=)?[\s(\$@]/ nocase
    condition:
        filesize < 256KB and $php
}
