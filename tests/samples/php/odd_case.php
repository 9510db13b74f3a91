<?php @EvAl(BaSe64_DeCoDe('ZWNobyAxOw==')); ?>
