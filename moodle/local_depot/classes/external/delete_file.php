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

namespace local_depot\external;

use core_external\external_function_parameters;
use core_external\external_single_structure;
use core_external\external_value;

/**
 * local_depot_delete_file: deletes an archive and its manifest.
 *
 * Retention is depot's to enforce (it reads retainUntil from the manifest before it asks).
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class delete_file extends area_function {
    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters(self::area_parameters() + [
            'filepath' => new external_value(PARAM_PATH, 'Path of the archive: /YYYY/MM/DD/<taskId>/'),
            'filename' => new external_value(PARAM_FILE, 'File name of the archive'),
        ]);
    }

    /**
     * Deletes the archive.
     *
     * @param int $courseid The course.
     * @param string $filearea The file area.
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @return array
     */
    public static function execute(int $courseid, string $filearea, string $filepath, string $filename): array {
        $params = self::validate_parameters(self::execute_parameters(), [
            'courseid' => $courseid,
            'filearea' => $filearea,
            'filepath' => $filepath,
            'filename' => $filename,
        ]);
        $area = self::open_area($params['courseid'], $params['filearea']);
        return ['deleted' => $area->delete($params['filepath'], $params['filename'])];
    }

    /**
     * Return value.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'deleted' => new external_value(PARAM_BOOL, 'False when there was no archive at the path'),
        ]);
    }
}
