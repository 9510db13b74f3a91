<?php
$s_name = 'b374k';
$s_ver = '3.2.3';
