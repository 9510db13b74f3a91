<?php get_header(); ?>
<div style="display:none"><a href="https://a.invalid">cheap viagra</a> <a href="https://b.invalid">online casino</a> <a href="https://c.invalid">payday loan</a> <a href="https://d.invalid">replica watches</a></div>
