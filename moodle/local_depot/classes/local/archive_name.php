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

namespace local_depot\local;

/**
 * How depot's archive names become Moodle file names.
 *
 * Moodle's file names may not contain & < > " ` | ' : (clean_param PARAM_FILE strips them,
 * and validate_param refuses a parameter that cleaning would change), while depot's names
 * may. Those characters and the escape character % itself are written as %XX (upper-case
 * hex of the byte), so that two names never share a file name and the mapping is plain to read. depot's driver does the same (src/storage/drivers/moodle/paths.ts); both are
 * tested against tests/fixtures/filenames.json.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class archive_name {
    /**
     * The Moodle file name of an archive name.
     *
     * @param string $name depot's archive name (UTF-8, no '/', no control characters).
     * @return string The file name.
     */
    public static function to_filename(string $name): string {
        return preg_replace_callback('~[%&<>"`|\':]~', function(array $match): string {
            return sprintf('%%%02X', ord($match[0]));
        }, $name);
    }
}
