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
use core_external\external_multiple_structure;
use core_external\external_single_structure;
use core_external\external_value;

/**
 * local_depot_list_files: the archives of an area with their manifests, a page at a time.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class list_files extends area_function {
    /** @var int Largest page. */
    public const MAX_LIMIT = 1000;

    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters(self::area_parameters() + [
            'pathprefix' => new external_value(PARAM_PATH, 'Only archives whose path starts so, e.g. /2026/11/', VALUE_DEFAULT, '/'),
            'after' => new external_value(PARAM_INT, 'The "next" of the previous page; 0 for the first', VALUE_DEFAULT, 0),
            'limit' => new external_value(PARAM_INT, 'Archives per page (1-' . self::MAX_LIMIT . ')', VALUE_DEFAULT, 100),
        ]);
    }

    /**
     * One page.
     *
     * @param int $courseid The course.
     * @param string $filearea The file area.
     * @param string $pathprefix Start of the path.
     * @param int $after Where the previous page ended.
     * @param int $limit Page size.
     * @return array
     */
    public static function execute(int $courseid, string $filearea, string $pathprefix = '/', int $after = 0,
            int $limit = 100): array {
        $params = self::validate_parameters(self::execute_parameters(), [
            'courseid' => $courseid,
            'filearea' => $filearea,
            'pathprefix' => $pathprefix,
            'after' => $after,
            'limit' => $limit,
        ]);
        if ($params['limit'] < 1 || $params['limit'] > self::MAX_LIMIT || $params['after'] < 0) {
            throw new \invalid_parameter_exception('limit must be 1-' . self::MAX_LIMIT . ' and after at least 0');
        }
        $area = self::open_area($params['courseid'], $params['filearea']);
        $page = $area->list_page($params['pathprefix'], $params['after'], $params['limit']);
        $files = [];
        foreach ($page['entries'] as $entry) {
            $files[] = [
                'filepath' => $entry['file']->get_filepath(),
                'filename' => $entry['file']->get_filename(),
                'filesize' => (int) $entry['file']->get_filesize(),
                'manifest' => $entry['manifest'],
            ];
        }
        return ['files' => $files, 'next' => $page['next']];
    }

    /**
     * Return value.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'files' => new external_multiple_structure(new external_single_structure([
                'filepath' => new external_value(PARAM_PATH, 'File path'),
                'filename' => new external_value(PARAM_FILE, 'File name'),
                'filesize' => new external_value(PARAM_INT, 'Size in bytes'),
                'manifest' => new external_value(PARAM_RAW, 'Its manifest; empty when there is none'),
            ])),
            'next' => new external_value(PARAM_INT, 'Pass as "after" for the next page; 0 after the last'),
        ]);
    }
}
