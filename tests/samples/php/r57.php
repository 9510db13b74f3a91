<?php
$version = 'r57shell 1.40';
