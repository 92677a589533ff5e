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
 * local_depot_store_file: files an uploaded draft as an archive, never replacing a file.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class store_file extends area_function {
    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters(self::area_parameters() + [
            'draftitemid' => new external_value(PARAM_INT, 'Draft area holding the one uploaded file (webservice/upload.php\'s itemid)'),
            'filepath' => new external_value(PARAM_PATH, 'Path to file the archive at: /YYYY/MM/DD/<taskId>/'),
            'filename' => new external_value(PARAM_FILE, 'File name of the archive'),
            'sha256' => new external_value(PARAM_ALPHANUM, 'sha256 of the archive, lower-case hex'),
            'manifest' => new external_value(PARAM_RAW, 'depot\'s manifest of the archive (JSON)'),
        ]);
    }

    /**
     * Files the draft; a taken path answers 'exists' with the manifest found there.
     *
     * @param int $courseid The course.
     * @param string $filearea The file area.
     * @param int $draftitemid The draft area.
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @param string $sha256 The archive's sha256.
     * @param string $manifest The manifest.
     * @return array
     */
    public static function execute(int $courseid, string $filearea, int $draftitemid, string $filepath, string $filename,
            string $sha256, string $manifest): array {
        global $USER;
        $params = self::validate_parameters(self::execute_parameters(), [
            'courseid' => $courseid,
            'filearea' => $filearea,
            'draftitemid' => $draftitemid,
            'filepath' => $filepath,
            'filename' => $filename,
            'sha256' => $sha256,
            'manifest' => $manifest,
        ]);
        $area = self::open_area($params['courseid'], $params['filearea']);
        $outcome = $area->store_draft(\context_user::instance($USER->id)->id, $params['draftitemid'], $params['filepath'],
            $params['filename'], $params['sha256'], $params['manifest']);
        return ['status' => $outcome['status'], 'manifest' => $outcome['manifest'], 'file' => self::location($outcome['file'])];
    }

    /**
     * Return value.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'status' => new external_value(PARAM_ALPHA, '"created", or "exists" when the path was taken (nothing was replaced)'),
            'manifest' => new external_value(PARAM_RAW, 'The manifest now at the path; empty when the file there has none'),
            'file' => self::location_returns(),
        ]);
    }
}
