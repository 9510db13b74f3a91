// sitewarden: SEO spam injected into PHP and HTML. Written for
// sitewarden, under its licence.

rule seo_hidden_link_block
{
    meta:
        description = "a block of links hidden from visitors (display:none, off-screen) for search engines"
    strings:
        // The hidden block's opening tag (and at most one tag inside it),
        // then links that follow it at once. Two patterns and their
        // offsets, not one pattern over the whole block: a pattern that
        // long is a large automaton to start at every "<p " of every file
        // (this rule alone was 5x the scan of all the others).
        $hidden = /<(div|span|p|ul)\s[^>]{0,120}style\s*=\s*["'][^"'>]{0,80}(display\s*:\s*none|visibility\s*:\s*hidden|(left|top|text-indent)\s*:\s*-[0-9]{3,}px|font-size\s*:\s*0(px)?\s*;|height\s*:\s*0(px)?\s*;[^"']{0,40}overflow\s*:\s*hidden)[^"']{0,80}["'][^>]{0,80}>\s*(<[^a>][^>]{0,40}>\s*)?/
        $link = /<a\s[^>]{0,200}href\s*=[^>]{0,200}>[^<]{0,100}<\/a>/
    condition:
        filesize < 4MB and
        for any i in (1..#hidden) : (
            for any j in (1..#link) : (
                @link[j] == @hidden[i] + !hidden[i] and
                @link[j + 1] <= @link[j] + !link[j] + 320 and
                @link[j + 2] <= @link[j + 1] + !link[j + 1] + 320
            )
        )
}

rule seo_spam_links_by_keyword
{
    meta:
        description = "links with pharmacy, casino, loan or counterfeit keywords written by PHP"
    strings:
        $php = "<?"
        $link = /(viagra|cialis|levitra|tramadol|xanax|casino|payday|replica|essays?)[^<'"]{0,60}<\/a>/
        $kw = /(viagra|cialis|levitra|tramadol|xanax|online\s+casino|casino\s+online|payday\s+loan|replica\s+(watches|handbags)|buy\s+essays?)/
        $bot = /HTTP_USER_AGENT[^;]{0,120}(googlebot|bingbot|slurp|yandex|baiduspider)/
    condition:
        $php and #kw >= 3 and ($link or $bot)
}
