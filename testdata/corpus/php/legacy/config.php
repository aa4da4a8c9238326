<?php
$config = array();
$config['db']['host'] = 'db-legacy.acme.internal';
$config['db']['user'] = 'legacy';
$config['db']['pass'] = 'L3gacy-Php!db#41';
$config['smtp_password'] = "Smtp-Php!relay72x";
$config['recaptcha_secret'] = '6Lc4Hm7yOIB1zVgb0L4PZSrCPuBtaqA0yly77K4x';
$config['password_min'] = 10;
$db_password = getenv('DB_PASSWORD');
