<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * The real depot the suite runs against, as test/moodle/archivingstore-depot-php.test.ts started it.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

// phpcs:disable

use archivingstore_depot\local\client\curl_transport;
use archivingstore_depot\local\client\depot_client;

/**
 * DEPOT_URL (depot serve), DEPOT_TOKEN (a token scoped to DEPOT_SITE's siteId), DEPOT_DRIVER (its filesystem
 * driver), DEPOT_OTHER_TOKEN (another site's token), DEPOT_DOWN_URL (a port nothing listens on).
 * Missing variables fail the tests: the suite is meant to run against depot, not to be skipped.
 */
final class depot_env {
    public static function get(string $name): string {
        $value = getenv($name);
        if ($value === false || $value === '') {
            throw new RuntimeException("{$name} is not set: run this suite through `npx jest test/moodle/archivingstore-depot-php.test.ts`, which starts depot");
        }
        return $value;
    }

    public static function client(?string $token = null, ?string $url = null, int $waittimeout = 60): depot_client {
        return new depot_client($url ?? self::get('DEPOT_URL'), $token ?? self::get('DEPOT_TOKEN'), new curl_transport(30, 5, true),
            $waittimeout);
    }

    /** A file of $size pseudo-random bytes; its path. */
    public static function file(int $size, string $seed = 'archive'): string {
        $path = tempnam(sys_get_temp_dir(), 'depot-php-');
        $out = fopen($path, 'wb');
        $block = hash('sha512', $seed, true);
        for ($written = 0; $written < $size; $written += strlen($chunk)) {
            $block = hash('sha512', $block, true);
            $chunk = substr(str_repeat($block, 1024), 0, min(65536, $size - $written));
            fwrite($out, $chunk);
        }
        fclose($out);
        return $path;
    }

    /** An ISO 8601 time $seconds from now. */
    public static function in(int $seconds): string {
        return gmdate('Y-m-d\TH:i:s\Z', time() + $seconds);
    }
}
