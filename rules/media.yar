// sitewarden: media that carries script. Written for sitewarden, under its
// licence. Tagged foreign_place: they count only where no code belongs
// (uploads, caches), since a theme's own HTML template carries script too.

rule svg_with_script : foreign_place
{
    meta:
        description = "an SVG image that runs script (an inline script, an event handler, a javascript: link)"
    strings:
        $svg = "<svg" nocase
        $script = /<script[\s>]/ nocase
        $handler = /\son(load|error|click|mouseover|focus|begin|end|activate|animationstart)\s*=/ nocase
        $js = /(href|xlink:href)\s*=\s*["']\s*javascript:/ nocase
        $foreign = /<foreignObject[\s>]/ nocase
    condition:
        $svg and ($script or $handler or $js or $foreign)
}

rule html_with_script : foreign_place
{
    meta:
        description = "an HTML page with script, where no page belongs (phishing kits, redirectors)"
    strings:
        $html = /<(html|body|head|meta|iframe|form)[\s>]/ nocase
        $script = /<script[\s>]/ nocase
        $refresh = /<meta[^>]{0,40}http-equiv\s*=\s*["']?refresh/ nocase
        $handler = /\son(load|error|mouseover|focus)\s*=/ nocase
    condition:
        $html and ($script or $refresh or $handler)
}

rule php_code_in_media : foreign_place
{
    meta:
        description = "PHP code inside an image or other media file"
    strings:
        $php = /<\?(php|=)[\s(]/ nocase
        $exec = /(eval|assert|system|exec|passthru|shell_exec|base64_decode|include|require)\s*\(/ nocase
    condition:
        $php and $exec
}
