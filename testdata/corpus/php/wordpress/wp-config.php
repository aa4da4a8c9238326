<?php
/**
 * The base configuration for WordPress
 *
 * @package WordPress
 */

// ** Database settings - You can get this info from your web host ** //
define( 'DB_NAME', 'wp_marketing' );
define( 'DB_USER', 'wp_marketing' );
define( 'DB_PASSWORD', 'hT5!wpM@rk3t1ng#22' );
define( 'DB_HOST', 'mysql.marketing.internal' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );

/**#@+
 * Authentication unique keys and salts.
 * Generate these using https://api.wordpress.org/secret-key/1.1/salt/
 */
define( 'AUTH_KEY',           'ZWz;wDFrlGX(|~)l?!z1>:BVX|Bt7_w-Rk({l8OZfI,a2AU)k7&z<7gTqBu4;w$_' );
define( 'SECURE_AUTH_KEY',    'weocv8|1k2@lsN?aWQr&Zzh[B4G*ZqT}8hq;t<0pmpsLww0sA,O#DGpUx{j$Kb/g' );
define( 'LOGGED_IN_KEY',      'RBWZRZX1V)lxeVZ4DN^C^Nn}OB{FXL4k41Gi$L|P9)qG3L0_>uKW{{<?`4yWRzSa' );
define( 'NONCE_KEY',          '`T}Ly``v[H_1 D0S_Zao$)za&N{v%4AH17,(@?@<KzcnNj/eh1MV,@ :.LymYZwH' );
define( 'AUTH_SALT',          '6Qqq5}~X1,wUGAJ7.~Wx9.@8`vj)E6&boQ#jQ^a-|)J[b/O0Hvr:gYegR%D,Lu4h' );
define( 'SECURE_AUTH_SALT',   '~1Dyo!vIJ_Uj,z,w~T^)k{oqrt*le%]WvTD><>uRgR@3yNwos#]&bDW|mE-4<kuv' );
define( 'LOGGED_IN_SALT',     '4VGO:f/YcMuqbK,LLp#2jfTu<|OQ_PeWI>D+t}{cKZ1%Dw(0gBE]Hu-m3a-dzqx@' );
define( 'NONCE_SALT',         'MhGx/3ta]e$Y5jv:DR3q9>lV$uD.!Am3>zwr8Fw|Gv^&{$*jEE(D| 1Y(,jEGP-Q' );
/**#@-*/

$table_prefix = 'wp_';

define( 'WP_DEBUG', false );
define( 'FS_METHOD', 'direct' );

if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}

require_once ABSPATH . 'wp-settings.php';
