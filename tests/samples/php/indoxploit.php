<?php
// IndoXploit Shell
$shell_name = 'IndoXploit';
