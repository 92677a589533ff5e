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
 * The manifest depot files beside each archive, checked before it is filed.
 *
 * depot writes the manifest (a JSON object: name, key, size, sha256, storedAt, taskId,
 * metadata, retainUntil?, deleteAfter?); the plugin keeps it as it came and only makes
 * sure that it describes the archive it is filed with, so that no archive can be filed
 * under a manifest of other bytes or of another key.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class manifest {
    /** @var int A manifest is a small JSON document; anything larger is not one of depot's. */
    public const MAX_BYTES = 1048576;

    /**
     * Parses a manifest and checks that it names the archive at $filepath/$filename.
     *
     * @param string $json The manifest as depot sent it.
     * @param string $filepath Where the archive is filed: '/YYYY/MM/DD/<taskId>/'.
     * @param string $filename The archive's file name (archive_name::to_filename of its name).
     * @param string $sha256 The archive's sha256 as depot declares it (lower-case hex).
     * @return \stdClass The parsed manifest.
     * @throws \moodle_exception invalidmanifest when it is not a manifest of that archive.
     */
    public static function require_describes(string $json, string $filepath, string $filename, string $sha256): \stdClass {
        if (strlen($json) > self::MAX_BYTES) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'larger than ' . self::MAX_BYTES . ' bytes');
        }
        $manifest = json_decode($json);
        if (!$manifest instanceof \stdClass) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'not a JSON object');
        }
        foreach (['name', 'key', 'sha256', 'storedAt', 'taskId'] as $field) {
            if (!isset($manifest->$field) || !is_string($manifest->$field)) {
                throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, "{$field} must be a string");
            }
        }
        if (!isset($manifest->size) || !is_int($manifest->size) || $manifest->size < 0) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'size must be a whole number');
        }
        if (!isset($manifest->metadata) || !$manifest->metadata instanceof \stdClass) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'metadata must be an object');
        }
        if ($manifest->sha256 !== $sha256) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'sha256 must be the archive\'s');
        }
        $segments = explode('/', $manifest->key);
        if (count($segments) !== 5 || end($segments) !== $manifest->name || $segments[3] !== $manifest->taskId) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'key must be YYYY/MM/DD/<taskId>/<name>');
        }
        $expectedpath = '/' . implode('/', array_slice($segments, 0, 4)) . '/';
        if ($expectedpath !== $filepath || archive_name::to_filename($manifest->name) !== $filename) {
            throw new \moodle_exception('invalidmanifest', 'local_depot', '', null, 'key must name the path the archive is filed at');
        }
        return $manifest;
    }
}
