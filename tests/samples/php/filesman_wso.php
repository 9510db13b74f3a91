<?php
$default_action = 'FilesMan';
$default_use_ajax = true;
$default_charset = 'Windows-1251';
