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
 * local_depot_get_space: the bytes the area takes, and the site's free space where Moodle knows it.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class get_space extends area_function {
    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters(self::area_parameters());
    }

    /**
     * The figures.
     *
     * @param int $courseid The course.
     * @param string $filearea The file area.
     * @return array
     */
    public static function execute(int $courseid, string $filearea): array {
        global $CFG;
        $params = self::validate_parameters(self::execute_parameters(), ['courseid' => $courseid, 'filearea' => $filearea]);
        $area = self::open_area($params['courseid'], $params['filearea']);
        $result = ['usedbytes' => $area->used_bytes()];
        // The file pool's file system, when Moodle keeps files on one (not with an object store such as tool_objectfs's).
        $filedir = $CFG->filedir ?? ($CFG->dataroot . '/filedir');
        if (is_dir($filedir) && function_exists('disk_free_space') && function_exists('disk_total_space')) {
            $free = disk_free_space($filedir);
            $total = disk_total_space($filedir);
            if ($free !== false && $total !== false) {
                $result['freebytes'] = (int) $free;
                $result['totalbytes'] = (int) $total;
            }
        }
        return $result;
    }

    /**
     * Return value.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'usedbytes' => new external_value(PARAM_INT, 'Bytes of the area\'s archives and manifests'),
            'freebytes' => new external_value(PARAM_INT, 'Free bytes of the file system of Moodle\'s file pool', VALUE_OPTIONAL),
            'totalbytes' => new external_value(PARAM_INT, 'Size of that file system', VALUE_OPTIONAL),
        ]);
    }
}
